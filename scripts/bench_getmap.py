"""What a GetMap costs the map server, by its parameters (issue 13, §4).

    make bench-getmap        (/usr/bin/python3 scripts/bench_getmap.py)

Run with the system Python (it has MapProxy and PIL). Everything happens on 127.0.0.1 in a temp dir removed on exit, with
the WMS of `make bench-e2e` (scripts/bench_e2e.py: the same generated noisy
JPEG tiles, the same cache-less MapProxy layer `ortho` in EPSG:4326, served
by scripts/bench_e2e_mapproxy.py) over a smaller area, in one MapProxy
process, so that its CPU time is the cost of the GetMaps this script sends
one at a time:

 1. mapproxy-seed seeds one zoom of the area from that WMS, as `make
    bench-e2e` does (meta_size 4 x 4, WMS 1.3.0, transparent: false), and
    its first GetMap, as MapProxy's access log recorded it, is the
    mapproxy-seed variant: its parameters, with each bbox put in.
 2. The variants (VARIANTS) are what the exporter's WMS source sends for a
    JPEG layer, before and after the change that dropped TRANSPARENT=FALSE,
    what mapproxy-seed sends, and the other ways of writing the same
    request: WMS 1.1.1 (SRS, longitude first), EXCEPTIONS, BGCOLOR.
 3. Every variant asks for the same bboxes (whole 4 x 4 metatiles, 1024 x
    1024, at the finest zoom, where most of an export's GetMaps are), one
    GetMap at a time. A warm-up pass checks that every variant answers the
    same pixels as the first (decoded; the bytes are compared too) and
    is not counted. Then ROUNDS rounds: for each bbox, every variant in
    turn, the order rotated from bbox to bbox and round to round, so that
    load from elsewhere on a shared machine falls on all variants alike.
    Each GetMap costs MapProxy's CPU time (user + system, read from /proc
    before and after it, not wall time; /proc counts in 10 ms ticks, whose
    rounding evens out over the GetMaps of a round).
 4. Prints, per variant, the median over the rounds of the CPU ms per
    GetMap, the spread (min to max), the median against the first
    variant's, and the median (and range) of its cost against the first
    variant's in the same round.

Environment: BENCH_ROUNDS (default 9), BENCH_BBOXES (GetMaps per variant
and round, default 24), BENCH_TIMEOUT (seconds for the whole run, default
900), BENCH_KEEP=1 (keep the temp dir).
"""

import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_e2e as e2e  # noqa: E402 - the bench's WMS, tiles and helpers

ROUNDS = int(os.environ.get("BENCH_ROUNDS") or 9)
NBBOX = int(os.environ.get("BENCH_BBOXES") or 24)
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT") or 900)
KEEP = os.environ.get("BENCH_KEEP", "") not in ("", "0")

ZOOM = e2e.MAIN_ZOOM
META = 4  # tiles per metatile side, as the bench's WMS layer and seed
COLS = 6  # metatiles across the area; rows follow from NBBOX


def area():
    """The area: COLS x ceil(NBBOX / COLS) whole metatiles of ZOOM, from the
    first metatile inside the bench's main area."""
    c0, _, r0, _ = e2e.tile_range(e2e.MAIN_AREA, ZOOM)
    c0, r0 = -(-c0 // META) * META, -(-r0 // META) * META
    rows = -(-NBBOX // COLS)
    ts = e2e.tile_deg(ZOOM)
    return [-180 + c0 * ts, 90 - (r0 + rows * META) * ts, -180 + (c0 + COLS * META) * ts, 90 - r0 * ts]


def bboxes(a):
    """NBBOX metatiles of a, (minx, miny, maxx, maxy), row by row."""
    step = META * e2e.tile_deg(ZOOM)
    out = []
    for i in range(NBBOX):
        r, c = divmod(i, COLS)
        minx, maxy = a[0] + c * step, a[3] - r * step
        out.append((minx, maxy - step, minx + step, maxy))
    return out


def fmt(v):
    # Shortest round-trip decimal, as Go's strconv.FormatFloat(v, 'f', -1, 64).
    return repr(float(v))


def bbox_param(b, lat_first):
    c = (b[1], b[0], b[3], b[2]) if lat_first else b
    return ",".join(fmt(v) for v in c)


def readable(params):
    """The query string as source.WMS writes it: sorted keys, commas,
    colons and slashes left as they are."""
    return urllib.parse.urlencode(sorted(params.items()), safe=",:/")


def exporter(version="1.3.0", transparent="FALSE", **extra):
    """What source.WMS sends for layer `ortho` as image/jpeg: 1.3.0 with
    CRS and latitude first, or 1.1.1 with SRS and longitude first;
    transparent None leaves TRANSPARENT out."""
    def q(b):
        p = {"SERVICE": "WMS", "VERSION": version, "REQUEST": "GetMap", "LAYERS": "ortho", "STYLES": "",
             "FORMAT": "image/jpeg", "WIDTH": str(META * e2e.TILE), "HEIGHT": str(META * e2e.TILE)}
        if version == "1.3.0":
            p["CRS"], p["BBOX"] = "EPSG:4326", bbox_param(b, True)
        else:
            p["SRS"], p["BBOX"] = "EPSG:4326", bbox_param(b, False)
        if transparent is not None:
            p["TRANSPARENT"] = transparent
        p.update(extra)
        return readable(p)
    return q


def recorded(query):
    """A variant from a query a client sent: its parameters in its order and
    encoding, with each bbox put in (in the axis order its VERSION has)."""
    pairs = [kv.partition("=")[::2] for kv in query.split("&")]
    version = dict((k.upper(), v) for k, v in pairs).get("VERSION")

    def q(b):
        return "&".join("%s=%s" % (k, bbox_param(b, version == "1.3.0") if k.upper() == "BBOX" else v)
                        for k, v in pairs)
    return q


def variants(seed_query):
    """(name, query function) of every variant, the baseline first."""
    return [
        ("exporter before: 1.3.0, TRANSPARENT=FALSE", exporter()),
        ("exporter now: 1.3.0, no TRANSPARENT", exporter(transparent=None)),
        ("mapproxy-seed as recorded", recorded(seed_query)),
        ("1.3.0, transparent=false (seed's spelling)", exporter(transparent="false")),
        ("1.1.1 (SRS, lon/lat), no TRANSPARENT", exporter(version="1.1.1", transparent=None)),
        ("1.3.0, no TRANSPARENT, EXCEPTIONS=XML", exporter(transparent=None, EXCEPTIONS="XML")),
        ("1.3.0, no TRANSPARENT, BGCOLOR=0xFFFFFF", exporter(transparent=None, BGCOLOR="0xFFFFFF")),
    ]


def seed_query(work, wms_url, mp, a):
    """Seeds the finest zoom of a with mapproxy-seed from the WMS and
    returns the query string of its first GetMap."""
    d = os.path.join(work, "seed")
    os.makedirs(d)
    conf, tasks = os.path.join(d, "seed_mapproxy.yaml"), os.path.join(d, "seed.yaml")
    with open(conf, "w") as f:
        f.write(e2e.seed_yaml(d, os.path.join(work, "tiles"), wms_url, a, ZOOM))
    with open(tasks, "w") as f:
        f.write(e2e.seed_tasks_yaml(a, ZOOM).replace("from: 0", "from: %d" % ZOOM))
    n0 = len(getmaps(mp))
    subprocess.run(["mapproxy-seed", "-f", conf, "-s", tasks, "--seed=wms", "-c", "1"], cwd=d, env=e2e.clean_env(),
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True,
                   timeout=300)
    got = getmaps(mp)[n0:]
    if not got:
        raise e2e.Failed("mapproxy-seed made no GetMap")
    return got[0]


def getmaps(mp):
    """Query strings of the GetMaps in MapProxy's access log, in order;
    fails on any answer that was not 200."""
    out = []
    with open(mp["access"]) as f:
        for line in f:
            status, pixels, _, query = line.split()
            if status != "200":
                raise e2e.Failed("MapProxy answered %s to ?%s" % (status, query))
            if pixels != "0":
                out.append(query)
    return out


def get(url):
    status, body = e2e.http("GET", url, timeout=60, raw=True)
    if status != 200 or not body.startswith(b"\xff\xd8"):
        raise e2e.Failed("GetMap %s: status %d, not a JPEG: %r" % (url, status, body[:200]))
    return body


def same_pixels(a, b):
    """Whether two encoded images decode to the same pixels, and how."""
    if a == b:
        return "same bytes"
    from PIL import Image, ImageChops
    ia, ib = Image.open(io.BytesIO(a)).convert("RGB"), Image.open(io.BytesIO(b)).convert("RGB")
    if ia.size == ib.size and ImageChops.difference(ia, ib).getbbox() is None:
        return "same pixels"
    return None


def start_mapproxy(work, a):
    d = os.path.join(work, "mapproxy")
    os.makedirs(d)
    conf = os.path.join(d, "mapproxy.yaml")
    with open(conf, "w") as f:
        f.write(e2e.server_yaml(d, os.path.join(work, "tiles"), a, ZOOM))
    portfile, access = os.path.join(d, "port"), os.path.join(d, "access.log")
    runner = os.path.join(e2e.ROOT, "scripts", "bench_e2e_mapproxy.py")
    p = e2e.start("mapproxy", [e2e.mapproxy_python(), runner, conf, portfile, "1", access], e2e.clean_env(),
                  os.path.join(d, "mapproxy.log"), cwd=d)
    e2e.wait_for("mapproxy port", lambda: os.path.exists(portfile), p)
    with open(portfile) as f:
        port, pid = [int(v) for v in f.read().split()]
    return {"proc": p, "pid": pid, "url": "http://127.0.0.1:%d/service" % port, "access": access}


def run(work):
    a = area()
    t = time.monotonic()
    n = e2e.generate_tiles(os.path.join(work, "tiles"), a, ZOOM)
    e2e.log("%d tiles, zooms 0-%d, area %s, in %.1f s" % (n, ZOOM, a, time.monotonic() - t))
    mp = start_mapproxy(work, a)
    sq = seed_query(work, mp["url"], mp, a)
    e2e.log("mapproxy-seed's first GetMap: ?%s" % sq)
    vs = variants(sq)
    bbs = bboxes(a)
    for name, q in vs:
        e2e.log("%-45s ?%s" % (name, q(bbs[0])))

    # Warm-up: every variant once over every bbox; the answers must match.
    base = [get(mp["url"] + "?" + vs[0][1](b)) for b in bbs]
    check = {}
    for name, q in vs[1:]:
        how = set()
        for b, want in zip(bbs, base):
            r = same_pixels(want, get(mp["url"] + "?" + q(b)))
            if r is None:
                raise e2e.Failed("%s: GetMap of %s answers other pixels than %s" % (name, b, vs[0][0]))
            how.add(r)
        check[name] = "same bytes" if how == {"same bytes"} else "same pixels"
    check[vs[0][0]] = "(baseline)"

    per = {name: [] for name, _ in vs}
    for r in range(ROUNDS):
        spent = {name: 0.0 for name, _ in vs}
        for i, b in enumerate(bbs):
            k = (r + i) % len(vs)
            for name, q in vs[k:] + vs[:k]:
                u = mp["url"] + "?" + q(b)
                c0 = e2e.cpu_seconds(mp["pid"])
                get(u)
                spent[name] += e2e.cpu_seconds(mp["pid"]) - c0
        for name, _ in vs:
            per[name].append(spent[name] / len(bbs) * 1000)
        e2e.log("round %d of %d: %s" % (r + 1, ROUNDS, ", ".join("%.1f" % per[name][-1] for name, _ in vs)))
    getmaps(mp)  # every answer was 200

    b0 = statistics.median(per[vs[0][0]])
    rows = []
    for name, _ in vs:
        m = statistics.median(per[name])
        # Paired: each round's cost against the first variant's in the
        # same round, which shared its load.
        ratio = sorted(100 * (v / b - 1) for v, b in zip(per[name], per[vs[0][0]]))
        rows.append([name, "%.1f" % m, "%.1f-%.1f" % (min(per[name]), max(per[name])),
                     "%+.1f%%" % (100 * (m / b0 - 1)),
                     "%+.1f%% (%+.0f to %+.0f)" % (statistics.median(ratio), ratio[0], ratio[-1]), check[name]])
    head = ["variant", "MapProxy CPU ms/GetMap (median)", "min-max", "medians vs first",
            "per round vs first: median (min to max)", "answer"]
    print("MapProxy CPU per 1024 x 1024 JPEG GetMap: %d rounds of %d GetMaps per variant, %d cores, "
          "1 MapProxy process, MapProxy %s" % (ROUNDS, len(bbs), e2e.CORES, mapproxy_version()))
    print("\n".join(e2e.table(head, rows)))
    print()
    print("\n".join(e2e.md_table(head, rows)))


def mapproxy_version():
    out = subprocess.run([e2e.mapproxy_python(), "-c", "import mapproxy.version as v; print(v.version)"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main():
    for tool in ("mapproxy-seed", "mapproxy-util"):
        if not shutil.which(tool):
            raise SystemExit("bench-getmap: %s not found: run make tools" % tool)
    work = tempfile.mkdtemp(prefix="bench-getmap-")

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    def on_alarm(signum, frame):
        raise e2e.Failed("not done after %d s (BENCH_TIMEOUT)" % TIMEOUT)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT)
    code = 0
    try:
        run(work)
    except e2e.Failed as e:
        e2e.log("FAILED: %s" % e)
        code = 1
    except KeyboardInterrupt as e:
        e2e.log("interrupted (%s)" % e)
        code = 130
    finally:
        signal.alarm(0)
        for p in reversed(list(e2e.PROCS)):
            p.stop()
        if KEEP or code:
            e2e.log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
