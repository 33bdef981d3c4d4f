#!/usr/bin/env bash
# Installs VictoriaMetrics (single-node server, vmalert) into a private cache folder, for the tests
# that prove remote_write against a real receiver. The system is not changed.
#
# Debian bookworm, this machine's own release, ships victoria-metrics 1.79: the system's apt
# sources suffice. We download the .deb with apt-get download and unpack it with dpkg-deb.
# The binaries link only libc and libzstd, both in every Debian.
#
# Usage: scripts/install-victoria-metrics.sh [CACHE_DIR]   (default: .cache/victoria-metrics)
# Prints the folder holding `victoria-metrics` and `vmalert` on its last line.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${1:-${VICTORIA_METRICS_CACHE_DIR:-$repo_root/.cache/victoria-metrics}}"
bin_dir="$cache_dir/root/usr/bin"

if [[ -x "$bin_dir/victoria-metrics" && -x "$bin_dir/vmalert" ]] \
  && "$bin_dir/victoria-metrics" -version >/dev/null 2>&1; then
  echo "$bin_dir"
  exit 0
fi

mkdir -p "$cache_dir/debs" "$cache_dir/root"
if ! apt-cache show victoria-metrics >/dev/null 2>&1; then
  apt-get -qq update >&2
fi
(cd "$cache_dir/debs" && rm -f ./*.deb && apt-get -qq download victoria-metrics >&2)
for deb in "$cache_dir/debs"/*.deb; do
  dpkg-deb -x "$deb" "$cache_dir/root"
done

if ! "$bin_dir/victoria-metrics" -version >/dev/null 2>&1; then
  echo "install-victoria-metrics: the unpacked victoria-metrics does not run" >&2
  exit 1
fi
echo "$bin_dir"
