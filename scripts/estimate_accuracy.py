"""How close POST /estimate comes to the size of the package that follows.
Against a fresh `exporter all` on 127.0.0.1:18099 (demo layer, local
storage, learned sizes refreshed every second), it estimates and then
exports six areas on four continents at zooms 11 to 13, one after another,
and prints each estimate against the package's size: the first is made
from the configured averages, the later ones from what the earlier
packages taught the service.

    make build && python3 scripts/estimate_accuracy.py
"""
import atexit, json, os, shutil, subprocess, tempfile, time, urllib.error, urllib.request

EXPORTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bin", "exporter")
ADDR = "127.0.0.1:18099"
BASE = "http://" + ADDR
DEMO = "ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8"
AREAS = [  # west, south, east, north; zoom
    ([12.2, 41.6, 12.8, 42.1], 12),      # Rome and the Tyrrhenian coast
    ([-9.5, 38.5, -8.9, 38.9], 12),      # Lisbon and the Tagus
    ([139.5, 35.4, 140.1, 35.8], 11),    # Tokyo Bay
    ([-74.3, 40.5, -73.7, 40.9], 12),    # New York harbour
    ([28.8, 40.9, 29.3, 41.2], 13),      # the Bosphorus
    ([-43.5, -23.1, -43.0, -22.8], 12),  # Rio de Janeiro
]


def main():
    d = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, d, True)
    env = dict(os.environ, EXPORTER_DATA_DIR=d, EXPORTER_HTTP_ADDR=ADDR, EXPORTER_HTTP_RATE_LIMIT="0",
               EXPORTER_JOBS_ESTIMATE_REFRESH="1s")
    srv = subprocess.Popen([EXPORTER, "all"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(srv.kill)
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(BASE + "/readyz", timeout=1)
            break
        except OSError:
            if time.time() > deadline:
                raise SystemExit("exporter all did not become ready")
            time.sleep(0.1)
    token = subprocess.check_output([EXPORTER, "token", "-sub", "estimate-accuracy", "-role", "client"],
                                    env=env, stderr=subprocess.DEVNULL, text=True).strip()

    def call(method, path, body=None):
        req = urllib.request.Request(BASE + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise SystemExit("%s %s: %d %s" % (method, path, e.code, e.read().decode()))

    print("%-32s %4s %12s %12s %8s" % ("bbox", "zoom", "estimate", "package", "error"))
    for bbox, zoom in AREAS:
        body = {"dbId": DEMO, "bbox": bbox, "targetResolution": 0.703125 / 2 ** zoom, "crs": "EPSG:4326",
                "callbackURLs": []}
        estimate = call("POST", "/estimate", body)["estimatedBytes"]
        job_id = call("POST", "/create", body)["id"]
        while (j := call("GET", "/jobs/" + job_id))["status"] == "In-Progress":
            time.sleep(0.3)
        if j["status"] != "Completed":
            raise SystemExit("job %s ended %s" % (job_id, j["status"]))
        size = j["result"]["fileSize"]
        print("%-32s %4d %12d %12d %+7.0f%%" % (bbox, zoom, estimate, size, 100 * (estimate - size) / size), flush=True)
        time.sleep(1.5)  # past EXPORTER_JOBS_ESTIMATE_REFRESH


if __name__ == "__main__":
    main()
