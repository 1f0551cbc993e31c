#!/usr/bin/env bash
# End-to-end export benchmark: starts `exporter all` (embedded Redis, local
# packages) in a temp dir on a loopback port, exports the whole demo layer at
# a zoom, and prints tiles, seconds, tiles/s and package size.
#   scripts/bench-export.sh [zoom]      (default 12)
set -euo pipefail
zoom=${1:-12}
root=$(cd "$(dirname "$0")/.." && pwd)
make -s -C "$root" build
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && exec "$root/bin/exporter" all -http-addr "127.0.0.1:$port" -log-level warn >"$work/out" 2>"$work/err") &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
token=$(cd "$work" && "$root/bin/exporter" token -sub bench 2>/dev/null)
auth="Authorization: Bearer $token"
res=$(python3 -c "print(0.703125 / 2**$zoom)")
start=$(date +%s.%N)
id=$(curl -sf -H "$auth" -XPOST "$base/create" -d "{\"dbId\":\"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8\",\"bbox\":[34.2,29.4,35.9,33.4],\"targetResolution\":$res,\"callbackURLs\":[]}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
while :; do
  line=$(curl -sf -H "$auth" "$base/jobs/$id" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["status"], j["tilesTotal"], j.get("result",{}).get("fileSize",0))')
  case "$line" in Completed*|Failed*) break ;; esac
  sleep 0.2
done
end=$(date +%s.%N)
read -r status tiles size <<<"$line"
python3 - "$status" "$tiles" "$size" "$start" "$end" "$zoom" <<'PY'
import sys
status, tiles, size, start, end, zoom = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
secs = end - start
print(f"zoom {zoom}: {status}, {tiles} tiles in {secs:.2f} s = {tiles/secs:.0f} tiles/s, package {size/1e6:.1f} MB")
PY
