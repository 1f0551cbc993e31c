#!/usr/bin/env bash
# End-to-end benchmark of the exporter against mapproxy-seed, on 127.0.0.1
# only, in a temp dir removed on exit (scripts/bench_e2e.py has the details):
# its own redis-server and MapProxy (a cache-less WMS over a generated tile
# directory), `exporter trigger` and two `exporter worker` processes; exports
# of 22,601 tiles from the tile directory and from the WMS, mapproxy-seed of
# the same into GeoPackages (-c 2), a one- versus two-core scaling check and
# a large export for worker memory. Prints a table, then the same as Markdown.
#
#   scripts/bench-e2e.sh               about 7 minutes on 2 cores
#   BENCH_LARGE=1 scripts/bench-e2e.sh memory check at 1,000,000 tiles, about 8 minutes
#
# BENCH_KEEP=1 keeps the temp dir, BENCH_REPORT=FILE also writes the Markdown,
# BENCH_TIMEOUT bounds the run in seconds (1200, or 3600 with BENCH_LARGE).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

missing=()
for tool in redis-server mapproxy-seed mapproxy-util taskset; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
/usr/bin/python3 -c 'import PIL, osgeo_utils.samples.validate_gpkg' 2>/dev/null || missing+=("python3-pil/python3-gdal")
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-e2e: missing ${missing[*]}: run make tools" >&2
  exit 1
fi

make -s -C "$root" build
# The system Python: it has MapProxy, PIL and GDAL's bindings (pyenv's has not).
exec /usr/bin/python3 "$root/scripts/bench_e2e.py"
