#!/usr/bin/env bash
# Installs Prometheus 3.x and promtool into a private cache folder, without touching the system.
#
# Debian bookworm ships Prometheus 2.42; sid ships 3.5.x. We fetch sid's .debs with a private apt
# sources list (the system's sources are never changed) and unpack them with dpkg-deb. The binaries
# are statically linked Go programs, so they run on bookworm.
#
# Usage: scripts/install-prometheus.sh [CACHE_DIR]   (default: .cache/prometheus under the repo)
# Prints the folder holding `prometheus` and `promtool` on its last line.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${1:-${PROMETHEUS_CACHE_DIR:-$repo_root/.cache/prometheus}}"
bin_dir="$cache_dir/root/usr/bin"
wanted_major="3"

if [[ -x "$bin_dir/prometheus" && -x "$bin_dir/promtool" ]] \
  && "$bin_dir/prometheus" --version 2>/dev/null | grep -q "version ${wanted_major}\."; then
  echo "$bin_dir"
  exit 0
fi

keyring=""
# sid's Release file is signed with the current archive keys; the newest keyring the machine has wins.
for candidate in /usr/share/keyrings/debian-archive-trixie-automatic.gpg \
                 /usr/share/keyrings/debian-archive-keyring.gpg; do
  if [[ -r "$candidate" ]]; then keyring="$candidate"; break; fi
done
if [[ -z "$keyring" ]]; then
  echo "install-prometheus: no Debian archive keyring found under /usr/share/keyrings" >&2
  exit 1
fi

apt_dir="$cache_dir/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$cache_dir/debs" "$cache_dir/root"
echo "deb [signed-by=$keyring] http://deb.debian.org/debian sid main" > "$apt_dir/sources.list"

apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "APT::Get::List-Cleanup=0"
  -o "Debug::NoLocking=1"
)

apt-get "${apt_opts[@]}" -qq update >&2
(cd "$cache_dir/debs" && rm -f ./*.deb && apt-get "${apt_opts[@]}" -qq download prometheus promtool >&2)
for deb in "$cache_dir/debs"/*.deb; do
  dpkg-deb -x "$deb" "$cache_dir/root"
done

if ! "$bin_dir/prometheus" --version 2>/dev/null | grep -q "version ${wanted_major}\."; then
  echo "install-prometheus: sid did not provide Prometheus ${wanted_major}.x" >&2
  exit 1
fi
echo "$bin_dir"
