"""End-to-end export benchmark: the exporter against mapproxy-seed.

Run by scripts/bench-e2e.sh (`make bench-e2e`) with /usr/bin/python3, which
has MapProxy, PIL and GDAL's Python bindings. Everything happens on
127.0.0.1 in a temp dir that is removed on exit:

 1. redis-server (free port, no persistence), a tile directory of 22,601
    distinct noisy JPEG tiles (PIL), and MapProxy (bench_e2e_mapproxy.py,
    one process per core) serving a WMS in EPSG:4326 from a cache-less
    layer over a `tile` source that reads that directory, so each GetMap
    reads, decodes, merges and encodes tiles.
 2. A catalog with tilestore layers over the directory, a wms layer over
    MapProxy's WMS (metatile 4 x 4), demo layers and a large tile store;
    `exporter trigger`, a token from `exporter token`, and for each case
    fresh `exporter worker` processes. Each export is estimated, created,
    polled until Completed (timed from POST /create), downloaded, checked
    with GDAL's validate_gpkg and its tiles counted; tile-store packages
    are also compared with the files, tile by tile, on a sample.
 3. Per worker: peak RSS (VmHWM, read before it is stopped), CPU seconds,
    bytes read and written, and its histograms from /metrics; per export
    tiles/s, MB/s, and rendering (until tilesDone reaches the total) versus
    finishing (merge, digest, store), with the batch times from the logs.
 4. mapproxy-seed -c 2 of the same area and zooms into GeoPackage caches,
    from the same directory and from the same WMS (meta_size 4 x 4, no
    meta buffer: the requests the exporter makes), and the ratios.
 5. Scaling: a demo-layer export with one worker pinned to core 0, then two
    pinned to cores 0 and 1 (GOMAXPROCS=1 each), with the default batching
    (spread over at least 16 batches); again with EXPORTER_JOBS_BATCH_SPREAD=1,
    batches as large as the 10,000-tile cap allows.
 6. Memory: a tile-store export of about 267,000 tiles, or about 1,000,000
    with BENCH_LARGE=1 (hard links to 256 small tiles, so the store costs
    little disk), peak RSS per worker against the 300 MB target.
 7. PNG: exports of about 800 tiles written as PNG, of the demo layer
    (flat tints) and of the WMS (photographs of many colours);
    the finest zoom of each is written again by GDAL (gdal_translate to a
    GeoPackage with TILE_FORMAT=PNG on the same grid) and the bytes are
    compared.
 8. A summary table with the CPU use of every process and of everything
    else on the machine during each case (the machine may be shared), and
    the same table as Markdown.

Environment: BENCH_LARGE=1 (1M-tile memory check), BENCH_KEEP=1 (keep the
temp dir), BENCH_TIMEOUT (seconds for the whole run; default 1200, 3600
with BENCH_LARGE), BENCH_QUIET_WAIT (seconds to wait before each case for
other processes to go quiet; default 20), BENCH_REPORT=FILE (also write the
Markdown and the raw results there), BENCH_CASES (a comma-separated subset of
tilestore, wms, scaling, memory, png; default all), BENCH_EXPORTER (binary;
default bin/exporter), TMPDIR (where the temp dir goes).
"""

import ctypes
import datetime
import io
import json
import math
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTER = os.environ.get("BENCH_EXPORTER") or os.path.join(ROOT, "bin", "exporter")
LARGE = os.environ.get("BENCH_LARGE", "") not in ("", "0")
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT") or (3600 if LARGE else 1200))
REPORT = os.environ.get("BENCH_REPORT", "")
QUIET_WAIT = int(os.environ.get("BENCH_QUIET_WAIT") or 20)
ALL_CASES = ("tilestore", "wms", "scaling", "memory", "png")
CASES = [c.strip() for c in (os.environ.get("BENCH_CASES") or ",".join(ALL_CASES)).split(",") if c.strip()]
CORES = len(os.sched_getaffinity(0))
SEED_CONCURRENCY = 2
MAPPROXY_PROCESSES = max(2, CORES)

# The grid: EPSG:4326, 2 x 1 tiles of 256 px at zoom 0, rows from the north.
TILE = 256


def tile_deg(z):
    return 180.0 / (1 << z)


def resolution(z):
    return 0.703125 / (1 << z)


def tile_range(bbox, z):
    """Half-open [c0, c1) x [r0, r1) of the tiles bbox touches at z."""
    ts = tile_deg(z)
    eps = 1e-9
    c0 = math.floor((bbox[0] + 180) / ts + eps)
    c1 = math.ceil((bbox[2] + 180) / ts - eps)
    r0 = math.floor((90 - bbox[3]) / ts + eps)
    r1 = math.ceil((90 - bbox[1]) / ts - eps)
    return c0, c1, r0, r1


def snap(bbox, z):
    """bbox snapped outwards to whole tiles of z."""
    c0, c1, r0, r1 = tile_range(bbox, z)
    ts = tile_deg(z)
    return [-180 + c0 * ts, 90 - r1 * ts, -180 + c1 * ts, 90 - r0 * ts]


def metatiles(bbox, zoom, cols=4, rows=4):
    """Distinct metatiles of cols x rows tiles (aligned to multiples of
    that size, as source.WMS and MapProxy's meta_size place them) that the
    pyramid of bbox down to zoom needs: the fewest GetMaps an export of it
    can make."""
    n = 0
    for z in range(zoom + 1):
        c0, c1, r0, r1 = tile_range(bbox, z)
        n += ((c1 - 1) // cols - c0 // cols + 1) * ((r1 - 1) // rows - r0 // rows + 1)
    return n


def share_inside(query, area):
    """The share of a GetMap's bbox (EPSG:4326, either version) inside
    area: MapProxy answers the rest blank, without reading a tile."""
    p = {k.upper(): v for k, v in urllib.parse.parse_qsl(query)}
    b = [float(v) for v in p["BBOX"].split(",")]
    if p.get("VERSION") == "1.3.0":
        b = [b[1], b[0], b[3], b[2]]
    w = min(b[2], area[2]) - max(b[0], area[0])
    h = min(b[3], area[3]) - max(b[1], area[1])
    return max(w, 0) * max(h, 0) / ((b[2] - b[0]) * (b[3] - b[1]))


def pyramid_tiles(bbox, zoom):
    n = 0
    for z in range(zoom + 1):
        c0, c1, r0, r1 = tile_range(bbox, z)
        n += (c1 - c0) * (r1 - r0)
    return n


# Areas. The main cases export 22,601 tiles (zooms 0-15); the scaling case
# 11,369 demo tiles; the memory case 266,908 or, with BENCH_LARGE, 1,007,027.
MAIN_ZOOM = 15
MAIN_AREA = snap([34.5, 31.5, 35.5, 32.0], MAIN_ZOOM)
SCALE_ZOOM = 15
SCALE_AREA = [34.5, 31.5, 35.0, 32.0]
if LARGE:
    MEM_ZOOM, MEM_AREA = 17, snap([34.5, 31.0, 35.5, 32.42], 17)
else:
    MEM_ZOOM, MEM_AREA = 16, snap([34.0, 31.0, 35.5, 32.0], 16)
MIN_TILES = 20000
# The PNG case: demo tiles written as PNG, then the same pixels written by
# GDAL's GeoPackage driver (TILE_FORMAT=PNG) at the finest zoom.
PNG_ZOOM = 14
PNG_AREA = snap([34.5, 31.5, 34.75, 31.75], PNG_ZOOM)

# The tile-store export is short, so it runs TILE_RUNS times (the median
# counts). The scaling check runs with the default batching and again
# without spreading (UNSPREAD), batches as large as the cap allows.
TILE_RUNS = 3
UNSPREAD = "no spread"
SCALE_CASES = ("scale1", "scale2", "scale1s", "scale2s")


def layer_id(name, i=0):
    """A fixed layer id per case: every export is a new job, never a hit
    of the naive cache."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "bench-e2e/%s/%d" % (name, i)))


def log(msg):
    sys.stderr.write("bench-e2e: %s\n" % msg)
    sys.stderr.flush()


class Failed(Exception):
    pass


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy") and not k.startswith("EXPORTER_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


class Proc:
    """A server this run started, its output in a log file."""

    def __init__(self, name, argv, env, logpath, cwd=None):
        self.name, self.logpath = name, logpath
        self.logfile = open(logpath, "ab")
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                  stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=40):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) did not stop in %ds; killing it" % (self.name, self.pid, timeout))
                self.p.kill()
                self.p.wait()
        self.logfile.close()

    def tail(self, n=4000):
        try:
            with open(self.logpath, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError as e:
            return str(e)


PROCS = []


def start(name, argv, env, logpath, cwd=None):
    p = Proc(name, argv, env, logpath, cwd)
    PROCS.append(p)
    return p


def stop(p):
    p.stop()
    if p in PROCS:
        PROCS.remove(p)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, proc=None, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise Failed("%s exited before it was ready:\n%s" % (what, proc.tail()))
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 - keep polling, report the last
            last = e
        time.sleep(0.05)
    raise Failed("%s not ready after %ds (%s)%s" % (what, timeout, last, "\n" + proc.tail() if proc else ""))


def cpu_seconds(pid):
    """User + system CPU seconds of a live process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def io_bytes(pid):
    """Bytes a process has read and written through system calls (files,
    pipes and sockets alike), from /proc/<pid>/io."""
    out = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = int(v)
    return out.get("rchar", 0), out.get("wchar", 0)


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise Failed("no VmHWM for pid %d" % pid)


# ---------------------------------------------------------------- HTTP

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, token=None, timeout=60, raw=False):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with _opener.open(req, timeout=timeout) as resp:
            payload = resp.read()
            return resp.status, (payload if raw else json.loads(payload or b"null"))
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        raise Failed("%s %s: %d %s" % (method, url.split("?")[0], e.code, text[:500])) from None


def download(url, token, path):
    req = urllib.request.Request(url)
    req.add_header("Authorization", "Bearer " + token)
    with _opener.open(req, timeout=600) as resp, open(path, "wb") as f:
        shutil.copyfileobj(resp, f, 1 << 20)


# ---------------------------------------------------------------- tiles

_POOL = None


def _noise_pool():
    from PIL import Image
    pool = []
    for i in range(32):
        g = Image.linear_gradient("L").rotate(i * 360 / 32).resize((TILE, TILE))
        pool.append(Image.merge("RGB", (Image.effect_noise((TILE, TILE), 40 + i),
                                        Image.effect_noise((TILE, TILE), 30), g)))
    return pool


def _tile_jpeg(z, x, y):
    """A distinct, noisy 256 x 256 JPEG (about 19 KB, like an orthophoto
    tile): a colour from a hash of the tile, blended with one of 32
    noise-and-gradient patterns, and the tile's address written on it."""
    global _POOL
    from PIL import Image, ImageDraw
    if _POOL is None:
        _POOL = _noise_pool()
    h = zlib.crc32(b"%d/%d/%d" % (z, x, y))
    base = Image.new("RGB", (TILE, TILE), (60 + (h & 0x7F), 60 + ((h >> 8) & 0x7F), 60 + ((h >> 16) & 0x7F)))
    img = Image.blend(base, _POOL[(h >> 24) % 32], 0.35)
    ImageDraw.Draw(img).text((8, 8), "%d/%d/%d" % (z, x, y), fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _pool_init():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()


def _write_column(job):
    root, z, x, r0, r1 = job
    d = os.path.join(root, str(z), str(x))
    os.makedirs(d, exist_ok=True)
    for y in range(r0, r1):
        with open(os.path.join(d, "%d.jpg" % y), "wb") as f:
            f.write(_tile_jpeg(z, x, y))
    return r1 - r0


def _write_overview_column(job):
    """Writes column x of zoom z, each tile the area average (PIL's
    reduce, a box filter) of its four children at z + 1 as decoded from
    their JPEGs; a child outside the directory is grey."""
    from PIL import Image
    root, z, x, r0, r1 = job
    d = os.path.join(root, str(z), str(x))
    os.makedirs(d, exist_ok=True)
    for y in range(r0, r1):
        img = Image.new("RGB", (2 * TILE, 2 * TILE), (128, 128, 128))
        for dx in (0, 1):
            for dy in (0, 1):
                child = os.path.join(root, str(z + 1), str(2 * x + dx), "%d.jpg" % (2 * y + dy))
                if os.path.exists(child):
                    with Image.open(child) as c:
                        img.paste(c.convert("RGB"), (dx * TILE, dy * TILE))
        img.reduce(2).save(os.path.join(d, "%d.jpg" % y), "JPEG", quality=85)
    return r1 - r0


def generate_tiles(root, bbox, zoom):
    """Writes {z}/{x}/{y}.jpg (rows from the north) for every tile bbox
    touches at zooms 0..zoom: distinct noisy tiles at zoom, and below it
    one picture, each tile built from its four children (as gdaladdo's
    average would), so that the WMS's coarser zooms show what its finest
    does and an overview built by the exporter can be compared with the
    one the WMS renders."""
    with multiprocessing.get_context("fork").Pool(CORES, initializer=_pool_init) as pool:
        c0, c1, r0, r1 = tile_range(bbox, zoom)
        n = sum(pool.imap_unordered(_write_column, [(root, zoom, x, r0, r1) for x in range(c0, c1)], chunksize=4))
        for z in range(zoom - 1, -1, -1):
            c0, c1, r0, r1 = tile_range(bbox, z)
            n += sum(pool.imap_unordered(_write_overview_column, [(root, z, x, r0, r1) for x in range(c0, c1)], chunksize=4))
        return n


def generate_links(root, bbox, zoom):
    """Writes the {z}/{x}/{y}.jpg tree of a large store as hard links to 256
    small distinct JPEGs (about 3 KB each), so a million tiles cost
    directory entries, not gigabytes."""
    from PIL import Image, ImageFilter
    srcdir = os.path.join(root, "src")
    os.makedirs(srcdir)
    pats = []
    for i in range(8):
        g = Image.linear_gradient("L").rotate(i * 45).resize((TILE, TILE))
        n = Image.effect_noise((TILE, TILE), 20).filter(ImageFilter.GaussianBlur(2))
        pats.append(Image.merge("RGB", (n, g, n)))
    srcs = []
    for i in range(256):
        h = zlib.crc32(b"%d" % i)
        base = Image.new("RGB", (TILE, TILE), (60 + (h & 0x7F), 60 + ((h >> 8) & 0x7F), 60 + ((h >> 16) & 0x7F)))
        p = os.path.join(srcdir, "%d.jpg" % i)
        Image.blend(base, pats[i % 8], 0.3).save(p, "JPEG", quality=85)
        srcs.append(p)
    n = 0
    for z in range(zoom + 1):
        c0, c1, r0, r1 = tile_range(bbox, z)
        for x in range(c0, c1):
            d = os.path.join(root, str(z), str(x))
            os.makedirs(d)
            for y in range(r0, r1):
                os.link(srcs[(x * 7 + y * 13 + z) & 255], os.path.join(d, "%d.jpg" % y))
                n += 1
    return n


# ---------------------------------------------------------------- MapProxy

def grid_yaml(maxzoom):
    res = ", ".join(repr(resolution(z)) for z in range(maxzoom + 1))
    return """grids:
  exporter:
    srs: 'EPSG:4326'
    bbox: [-180, -90, 180, 90]
    bbox_srs: 'EPSG:4326'
    origin: nw
    tile_size: [256, 256]
    res: [%s]
""" % res


def tile_source_yaml(tiledir, bbox):
    return """  ortho_dir:
    type: tile
    grid: exporter
    url: file://%s/%%(z)s/%%(x)s/%%(y)s.jpg
    transparent: false
    coverage:
      bbox: [%r, %r, %r, %r]
      srs: 'EPSG:4326'
""" % ((tiledir,) + tuple(bbox))


GLOBALS_YAML = """globals:
  image:
    paletted: false
    jpeg_quality: 85
  cache:
    base_dir: {dir}/cache_data
    lock_dir: {dir}/cache_data/locks
    tile_lock_dir: {dir}/cache_data/tile_locks
"""


def server_yaml(d, tiledir, bbox, maxzoom):
    """A WMS (1.1.1, 1.3.0; EPSG:4326) whose layer `ortho` has no storage:
    each GetMap reads the tiles it covers from the directory, decodes,
    merges and encodes them."""
    return """services:
  wms:
    srs: ['EPSG:4326']
    versions: ['1.1.1', '1.3.0']
    image_formats: ['image/jpeg', 'image/png']
    md:
      title: bench-e2e

layers:
  - name: ortho
    title: generated tiles
    sources: [ortho_live]

caches:
  ortho_live:
    grids: [exporter]
    sources: [ortho_dir]
    format: image/jpeg
    disable_storage: true

sources:
""" + tile_source_yaml(tiledir, bbox) + "\n" + grid_yaml(maxzoom) + "\n" + GLOBALS_YAML.format(dir=d)


def seed_yaml(d, tiledir, wms_url, bbox, maxzoom):
    """The caches mapproxy-seed fills: GeoPackages from the tile directory
    and from the WMS, in the same grid, JPEG quality 85 as the exporter."""
    return """layers:
  - name: seed_tiles
    title: seed from the tile directory
    sources: [seed_tiles]
  - name: seed_wms
    title: seed from the WMS
    sources: [seed_wms]

caches:
  seed_tiles:
    grids: [exporter]
    sources: [ortho_dir]
    format: image/jpeg
    cache:
      type: geopackage
      filename: {dir}/seed_tiles.gpkg
      table_name: seed_tiles
  seed_wms:
    grids: [exporter]
    sources: [ortho_wms]
    format: image/jpeg
    meta_size: [4, 4]
    meta_buffer: 0
    cache:
      type: geopackage
      filename: {dir}/seed_wms.gpkg
      table_name: seed_wms

sources:
  ortho_wms:
    type: wms
    supported_srs: ['EPSG:4326']
    wms_opts:
      version: '1.3.0'
    req:
      url: {wms}
      layers: ortho
      transparent: false
""".format(dir=d, wms=wms_url) + tile_source_yaml(tiledir, bbox) + "\n" + grid_yaml(maxzoom) + "\n" + \
        GLOBALS_YAML.format(dir=d)


def seed_tasks_yaml(bbox, maxzoom):
    # The coverage is the export's bbox pulled in by a millionth of a tile,
    # so that MapProxy does not add the neighbours it merely touches.
    e = tile_deg(maxzoom) * 1e-6
    return """seeds:
  tiles:
    caches: [seed_tiles]
    grids: [exporter]
    coverages: [area]
    levels:
      from: 0
      to: {z}
  wms:
    caches: [seed_wms]
    grids: [exporter]
    coverages: [area]
    levels:
      from: 0
      to: {z}

coverages:
  area:
    bbox: [{a!r}, {b!r}, {c!r}, {d!r}]
    srs: 'EPSG:4326'
""".format(z=maxzoom, a=bbox[0] + e, b=bbox[1] + e, c=bbox[2] - e, d=bbox[3] - e)


def mapproxy_python():
    util = shutil.which("mapproxy-util")
    if not util:
        raise Failed("mapproxy-util not found: run `make tools` (Debian package mapproxy)")
    with open(util) as f:
        first = f.readline()
    fields = first[2:].split() if first.startswith("#!") else []
    if not fields:
        return "/usr/bin/python3"
    if os.path.basename(fields[0]) == "env" and len(fields) > 1:
        return shutil.which(fields[1]) or fields[1]
    return fields[0]


# ---------------------------------------------------------------- GeoPackage

def gpkg_tiles(path):
    """Tile count per zoom of a tiles GeoPackage's first tile table."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        table = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'tiles' ORDER BY table_name").fetchone()[0]
        by_zoom = dict(con.execute('SELECT zoom_level, count(*) FROM "%s" GROUP BY zoom_level' % table).fetchall())
        return table, by_zoom
    finally:
        con.close()


def png_against_gdal(path, table, zoom):
    """The bytes of the package's tiles at zoom against GDAL's of the same
    pixels: gdal_translate of that zoom into a GeoPackage with PNG tiles on
    the same grid (InspireCRS84Quad is EPSG:4326, 2 x 1 tiles of 256 px at
    zoom 0), as libpng and GDAL's defaults write them."""
    out = path + ".gdal.gpkg"
    subprocess.run(["gdal_translate", "-q", "-of", "GPKG", "-oo", "TABLE=" + table, "-oo", "ZOOM_LEVEL=%d" % zoom,
                    "-co", "TILE_FORMAT=PNG", "-co", "TILING_SCHEME=InspireCRS84Quad", "-co", "ZOOM_LEVEL_STRATEGY=UPPER",
                    path, out], check=True, capture_output=True)
    try:
        def sizes(p):
            con = sqlite3.connect("file:%s?mode=ro" % p, uri=True)
            try:
                t = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'tiles'").fetchone()[0]
                return con.execute('SELECT zoom_level, count(*), sum(length(tile_data)), '
                                   "sum(substr(tile_data, 1, 4) = X'89504E47') FROM \"%s\" "
                                   'WHERE zoom_level = (SELECT max(zoom_level) FROM "%s")' % (t, t)).fetchone()
            finally:
                con.close()
        ours, theirs = sizes(path), sizes(out)
        if ours[3] != ours[1] or theirs[3] != theirs[1]:
            raise Failed("png: %d of the package's %d tiles and %d of GDAL's %d are PNG, want all" % (ours[3], ours[1], theirs[3], theirs[1]))
        if ours[0] != zoom or theirs[0] != zoom or ours[1] != theirs[1]:
            raise Failed("png: GDAL wrote %s tiles at zoom %s, the package %s at zoom %s" % (theirs[1], theirs[0], ours[1], ours[0]))
        log("png: zoom %d, %d tiles: exporter %d bytes, GDAL %d bytes (%.2f×)" % (zoom, ours[1], ours[2], theirs[2], ours[2] / theirs[2]))
        return {"png_tiles": ours[1], "png_bytes": ours[2], "gdal_png_bytes": theirs[2]}
    finally:
        os.remove(out)


def overview_difference(path, reference, zoom):
    """The mean absolute difference, per channel (0-255), between the
    overview tiles (every zoom below zoom) of the package at path and the
    same tiles of the reference package, whose overviews the source
    rendered, over the pixels inside MAIN_AREA (outside it the source
    paints its background and a JPEG overview its transparency black);
    also per zoom. The bench's tile directory holds one picture at every
    zoom (generate_tiles), so the difference is what resampling and JPEG's
    generation loss make of it."""
    from PIL import Image, ImageChops

    def tiles(p):
        con = sqlite3.connect("file:%s?mode=ro" % p, uri=True)
        try:
            t = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'tiles'").fetchone()[0]
            return {(z, x, y): d for z, x, y, d in con.execute(
                'SELECT zoom_level, tile_column, tile_row, tile_data FROM "%s" WHERE zoom_level < ?' % t, (zoom,))}
        finally:
            con.close()

    def inside(z, x, y):
        """The pixel box of tile z/x/y (rows from the north) wholly inside MAIN_AREA."""
        deg = tile_deg(z)
        ppd = TILE / deg
        lon0, lat0 = -180 + x * deg, 90 - y * deg
        box = (math.ceil((MAIN_AREA[0] - lon0) * ppd), math.ceil((lat0 - MAIN_AREA[3]) * ppd),
               math.floor((MAIN_AREA[2] - lon0) * ppd), math.floor((lat0 - MAIN_AREA[1]) * ppd))
        box = tuple(min(max(v, 0), TILE) for v in box)
        return box if box[0] < box[2] and box[1] < box[3] else None

    ours, theirs = tiles(path), tiles(reference)
    if set(ours) != set(theirs):
        raise Failed("overviews: the downsample package has %d overview tiles, the source's %d, %d in common" % (
            len(ours), len(theirs), len(set(ours) & set(theirs))))
    total, n, by_zoom = [0, 0, 0], 0, {}
    for key, data in ours.items():
        box = inside(*key)
        if box is None:
            continue
        a = Image.open(io.BytesIO(data)).convert("RGB").crop(box)
        b = Image.open(io.BytesIO(theirs[key])).convert("RGB").crop(box)
        # The histogram of |a - b|, 256 bins per channel: the sum of the
        # differences is the sum of bin × count.
        h = ImageChops.difference(a, b).histogram()
        diff = [sum(i * c for i, c in enumerate(h[k:k + 256])) for k in (0, 256, 512)]
        for ch in range(3):
            total[ch] += diff[ch]
        px = a.size[0] * a.size[1]
        n += px
        zs = by_zoom.setdefault(key[0], [0, 0])
        zs[0] += sum(diff)
        zs[1] += 3 * px
    mad = [t / max(n, 1) for t in total]
    log("overviews: %d tiles below zoom %d, %d pixels inside the area; mean absolute difference to the source's "
        "R %.2f G %.2f B %.2f; by zoom %s" % (
            len(ours), zoom, n, mad[0], mad[1], mad[2],
            ", ".join("%d: %.2f" % (z, v[0] / v[1]) for z, v in sorted(by_zoom.items(), reverse=True))))
    return {"overview_tiles": len(ours), "overview_mad": mad,
            "overview_mad_by_zoom": {z: v[0] / v[1] for z, v in by_zoom.items()}}


def sample_matches_store(path, table, tiledir, n=200):
    """Compares n random tiles of a package with the tile store's files:
    stored tiles must pass byte for byte."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        rows = con.execute('SELECT zoom_level, tile_column, tile_row, tile_data FROM "%s" ORDER BY random() LIMIT ?' % table, (n,)).fetchall()
    finally:
        con.close()
    bad = 0
    for z, x, y, data in rows:
        with open(os.path.join(tiledir, str(z), str(x), "%d.jpg" % y), "rb") as f:
            if f.read() != data:
                bad += 1
    return len(rows), bad


def validate_gpkg(path):
    r = subprocess.run(["/usr/bin/python3", "-m", "osgeo_utils.samples.validate_gpkg", path],
                       capture_output=True, text=True, timeout=600)
    out = (r.stdout + r.stderr).strip()
    return r.returncode == 0, out


# ---------------------------------------------------------------- metrics

_SAMPLE = re.compile(r'^(exporter_worker_(?:task_duration_seconds|source_request_duration_seconds|tile_encode_duration_seconds))_(sum|count)\{([^}]*)\} (\S+)$')


def worker_metrics(workers):
    """Sums, over the workers, the _sum and _count of the task, source and
    encode histograms, keyed "family{labels}"; a mean is sum / count."""
    out = {}
    for wk in workers:
        try:
            _, text = http("GET", wk.metrics_url, timeout=10, raw=True)
        except (Failed, OSError) as e:
            log("%s: no metrics: %s" % (wk.name, e))
            continue
        for line in text.decode().splitlines():
            m = _SAMPLE.match(line)
            if not m:
                continue
            key = "%s{%s}" % (m.group(1), m.group(3))
            out.setdefault(key, {"sum": 0.0, "count": 0.0})[m.group(2)] += float(m.group(4))
    return out


# ---------------------------------------------------------------- the bench

def parse_time(s):
    # slog writes RFC 3339 with nanoseconds; Python wants at most micro.
    s = re.sub(r"(\.\d{6})\d+", r"\1", s).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp()


def system_busy():
    """CPU seconds the whole machine has spent busy (user, nice, system,
    irq, softirq, steal), over all cores."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def own_cpu():
    t = os.times()
    return t.user + t.system


class Meter:
    """CPU seconds of named processes over a case, and of everything else
    on the machine (other people's builds and tests): the benchmark shares
    the machine, and numbers taken under load must say so."""

    def __init__(self, groups):
        self.groups = groups  # name -> [pid]
        self.t0 = time.monotonic()
        self.sys0 = system_busy()
        self.self0 = own_cpu()
        self.ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu0 = {name: sum(cpu_seconds(p) for p in pids) for name, pids in groups.items()}

    def stop(self):
        secs = time.monotonic() - self.t0
        cpu = {name: sum(cpu_seconds(p) for p in pids) - self.cpu0[name] for name, pids in self.groups.items()}
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = (ru1.ru_utime - self.ru0.ru_utime) + (ru1.ru_stime - self.ru0.ru_stime)
        if children > 0.05:
            cpu["mapproxy-seed"] = children
        cpu["bench driver"] = own_cpu() - self.self0
        busy = system_busy() - self.sys0
        other = max(0.0, busy - sum(cpu.values()))
        return {"cpu_s": cpu, "other_cpu_s": other, "busy_cpu_s": busy, "available_cpu_s": secs * CORES,
                "other_share": other / (secs * CORES) if secs else 0.0}


def wait_quiet(max_wait):
    """Waits up to max_wait seconds for the machine to be idle: less than
    a fifth of one core busy over a second. Returns the busy share seen
    last."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = system_busy(), time.monotonic()
        time.sleep(1)
        share = (system_busy() - b0) / ((time.monotonic() - t0) * CORES)
        if share < 0.2 / CORES or time.monotonic() >= deadline:
            return share
        log("machine busy (%.0f%% of %d cores used by others); waiting" % (100 * share, CORES))
        time.sleep(4)


class Bench:
    def __init__(self, work):
        self.work = work
        self.results = {}
        self.notes = []
        self.triggers = []

    # ---- setup

    def setup(self):
        w = self.work
        for d in ("redis", "data", "tmp", "logs", "dl", "mapproxy", "seed"):
            os.makedirs(os.path.join(w, d))
        self.logs = os.path.join(w, "logs")

        port = free_port()
        self.redis = start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                     "--appendonly", "no", "--dir", os.path.join(w, "redis"), "--loglevel", "warning"],
                           clean_env(), os.path.join(self.logs, "redis.log"))
        self.redis_url = "redis://127.0.0.1:%d/0" % port

        def ping():
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        wait_for("redis-server", ping, self.redis)

        t = time.monotonic()
        self.tiledir = os.path.join(w, "tiles")
        n = generate_tiles(self.tiledir, MAIN_AREA, MAIN_ZOOM)
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(self.tiledir) for f in fs)
        self.tiledir_info = {"tiles": n, "bytes": size}
        log("tile directory: %d JPEG tiles, %.0f MB, zooms 0-%d, in %.1f s" % (n, size / 1e6, MAIN_ZOOM, time.monotonic() - t))

        t = time.monotonic()
        self.memdir = os.path.join(w, "memtiles")
        os.makedirs(self.memdir)
        if "memory" in CASES:
            n = generate_links(self.memdir, MEM_AREA, MEM_ZOOM)
            log("large tile store: %d hard links to 256 tiles, zooms 0-%d, in %.1f s" % (n, MEM_ZOOM, time.monotonic() - t))

        self.start_mapproxy()
        self.write_catalog()

        self.secret = os.urandom(32).hex()
        self.env = clean_env({
            "EXPORTER_REDIS_URL": self.redis_url,
            "EXPORTER_DATA_DIR": os.path.join(w, "data"),
            "EXPORTER_AUTH_HS256_SECRET": self.secret,
            "EXPORTER_HTTP_RATE_LIMIT": "0",
            "EXPORTER_CATALOG_FILE": self.catalog,
            "EXPORTER_WORKER_TEMP_DIR": os.path.join(w, "tmp"),
            "EXPORTER_LOG_FORMAT": "json",
            "EXPORTER_LOG_LEVEL": "info",
        })
        self.trigger, self.base = self.start_trigger("trigger")
        r = subprocess.run([EXPORTER, "token", "-sub", "bench", "-role", "operator", "-ttl", "6h"], env=self.env,
                           capture_output=True, text=True, cwd=w, timeout=60)
        if r.returncode != 0:
            raise Failed("exporter token: %s" % r.stderr)
        self.token = r.stdout.strip()

    def start_trigger(self, name, extra=None):
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        env = dict(self.env, EXPORTER_HTTP_ADDR="127.0.0.1:%d" % port, EXPORTER_HTTP_PUBLIC_URL=base, **(extra or {}))
        p = start(name, [EXPORTER, "trigger"], env, os.path.join(self.logs, name + ".log"), cwd=self.work)
        wait_for("exporter " + name, lambda: http("GET", base + "/readyz", timeout=2)[0] == 200, p)
        self.triggers.append(p)
        return p, base

    def start_mapproxy(self):
        d = os.path.join(self.work, "mapproxy")
        conf = os.path.join(d, "mapproxy.yaml")
        with open(conf, "w") as f:
            f.write(server_yaml(d, self.tiledir, MAIN_AREA, MAIN_ZOOM))
        portfile = os.path.join(d, "port")
        self.access = os.path.join(self.logs, "mapproxy-access.log")
        runner = os.path.join(ROOT, "scripts", "bench_e2e_mapproxy.py")
        self.mapproxy = start("mapproxy", [mapproxy_python(), runner, conf, portfile, str(MAPPROXY_PROCESSES), self.access],
                              clean_env(), os.path.join(self.logs, "mapproxy.log"), cwd=d)
        wait_for("mapproxy port", lambda: os.path.exists(portfile), self.mapproxy)
        with open(portfile) as f:
            vals = [int(v) for v in f.read().split()]
        self.mapproxy_pids = vals[1:]
        self.wms_url = "http://127.0.0.1:%d/service" % vals[0]
        wait_for("mapproxy", lambda: http("GET", self.wms_url + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0",
                                          timeout=5, raw=True)[0] == 200, self.mapproxy)
        # One GetMap of a whole metatile at the finest zoom, so that a
        # misconfiguration shows here rather than as a failed export.
        c0, _, r0, _ = tile_range(MAIN_AREA, MAIN_ZOOM)
        ts = tile_deg(MAIN_ZOOM)
        minx, maxy = -180 + c0 * ts, 90 - r0 * ts
        q = ("?SERVICE=WMS&REQUEST=GetMap&VERSION=1.3.0&LAYERS=ortho&STYLES=&CRS=EPSG:4326&FORMAT=image/jpeg"
             "&WIDTH=1024&HEIGHT=1024&BBOX=%r,%r,%r,%r" % (maxy - 4 * ts, minx, maxy, minx + 4 * ts))
        _, body = http("GET", self.wms_url + q, timeout=30, raw=True)
        if not body.startswith(b"\xff\xd8"):
            raise Failed("MapProxy GetMap did not answer a JPEG: %r" % body[:300])

    def getmaps(self):
        """(pixels, Unix time, query string) of every GetMap MapProxy has
        served so far."""
        out = []
        try:
            with open(self.access) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 4 and parts[1] != "0":
                        out.append((int(parts[1]), float(parts[2]), parts[3]))
        except OSError:
            pass
        return out

    def access_count(self):
        """GetMap requests, pixels and pixels inside MAIN_AREA (where
        MapProxy's tile source has data) MapProxy has served so far."""
        g = self.getmaps()
        return len(g), sum(px for px, _, _ in g), sum(px * share_inside(q, MAIN_AREA) for px, _, q in g)

    def first_getmap(self, since, wall0):
        """Seconds from wall0 to the first of the GetMaps after the first
        since, or None."""
        g = self.getmaps()[since:]
        return min(t for _, t, _ in g) - wall0 if g else None

    def getmap_query(self, since):
        """The query string of the first GetMap after the first since (the
        parameters a client sends), or None."""
        g = self.getmaps()[since:]
        return g[0][2] if g else None

    def write_catalog(self):
        def layer(lid, product, source, fp, zoom, fmt):
            return {"id": lid, "productId": product, "productType": "Orthophoto", "version": "1",
                    "description": "bench-e2e " + product, "footprint": fp, "maxResolution": resolution(zoom),
                    "source": source, "tileFormat": fmt, "jpegQuality": 85}
        store = {"kind": "tilestore", "path": self.tiledir, "rowOrigin": "top", "extensions": ["jpg"]}
        layers = [layer(layer_id("tiles", i), "bench-tiles-%d" % i, store, MAIN_AREA, MAIN_ZOOM, "jpeg")
                  for i in range(TILE_RUNS)]
        layers.append(layer(layer_id("wms"), "bench-wms", {
            "kind": "wms", "url": self.wms_url, "version": "1.3.0", "layers": ["ortho"], "format": "image/jpeg",
            "transparent": False, "metatile": [4, 4]}, MAIN_AREA, MAIN_ZOOM, "jpeg"))
        wms = layers[-1]
        # The same WMS with overviews built from the finest zoom (issue 13 §2).
        layers.append(dict(layer(layer_id("wms-ds"), "bench-wms-downsample", wms["source"], MAIN_AREA, MAIN_ZOOM, "jpeg"),
                           overviews="downsample"))
        # The tile directory's noisy photographs through the WMS as PNG,
        # encoded again as PNG: imagery of many colours, the other end from
        # the demo's flat tints. (A tile store's tiles, and tiles cut from a
        # JPEG GetMap, are stored as they are when the layer's tileFormat
        # allows JPEG, as it does for the cases above.)
        layers.append(layer(layer_id("png", 1), "bench-png-imagery", dict(layers[-1]["source"], format="image/png"),
                             MAIN_AREA, MAIN_ZOOM, "png"))
        for name in SCALE_CASES:
            layers.append(layer(layer_id(name), "bench-" + name, {"kind": "demo"}, SCALE_AREA, SCALE_ZOOM, "mixed"))
        # A footprint wider than the area, so that no tile is left empty.
        layers.append(layer(layer_id("png"), "bench-png", {"kind": "demo"}, [-180, -90, 180, 90], PNG_ZOOM, "png"))

        layers.append(layer(layer_id("large"), "bench-large", {"kind": "tilestore", "path": self.memdir, "rowOrigin": "top",
                                                              "extensions": ["jpg"]}, MEM_AREA, MEM_ZOOM, "jpeg"))
        self.catalog = os.path.join(self.work, "catalog.json")
        with open(self.catalog, "w") as f:
            json.dump({"layers": layers}, f, indent=2)

    # ---- workers and exports

    def start_workers(self, label, pins):
        """Starts one worker per entry of pins (a core, or None for
        unpinned); pinned ones get GOMAXPROCS=1."""
        workers = []
        for i, core in enumerate(pins):
            argv = [EXPORTER, "worker"]
            env = dict(self.env)
            # A worker serves health and /metrics (no token) on its own
            # address; the download links it hands out are the trigger's.
            ops = free_port()
            env["EXPORTER_HTTP_ADDR"] = "127.0.0.1:%d" % ops
            env["EXPORTER_HTTP_PUBLIC_URL"] = self.base
            if core is not None:
                argv = ["taskset", "-c", str(core)] + argv
                env["GOMAXPROCS"] = "1"
            path = os.path.join(self.logs, "%s-worker%d.log" % (label, i + 1))
            wk = start("%s worker %d" % (label, i + 1), argv, env, path, cwd=self.work)
            wk.metrics_url = "http://127.0.0.1:%d/metrics" % ops
            workers.append(wk)
        for wk in workers:
            wait_for(wk.name, lambda wk=wk: b'"worker started"' in open(wk.logpath, "rb").read(), wk)
        return workers

    def groups(self, workers=()):
        g = {"redis": [self.redis.pid], "mapproxy": self.mapproxy_pids,
             "trigger": [t.pid for t in self.triggers if t.alive()]}
        for i, wk in enumerate(workers):
            g["worker %d" % (i + 1)] = [wk.pid]
        return g

    def export(self, label, layer, bbox, zoom, pins, timeout, base=None, check_store=None, validate=True,
               download_pkg=True, inspect=None, keep=False):
        base = base or self.base
        quiet = wait_quiet(QUIET_WAIT)
        workers = self.start_workers(label, pins)
        body = {"dbId": layer, "bbox": bbox, "targetResolution": resolution(zoom), "callbackURLs": [],
                "crs": "EPSG:4326", "priority": 1000}
        _, est = http("POST", base + "/estimate", body, self.token)
        tiles_total = est["tilesTotal"]
        log("%s: estimate %d tiles, zooms 0-%d, bbox %s" % (label, tiles_total, est["zoom"], est["bbox"]))
        req0 = self.access_count()
        meter = Meter(self.groups(workers))
        wall0, t0 = time.time(), time.monotonic()
        _, created = http("POST", base + "/create", body, self.token)
        if created.get("status") != "In-Progress":
            raise Failed("%s: POST /create answered %s, want a new job" % (label, created))
        jid = created["id"]
        rendered_at = None
        while True:
            _, j = http("GET", base + "/jobs/" + jid, token=self.token)
            now = time.monotonic()
            if rendered_at is None and j["tilesDone"] >= j["tilesTotal"]:
                rendered_at = now
            if j["status"] in ("Completed", "Failed", "Cancelled", "Expired"):
                break
            for wk in workers:
                if not wk.alive():
                    raise Failed("%s exited during the export:\n%s" % (wk.name, wk.tail()))
            if now - t0 > timeout:
                raise Failed("%s: not Completed after %ds (%d of %d tiles done)" % (label, timeout, j["tilesDone"], j["tilesTotal"]))
            time.sleep(0.1)
        t1 = time.monotonic()
        usage = meter.stop()
        req1 = self.access_count()
        if j["status"] != "Completed":
            raise Failed("%s: job %s %s: %s" % (label, jid, j["status"], j.get("reason")))
        secs = t1 - t0
        rss = [peak_rss_mb(wk.pid) for wk in workers]
        io = [io_bytes(wk.pid) for wk in workers]
        # The finalize task records its duration after the job is Completed.
        metrics = {}
        for _ in range(150):
            metrics = worker_metrics(workers)
            if len(created.get("taskIds", [])) < 2 or any("export:finalize" in k for k in metrics):
                break
            time.sleep(0.1)
        for wk in workers:
            stop(wk)
        batches, finalize = self.batch_log(workers, jid, wall0)
        # From the end of the last batch to Completed, by the workers' logs:
        # what is left when rendering is done (the merge, the digests, the
        # store), as a share of the wall time.
        last_batch = max((b["at"] for b in batches), default=None)
        completed_at = finalize.get("export completed", {}).get("at")
        tail_s = completed_at - last_batch if last_batch is not None and completed_at is not None else None
        size = j["result"]["fileSize"]
        name = j["packageName"] + ".gpkg"
        if download_pkg:
            path = os.path.join(self.work, "dl", name)
            download(j["result"]["fileUri"], self.token, path)
        else:
            # The local store's key of a package: packages/<job id>/<name>.gpkg.
            path = os.path.join(self.work, "data", "packages", jid, name)
        if os.path.getsize(path) != size:
            raise Failed("%s: package is %d bytes, the job says %d" % (label, os.path.getsize(path), size))
        table, by_zoom = gpkg_tiles(path)
        stored = sum(by_zoom.values())
        if stored != tiles_total:
            raise Failed("%s: package holds %d tiles, the estimate said %d" % (label, stored, tiles_total))
        valid, vout = None, "not run"
        if validate:
            valid, vout = validate_gpkg(path)
            if not valid:
                raise Failed("%s: validate_gpkg: %s" % (label, vout))
        sample = None
        if check_store:
            sample = sample_matches_store(path, table, check_store)
            if sample[1]:
                raise Failed("%s: %d of %d sampled tiles differ from the tile store" % (label, sample[1], sample[0]))
        res = {
            "label": label, "job": jid, "tiles": stored, "seconds": secs, "bytes": size,
            "tiles_per_s": stored / secs, "mb_per_s": size / 1e6 / secs, "rss_mb": rss,
            "render_s": (rendered_at - t0) if rendered_at else None,
            "finish_s": (t1 - rendered_at) if rendered_at else None, "batches": batches, "finalize": finalize,
            "tail_s": tail_s, "tail_share": tail_s / secs if tail_s is not None else None,
            "tasks": len(created.get("taskIds", [])), "valid": valid, "validate_output": vout, "sample": sample,
            "workers": len(workers), "pins": pins, "metrics": metrics, "quiet_before": quiet,
            "io_read": sum(x[0] for x in io), "io_written": sum(x[1] for x in io),
            "getmap": req1[0] - req0[0], "getmap_pixels": req1[1] - req0[1], "getmap_data_pixels": req1[2] - req0[2],
            "first_getmap_s": self.first_getmap(req0[0], wall0), "getmap_query": self.getmap_query(req0[0]),
        }
        res.update(usage)
        if tail_s is not None:
            merged = finalize.get("parts merged", {})
            log("%s: last batch ended %.1f s after POST /create, Completed %.1f s later: %.0f%% of the wall time; "
                "%s of %s parts merged ahead; finalize waited %s, merged %s, finished %s, stored %s s" % (
                    label, last_batch, tail_s, 100 * tail_s / secs, merged.get("merged_ahead", "-"), merged.get("parts", "-"),
                    *("%.2f" % merged[k] if merged.get(k) is not None else "-"
                      for k in ("wait_seconds", "merge_seconds", "finish_seconds", "store_seconds"))))
        log("%s: %d tiles in %.1f s = %.0f tiles/s, %.1f MB/s, peak RSS %s MB; CPU s %s; others %.1f s (%.0f%%)" % (
            label, stored, secs, stored / secs, size / 1e6 / secs, " / ".join("%.0f" % r for r in rss),
            ", ".join("%s %.1f" % kv for kv in usage["cpu_s"].items() if kv[1] >= 0.05),
            usage["other_cpu_s"], 100 * usage["other_share"]))
        if inspect:
            res.update(inspect(path, table, zoom))
        if keep:
            res["path"] = path  # the caller removes it
        elif download_pkg:
            os.remove(path)  # keep disk use down; the numbers are recorded
        return res

    def batch_log(self, workers, jid, wall0):
        """Per batch, from the workers' JSON logs: which worker rendered it,
        when it ended (seconds after POST /create) and its tiles; and when
        the merge and the store ended."""
        batches, finalize = [], {}
        for i, wk in enumerate(workers):
            with open(wk.logpath, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if jid not in line:
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    at = parse_time(rec["time"]) - wall0
                    if rec.get("msg") == "batch rendered":
                        batches.append({"worker": i + 1, "batch": rec.get("batch"), "tiles": rec.get("tiles"), "at": at})
                    elif rec.get("msg") in ("parts merged", "export completed"):
                        finalize[rec["msg"]] = dict({k: rec.get(k) for k in (
                            "parts", "merged_ahead", "wait_seconds", "merge_seconds", "finish_seconds", "store_seconds")},
                            worker=i + 1, at=at)
        batches.sort(key=lambda b: b["at"])
        return batches, finalize

    def seed(self, task, tiles_area, timeout):
        d = os.path.join(self.work, "seed")
        conf, tasks = os.path.join(d, "seed_mapproxy.yaml"), os.path.join(d, "seed.yaml")
        if not os.path.exists(conf):
            with open(conf, "w") as f:
                f.write(seed_yaml(d, self.tiledir, self.wms_url, MAIN_AREA, MAIN_ZOOM))
            with open(tasks, "w") as f:
                f.write(seed_tasks_yaml(MAIN_AREA, MAIN_ZOOM))
        quiet = wait_quiet(QUIET_WAIT)
        req0 = self.access_count()
        meter = Meter(self.groups())
        wall0, t0 = time.time(), time.monotonic()
        logpath = os.path.join(self.logs, "seed-%s.log" % task)
        with open(logpath, "wb") as out:
            p = subprocess.Popen(["mapproxy-seed", "-f", conf, "-s", tasks, "--seed=" + task, "-c", str(SEED_CONCURRENCY)],
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=clean_env(), cwd=d,
                                 preexec_fn=_die_with_parent)
            # wait4 gives the peak RSS of mapproxy-seed and of the seed
            # processes it started and reaped.
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    p.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() - t0 > timeout:
                    p.kill()
                    p.wait()
                    raise Failed("mapproxy-seed %s: not done after %ds" % (task, timeout))
                time.sleep(0.1)
        secs = time.monotonic() - t0
        usage = meter.stop()
        req1 = self.access_count()
        rss = ru.ru_maxrss / 1024.0
        if p.returncode != 0:
            with open(logpath, "rb") as f:
                raise Failed("mapproxy-seed %s exited %d:\n%s" % (task, p.returncode, f.read()[-3000:].decode(errors="replace")))
        path = os.path.join(d, "seed_%s.gpkg" % task)
        _, by_zoom = gpkg_tiles(path)
        stored = sum(by_zoom.values())
        size = os.path.getsize(path)
        res = {"label": "mapproxy-seed " + task, "tiles": tiles_area, "tiles_stored": stored, "seconds": secs,
               "bytes": size, "tiles_per_s": tiles_area / secs, "stored_per_s": stored / secs,
               "mb_per_s": size / 1e6 / secs, "seed_rss_mb": rss, "quiet_before": quiet,
               "getmap": req1[0] - req0[0], "getmap_pixels": req1[1] - req0[1], "getmap_data_pixels": req1[2] - req0[2],
               "first_getmap_s": self.first_getmap(req0[0], wall0), "getmap_query": self.getmap_query(req0[0])}
        res.update(usage)
        log("mapproxy-seed %s: %d tiles stored (%d in the area) in %.1f s = %.0f tiles/s; CPU s %s; others %.1f s (%.0f%%)" % (
            task, stored, tiles_area, secs, tiles_area / secs,
            ", ".join("%s %.1f" % kv for kv in usage["cpu_s"].items() if kv[1] >= 0.05),
            usage["other_cpu_s"], 100 * usage["other_share"]))
        os.remove(path)
        return res

    # ---- the run

    def run(self):
        r = self.results
        t = time.monotonic()
        self.setup()
        r["version"] = self.exporter_version()
        r["tile_directory"] = self.tiledir_info
        log("setup done in %.1f s; exporter %s" % (time.monotonic() - t, r["version"]))

        both = [None, None]
        if "tilestore" in CASES:
            self.tilestore_cases(both)
        if "wms" in CASES:
            r["wms"] = self.export("wms", layer_id("wms"), MAIN_AREA, MAIN_ZOOM, both, 900, keep=True)
            try:
                r["wms_ds"] = self.export("wms-downsample", layer_id("wms-ds"), MAIN_AREA, MAIN_ZOOM, both, 900,
                                          inspect=lambda path, table, zoom: overview_difference(path, r["wms"]["path"], zoom))
            finally:
                os.remove(r["wms"].pop("path"))
            r["seed_wms"] = self.seed("wms", r["wms"]["tiles"], 1200)
        for key in ("tiles", "wms"):
            if key in r and r[key]["tiles"] < MIN_TILES:
                raise Failed("%s export has %d tiles, want at least %d" % (key, r[key]["tiles"], MIN_TILES))
        if "scaling" in CASES:
            self.scaling_cases()
        if "png" in CASES:
            r["png"] = self.export("demo-png", layer_id("png"), PNG_AREA, PNG_ZOOM, both, 600, inspect=png_against_gdal)
            r["png_imagery"] = self.export("imagery-png", layer_id("png", 1), PNG_AREA, PNG_ZOOM, both, 600,
                                           inspect=png_against_gdal)
        if "memory" in CASES:
            r["mem"] = self.export("large-tilestore", layer_id("large"), MEM_AREA, MEM_ZOOM, both, 3000 if LARGE else 900,
                                   validate=not LARGE, download_pkg=not LARGE)
        return r

    def tilestore_cases(self, both):
        r = self.results
        runs = [self.export("tilestore-%d" % (i + 1), layer_id("tiles", i), MAIN_AREA, MAIN_ZOOM, both, 600,
                            check_store=self.tiledir, validate=(i == 0)) for i in range(TILE_RUNS)]
        runs.sort(key=lambda x: x["seconds"])
        r["tiles"] = dict(runs[len(runs) // 2], runs_s=sorted(x["seconds"] for x in runs))
        r["seed_tiles"] = self.seed("tiles", r["tiles"]["tiles"], 900)

    def scaling_cases(self):
        r = self.results
        if CORES >= 2:
            r["scale1"] = self.export("demo-1core", layer_id("scale1"), SCALE_AREA, SCALE_ZOOM, [0], 600)
            r["scale2"] = self.export("demo-2cores", layer_id("scale2"), SCALE_AREA, SCALE_ZOOM, [0, 1], 600)
            # The same with the largest batches the cap allows, as before
            # exports were spread: a trigger of its own.
            trig, base = self.start_trigger("trigger-unspread", {"EXPORTER_JOBS_BATCH_SPREAD": "1"})
            r["scale1s"] = self.export("demo-1core-nospread", layer_id("scale1s"), SCALE_AREA, SCALE_ZOOM, [0], 600, base=base)
            r["scale2s"] = self.export("demo-2cores-nospread", layer_id("scale2s"), SCALE_AREA, SCALE_ZOOM, [0, 1], 600, base=base)
            stop(trig)
            self.triggers.remove(trig)
        else:
            log("scaling check skipped: one core")

    def exporter_version(self):
        out = subprocess.run([EXPORTER, "version"], capture_output=True, text=True).stdout.strip()
        return out.replace("exporter ", "")


# ---------------------------------------------------------------- report

def table(head, rows):
    widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(len(head))]
    return ["  ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in [head] + rows]


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def report(r, elapsed):
    rows = []

    def add(case, res, rss, note=""):
        rows.append([case, "%d" % res["tiles"], "%.1f" % res["seconds"], "%.0f" % res["tiles_per_s"],
                     "%.1f" % res["mb_per_s"], rss, "%.0f%%" % (100 * res["other_share"]), note])

    def wrss(res):
        return " / ".join("%.0f" % v for v in res["rss_mb"])

    def split(res):
        out = "render %.1f + finish %.1f s, %d tasks" % (res["render_s"], res["finish_s"], res["tasks"])
        if res.get("tail_s") is not None:
            out += "; last batch → Completed %.1f s (%.0f%%)" % (res["tail_s"], 100 * res["tail_share"])
        b = res.get("batches") or []
        if len(b) >= 2:
            # How long the last batch ran on after the one before it: a
            # worker idles that long at the end.
            out += "; last batch ends %.1f s after the one before" % (b[-1]["at"] - b[-2]["at"])
        return out

    def first(res):
        f = res.get("first_getmap_s")
        return "" if f is None else "; first GetMap %.2f s after the start" % f

    if "tiles" in r:
        t = r["tiles"]
        add("exporter, tile store, 2 workers", t, wrss(t),
            "median of %s s; %s" % (", ".join("%.1f" % x for x in t["runs_s"]), split(t)))
        s = r["seed_tiles"]
        add("mapproxy-seed -c %d, tile directory" % SEED_CONCURRENCY, s, "%.0f (seed)" % s["seed_rss_mb"],
            "%d tiles stored" % s["tiles_stored"])
    if "wms" in r:
        w = r["wms"]
        add("exporter, WMS, 2 workers", w, wrss(w), "%s; %d GetMap%s" % (split(w), w["getmap"], first(w)))
        if "wms_ds" in r:
            d = r["wms_ds"]
            add("exporter, WMS, overviews: downsample, 2 workers", d, wrss(d), "%s; %d GetMap%s" % (split(d), d["getmap"], first(d)))
        s = r["seed_wms"]
        add("mapproxy-seed -c %d, WMS" % SEED_CONCURRENCY, s, "%.0f (seed)" % s["seed_rss_mb"],
            "%d tiles stored; %d GetMap%s" % (s["tiles_stored"], s["getmap"], first(s)))
    for key, case in (("scale1", "demo, 1 worker on core 0"), ("scale2", "demo, 2 workers on cores 0, 1"),
                      ("scale1s", "demo, 1 worker, %s" % UNSPREAD),
                      ("scale2s", "demo, 2 workers, %s" % UNSPREAD)):
        if key in r:
            add("exporter, " + case, r[key], wrss(r[key]), split(r[key]))
    if "mem" in r:
        m = r["mem"]
        add("exporter, large tile store, 2 workers", m, wrss(m), split(m))
    if "png" in r:
        add("exporter, demo as PNG, 2 workers", r["png"], wrss(r["png"]), split(r["png"]))
        add("exporter, imagery as PNG, 2 workers", r["png_imagery"], wrss(r["png_imagery"]), split(r["png_imagery"]))

    ratios = []
    if "tiles" in r:
        tr = r["tiles"]["tiles_per_s"] / r["seed_tiles"]["tiles_per_s"]
        ratios.append(["tile store: exporter ÷ mapproxy-seed tiles/s", "%.2f×" % tr, "≥ 10×", "met" if tr >= 10 else "missed"])
    if "wms" in r:
        wr = r["wms"]["tiles_per_s"] / r["seed_wms"]["tiles_per_s"]
        ratios.append(["WMS: exporter ÷ mapproxy-seed tiles/s", "%.2f×" % wr, "≥ 2×", "met" if wr >= 2 else "missed"])
    if "wms_ds" in r:
        d = r["wms_ds"]
        dr = d["tiles_per_s"] / r["seed_wms"]["tiles_per_s"]
        ratios.append(["WMS, overviews: downsample: exporter ÷ mapproxy-seed tiles/s", "%.2f×" % dr, "≥ 1.25×",
                       "met" if dr >= 1.25 else "missed"])
        ratios.append(["  its GetMap pixels ÷ overviews: source's", "%.2f" % (d["getmap_pixels"] / r["wms"]["getmap_pixels"]),
                       "", "%d / %d GetMaps" % (d["getmap"], r["wms"]["getmap"])])
        ratios.append(["  overview tiles' mean |difference| to the source's, R G B (0-255)",
                       " ".join("%.2f" % v for v in d["overview_mad"]), "", "%d tiles below zoom %d" % (d["overview_tiles"], MAIN_ZOOM)])
    def busy_cores(res):
        return sum(v for k, v in res["cpu_s"].items() if k.startswith("worker")) / res["seconds"]

    for a, b, what in (("scale1", "scale2", "default batches"), ("scale1s", "scale2s", UNSPREAD)):
        if a in r:
            sp = r[b]["tiles_per_s"] / r[a]["tiles_per_s"]
            ratios.append(["two pinned workers ÷ one (%s)" % what, "%.2f×" % sp, "≥ 1.7×", "met" if sp >= 1.7 else "missed"])
            # How many cores the workers kept busy: the speed-up the
            # exporter would show if a core ran as fast with its neighbour
            # busy as alone, which a shared VM does not promise.
            ratios.append(["  cores kept busy by workers, 2 ÷ 1 (%s)" % what, "%.2f×" % (busy_cores(r[b]) / busy_cores(r[a])),
                           "", "%.2f vs %.2f cores; worker CPU %.1f vs %.1f s" % (
                               busy_cores(r[b]), busy_cores(r[a]),
                               busy_cores(r[b]) * r[b]["seconds"], busy_cores(r[a]) * r[a]["seconds"])])
    for key, what in (("tiles", "tile store"), ("mem", "large tile store")):
        if key in r and r[key].get("tail_share") is not None:
            share = r[key]["tail_share"]
            ratios.append(["%s: last batch's end → Completed, share of wall time" % what, "%.0f%% (%.1f of %.1f s)" % (
                100 * share, r[key]["tail_s"], r[key]["seconds"]), "≤ 15%", "met" if share <= 0.15 else "missed"])
    if "mem" in r:
        peak = max(r["mem"]["rss_mb"])
        ratios.append(["peak worker RSS, %d-tile export" % r["mem"]["tiles"], "%.0f MB" % peak, "< 300 MB at 1,000,000 tiles",
                       ("met" if peak < 300 else "missed") + ("" if LARGE else " (smaller export; BENCH_LARGE=1 for 1M)")])
    for key, what in (("png", "demo"), ("png_imagery", "imagery")):
        if key in r:
            pr = r[key]["png_bytes"] / r[key]["gdal_png_bytes"]
            ratios.append(["PNG tiles, %s, zoom %d: exporter ÷ GDAL bytes (%d tiles)" % (what, PNG_ZOOM, r[key]["png_tiles"]),
                           "%.2f×" % pr, "≤ 1×", "met" if pr <= 1 else "missed"])
    if "wms" in r:
        need = metatiles(MAIN_AREA, MAIN_ZOOM)
        ratios.append(["WMS GetMaps: exporter / mapproxy-seed / distinct 4×4 metatiles of the area",
                       "%d / %d / %d" % (r["wms"]["getmap"], r["seed_wms"]["getmap"], need), "exporter ≤ metatiles",
                       "met" if r["wms"]["getmap"] <= need else "missed"])
        peak_wms = max(r["wms"]["rss_mb"])
        ratios.append(["peak worker RSS, WMS export", "%.0f MB" % peak_wms, "(< 300 MB)", "ok" if peak_wms < 300 else "over"])

    head = ["case", "tiles", "s", "tiles/s", "MB/s", "peak RSS MB per worker", "others' CPU", "notes"]
    rhead = ["ratio", "measured", "target", "result"]
    out = [""] + table(head, rows) + [""] + table(rhead, ratios) + [""]
    out.append("CPU seconds per case (%d cores: %d CPU-s per wall second); 'others' is the rest of the machine:" % (CORES, CORES))
    for key in ("tiles", "seed_tiles", "wms", "wms_ds", "seed_wms", "scale1", "scale2", "scale1s", "scale2s", "mem"):
        if key not in r:
            continue
        res = r[key]
        parts = ["%s %.1f" % kv for kv in res["cpu_s"].items() if kv[1] >= 0.05]
        out.append("  %-22s %s; others %.1f; busy %.1f of %.1f (%.0f%%)" % (
            res["label"], ", ".join(parts), res["other_cpu_s"], res["busy_cpu_s"], res["available_cpu_s"],
            100 * res["busy_cpu_s"] / res["available_cpu_s"]))
    def workers_ms(res):
        return sum(v for k, v in res["cpu_s"].items() if k.startswith("worker")) / res["tiles"] * 1000

    out.append("")
    if "tiles" in r:
        st = r["seed_tiles"]["cpu_s"].get("mapproxy-seed", 0) / r["seed_tiles"]["tiles_stored"] * 1000
        out.append("CPU ms per tile, tile store: exporter workers %.2f, mapproxy-seed %.2f." % (workers_ms(r["tiles"]), st))
    if "wms" in r:
        w, sw = r["wms"], r["seed_wms"]
        es = sw["cpu_s"].get("mapproxy-seed", 0) / sw["tiles_stored"] * 1000
        mw = w["cpu_s"].get("mapproxy", 0) / w["tiles"] * 1000
        ms = sw["cpu_s"].get("mapproxy", 0) / sw["tiles_stored"] * 1000
        out.append("CPU ms per tile, WMS: exporter workers %.2f + MapProxy WMS %.2f; mapproxy-seed %.2f + MapProxy WMS %.2f"
                   " (per tile stored)." % (workers_ms(w), mw, es, ms))
        out.append("With the WMS on the same cores, no client can beat mapproxy-seed by more than"
                   " (WMS + seed) / WMS = %.2f× here." % ((ms + es) / ms if ms else float("nan")))
        # MapProxy's CPU per pixel it served, whatever the tile counts: how
        # much each client's GetMaps cost the server. mapproxy-seed's
        # metatiles reach past the area (the exporter's are clipped to the
        # footprint), and MapProxy draws pixels outside its source's
        # coverage blank for next to nothing: per pixel of data is the
        # fair comparison.
        for what, key in (("served", "getmap_pixels"), ("inside the area", "getmap_data_pixels")):
            mpw = w["cpu_s"].get("mapproxy", 0) / max(w[key], 1) * 1e9
            mps = sw["cpu_s"].get("mapproxy", 0) / max(sw[key], 1) * 1e9
            out.append("MapProxy WMS CPU ms per GetMap megapixel %s: exporter %.1f (%.0f Mpx), mapproxy-seed %.1f"
                       " (%.0f Mpx): exporter %+.1f%%." % (what, mpw, w[key] / 1e6, mps, sw[key] / 1e6,
                                                         100 * (mpw / mps - 1) if mps else float("nan")))
        for who, res in (("exporter", w), ("mapproxy-seed", sw)):
            out.append("First GetMap of %s: ?%s" % (who, res.get("getmap_query")))
    out.append("")
    out.append("Worker I/O (read / written through system calls, all workers) against the package size:")
    for key in ("tiles", "wms", "wms_ds", "mem"):
        if key not in r:
            continue
        res = r[key]
        out.append("  %-22s %.0f / %.0f MB for a %.0f MB package (%.1f× / %.1f×)" % (
            res["label"], res["io_read"] / 1e6, res["io_written"] / 1e6, res["bytes"] / 1e6,
            res["io_read"] / res["bytes"], res["io_written"] / res["bytes"]))
    out.append("")
    out.append("Batches (s after POST /create when each ended, worker, tiles):")
    for key in ("tiles", "wms", "wms_ds", "scale1", "scale2", "scale1s", "scale2s", "mem"):
        if key not in r:
            continue
        res = r[key]
        b = ", ".join("%.1f w%d %s" % (x["at"], x["worker"], x["tiles"]) for x in res["batches"])
        fin = res["finalize"]
        f = ""
        if "parts merged" in fin:
            f = "; merged at %.1f (w%d)" % (fin["parts merged"]["at"], fin["parts merged"]["worker"])
        if "export completed" in fin:
            f += "; stored at %.1f" % fin["export completed"]["at"]
        out.append("  %-22s %s%s" % (res["label"], b, f))
    out.append("")
    out.append("Worker histograms, summed over workers (count, total s, mean):")
    for key in ("tiles", "wms", "wms_ds", "scale1", "scale2", "scale1s", "scale2s", "mem"):
        if key not in r:
            continue
        parts = []
        for name, mm in sorted(r[key].get("metrics", {}).items()):
            if not mm["count"]:
                continue
            short = name.replace("exporter_worker_", "").replace("_duration_seconds", "").replace("task_type=", "")
            parts.append("%s n=%d %.1f s mean %.2f ms" % (short, mm["count"], mm["sum"], 1000 * mm["sum"] / mm["count"]))
        out.append("  %-22s %s" % (r[key]["label"], "; ".join(parts)))
    out.append("")
    out.append("exporter %s; whole run %.0f s" % (r.get("version", "?"), elapsed))
    md = md_table(head, rows) + [""] + md_table(rhead, ratios)
    return "\n".join(out), "\n".join(md)


# ---------------------------------------------------------------- main

def main():
    if not os.access(EXPORTER, os.X_OK):
        raise SystemExit("bench-e2e: %s missing: run make build" % EXPORTER)
    for tool in ("redis-server", "mapproxy-seed", "mapproxy-util", "taskset"):
        if not shutil.which(tool):
            raise SystemExit("bench-e2e: %s not found: run make tools" % tool)
    work = tempfile.mkdtemp(prefix="bench-e2e-")
    started = time.monotonic()

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    def on_alarm(signum, frame):
        raise Failed("the run took longer than BENCH_TIMEOUT=%ds" % TIMEOUT)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT)
    log("work dir %s; %d cores; %s" % (work, CORES, "BENCH_LARGE: about 1,000,000 tiles in the memory check" if LARGE
                                         else "memory check at 266,908 tiles (BENCH_LARGE=1 for 1,007,027)"))
    unknown = [c for c in CASES if c not in ALL_CASES]
    if unknown:
        raise SystemExit("bench-e2e: unknown BENCH_CASES %s: want some of %s" % (unknown, ",".join(ALL_CASES)))
    bench = Bench(work)
    code = 0
    try:
        results = bench.run()
        signal.alarm(0)
        text, md = report(results, time.monotonic() - started)
        print(text)
        print()
        print(md)
        with open(os.path.join(work, "results.json"), "w") as f:
            json.dump(results, f, indent=2, default=str)
        if REPORT:
            with open(REPORT, "w") as f:
                f.write(md + "\n\n```\n" + text + "\n```\n")
                f.write("\n<!-- results.json\n" + json.dumps(results, indent=1, default=str) + "\n-->\n")
    except Failed as e:
        log("FAILED: %s" % e)
        code = 1
    except KeyboardInterrupt as e:
        log("interrupted (%s)" % e)
        code = 130
    except Exception:  # noqa: BLE001 - a bug in this script: report it, clean up
        log("FAILED:\n" + traceback.format_exc())
        code = 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in reversed(list(PROCS)):
            p.stop()
        if KEEP:
            log("logs and data kept in %s" % work)
        elif code == 1:
            # A failed run keeps its logs (and MapProxy's configs), not the
            # bulky data.
            for d in ("tiles", "memtiles", "data", "dl", "tmp", "seed", "redis"):
                shutil.rmtree(os.path.join(work, d), ignore_errors=True)
            log("logs kept in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
