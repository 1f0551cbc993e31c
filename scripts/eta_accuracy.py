"""How close the service's ETA comes to the time the last tile was in fact
rendered. One export of the demo layer at zooms 12-13 (some 18,000 tiles)
through `exporter export` against a fresh `exporter all` on
127.0.0.1:18098; each line of the client is time-stamped, the trace is
kept in TRACE, and the error of every estimate made with at least 3 s left
is |ETA - actual| / actual.

    make build && python3 scripts/eta_accuracy.py run TRACE
    python3 scripts/eta_accuracy.py replay TRACE

replay feeds the trace's progress readings to both estimators the service
has had, the rate since the first progress and the rate over a window of
10 to 20 s (job.ETAWindow), and prints the mean error of each.
"""
import os, re, subprocess, sys, tempfile, time

EXPORTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bin", "exporter")
ADDR = "127.0.0.1:18098"
LINE = re.compile(r"^\s*([\d.]+) .* (\d+) of (\d+) tiles.*?(?:ETA ((?:\d+h)?(?:\d+m)?(?:\d+s)?))?$")


def run(trace):
    d = tempfile.mkdtemp()
    env = dict(os.environ, EXPORTER_DATA_DIR=d, EXPORTER_HTTP_ADDR=ADDR, EXPORTER_HTTP_RATE_LIMIT="0")
    srv = subprocess.Popen([EXPORTER, "all"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    token = None
    for line in srv.stdout:
        m = re.search(r"Bearer (\S+)", line)
        if m:
            token = m.group(1)
            break
    env = dict(os.environ, EXPORTER_SERVER="http://" + ADDR, EXPORTER_TOKEN=token)
    cli = subprocess.Popen([EXPORTER, "export", "-layer", "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", "-bbox", "34.2,29.4,35.9,33.4",
                            "-min-zoom", "12", "-max-zoom", "13", "-poll", "500ms", "-out", d + "/"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    with open(trace, "w") as out:
        for line in cli.stderr:
            out.write("%8.2f %s" % (time.time() - t0, line))
    cli.wait()
    srv.terminate()
    srv.wait()
    subprocess.run(["rm", "-rf", d])


def readings(trace):
    """(seconds, tiles done, tiles total, ETA seconds or None) per line."""
    out = []
    for line in open(trace):
        m = LINE.match(line.strip())
        if m:
            eta = m.group(4)
            secs = sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", eta)) if eta else None
            out.append((float(m.group(1)), int(m.group(2)), int(m.group(3)), secs))
    return out


def score(pts, estimates):
    """Mean and largest error of (seconds, ETA) estimates with >= 3 s left."""
    end = next(t for t, d, total, _ in pts if d == total)
    errs = [abs(eta - (end - t)) / (end - t) for t, eta in estimates if end - t >= 3]
    return end, len(errs), 100 * sum(errs) / len(errs), 100 * max(errs)


def replay(pts, window):
    """The estimates of the rate since the first reading (window None) or
    over a window as job.Store.SetProgress keeps it (10 s, 100 tiles)."""
    total = pts[0][2]
    since = nxt = None
    out = []
    for t, d, _, _ in pts:
        if d == 0:
            continue
        if since is None:
            since = nxt = (t, d)
        elif window and t - nxt[0] >= window and d - nxt[1] >= 100:
            since, nxt = nxt, (t, d)
        if d - since[1] >= 100 and t - since[0] >= 2 and d < total:
            out.append((t, round((total - d) * (t - since[0]) / (d - since[1]))))
    return out


if __name__ == "__main__":
    mode, trace = sys.argv[1], sys.argv[2]
    if mode == "run":
        run(trace)
    pts = readings(trace)
    if mode == "run":
        print("service: last tile at %.1f s, %d estimates, mean error %.0f%%, largest %.0f%%" %
              score(pts, [(t, eta) for t, _, _, eta in pts if eta is not None]))
    for name, window in (("since the first progress", None), ("10 s window", 10)):
        print("%s: last tile at %.1f s, %d estimates, mean error %.0f%%, largest %.0f%%" % ((name,) + score(pts, replay(pts, window))))
