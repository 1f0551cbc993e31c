#!/usr/bin/env bash
# Installs what building needs (tools.sh --build: the TurboJPEG headers,
# Debian package libturbojpeg0-dev), what `exporter all` needs to run
# (tools.sh --run: also redis-server, its embedded Redis), and, with no
# argument, also what the tests need, where it is missing:
#   redis-server        Debian package redis-server
#   minio               the MinIO server, built from its pinned Go module into $BIN
#                       (AGPL: it only ever runs as a separate process)
#   gdalinfo, python3 osgeo.gdal   Debian packages gdal-bin and python3-gdal
#   chromium            Debian package chromium (the asynqmon browser test)
#   wrk                 Debian package wrk (make bench-api)
set -euo pipefail
BIN=${BIN:-$(pwd)/bin}
GO=${GO:-go}

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
apt_updated=
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "tools: please install $* with your package manager" >&2
    exit 1
  fi
  if [ -z "$apt_updated" ]; then "${sudo_cmd[@]}" apt-get update -qq; apt_updated=1; fi
  echo "tools: installing $*"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "$@" >/dev/null
}

# The worker codes JPEG with libjpeg-turbo through cgo.
if ! pkg-config --exists libturbojpeg 2>/dev/null && [ ! -f /usr/include/turbojpeg.h ]; then
  apt_install libturbojpeg0-dev pkg-config
fi
if [ "${1:-}" = --build ]; then exit 0; fi
# exporter all runs redis-server as its embedded Redis, unless given one.
if [ "${1:-}" = --run ]; then
  if [ -z "${EXPORTER_REDIS_URL:-}" ] && ! command -v "${EXPORTER_REDIS_SERVER:-redis-server}" >/dev/null; then
    if ! command -v apt-get >/dev/null; then
      echo "tools: redis-server not found: install it (macOS: brew install redis), or set EXPORTER_REDIS_SERVER or EXPORTER_REDIS_URL" >&2
      exit 1
    fi
    apt_install redis-server
  fi
  exit 0
fi
: "${MINIO_VERSION:?set MINIO_VERSION}"

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v gdalinfo >/dev/null || missing+=(gdal-bin)
/usr/bin/python3 -c 'from osgeo import gdal' 2>/dev/null || missing+=(python3-gdal)
command -v mapproxy-util >/dev/null || missing+=(mapproxy)
/usr/bin/python3 -c 'import PIL' 2>/dev/null || missing+=(python3-pil) # make bench-e2e draws its tiles with it
command -v chromium >/dev/null || missing+=(chromium)
{ command -v prometheus && command -v promtool; } >/dev/null || missing+=(prometheus)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

if ! command -v minio >/dev/null && [ ! -x "$BIN/minio" ]; then
  echo "tools: building the MinIO server $MINIO_VERSION into $BIN (a few minutes the first time)"
  mkdir -p "$BIN"
  (cd "$(mktemp -d)" && GOBIN="$BIN" GOFLAGS=-mod=mod "$GO" install "github.com/minio/minio@$MINIO_VERSION")
fi
echo "tools: redis-server, minio, gdal, wrk ready"
