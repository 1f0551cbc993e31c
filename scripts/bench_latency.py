"""Time from POST /create to Completed for ten small one-batch exports
(18-tile ones like the specification's example) against `exporter all`
on 127.0.0.1:18099, with EXPORTER_WORKER_POLL_INTERVAL set to argv[1].

    make build && python3 scripts/bench_latency.py 200ms
"""
import json, subprocess, sys, time, urllib.request, os, tempfile, statistics, re
poll = sys.argv[1]
d = tempfile.mkdtemp()
env = dict(os.environ, EXPORTER_WORKER_POLL_INTERVAL=poll, EXPORTER_DATA_DIR=d, EXPORTER_HTTP_ADDR="127.0.0.1:18099", EXPORTER_HTTP_RATE_LIMIT="0")
p = subprocess.Popen([os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bin", "exporter"), "all"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
tok = None
for line in p.stdout:
    m = re.search(r"token=(\S+)", line)
    if m: tok = m.group(1); break
def call(method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:18099" + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
lat = []
for i in range(10):
    x = 34.6 + i * 0.05
    body = {"dbId": "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8", "bbox": [x, 31.9, x + 0.01, 31.91], "targetResolution": 0.0000429153442382812, "callbackURLs": [], "crs": "EPSG:4326", "priority": 0}
    t0 = time.time()
    r = call("POST", "/create", body)
    jid = r.get("id") or r.get("jobId")
    while True:
        j = call("GET", "/jobs/" + jid)
        if j.get("status") == "Completed": break
        time.sleep(0.01)
    lat.append(time.time() - t0)
p.terminate(); p.wait()
subprocess.run(["rm", "-rf", d])
print(poll, "median %.3f s, min %.3f, max %.3f" % (statistics.median(lat), min(lat), max(lat)))
