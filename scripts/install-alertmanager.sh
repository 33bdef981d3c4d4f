#!/usr/bin/env bash
# Installs Alertmanager and amtool into a private cache folder (and, as root, the templates of
# Debian's build where that build looks for them; see below).
#
# Debian bookworm (this machine's release) ships Alertmanager 0.25 as `prometheus-alertmanager`:
# we fetch that .deb with the machine's own apt sources (nothing is added to them) and unpack it
# with dpkg-deb. The binaries are statically linked Go programs. Debian renames the server to
# /usr/bin/prometheus-alertmanager; amtool keeps its name.
#
# Debian's build does not embed its notification templates: it reads them from the fixed folder
# /usr/share/prometheus/alertmanager (default.tmpl, email.tmpl) and exits at start without them.
# When that folder is missing, this script copies the package's own files there (as the package's
# install would; no service, no maintainer script), which needs root; without root it warns, and
# `aqua-metrics start` says what is missing. The official image's binary embeds the templates, so
# the image needs nothing of this.
#
# Usage: scripts/install-alertmanager.sh [CACHE_DIR]   (default: .cache/alertmanager under the repo)
# Prints the folder holding `prometheus-alertmanager` and `amtool` on its last line.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${1:-${ALERTMANAGER_CACHE_DIR:-$repo_root/.cache/alertmanager}}"
bin_dir="$cache_dir/root/usr/bin"
wanted="0\.2[5-9]\.|0\.[3-9][0-9]\."

works() {
  [[ -x "$bin_dir/prometheus-alertmanager" && -x "$bin_dir/amtool" ]] \
    && "$bin_dir/prometheus-alertmanager" --version 2>&1 | grep -Eq "version ($wanted)"
}

templates_dir=/usr/share/prometheus/alertmanager
install_templates() {
  [[ -r "$templates_dir/default.tmpl" ]] && return 0
  if [[ ! -w /usr/share ]]; then
    # Not fatal: the binaries are in place, and `aqua-metrics start` names the missing folder.
    echo "install-alertmanager: warning: Debian's Alertmanager needs $templates_dir (its" \
      "templates); run this script as root once, or install the prometheus-alertmanager package" >&2
    return 0
  fi
  mkdir -p "$templates_dir"
  cp -a "$cache_dir/root$templates_dir/." "$templates_dir/"
}

if works; then
  install_templates
  echo "$bin_dir"
  exit 0
fi

mkdir -p "$cache_dir/debs" "$cache_dir/root"
# The package lists may be missing on a fresh machine (or a container image that dropped them).
if ! apt-cache show prometheus-alertmanager >/dev/null 2>&1; then
  apt-get -qq update >&2
fi
(cd "$cache_dir/debs" && rm -f ./*.deb && apt-get -qq download prometheus-alertmanager >&2)
for deb in "$cache_dir/debs"/*.deb; do
  dpkg-deb -x "$deb" "$cache_dir/root"
done

if ! works; then
  echo "install-alertmanager: the package did not provide Alertmanager 0.25 or later" >&2
  exit 1
fi
install_templates
echo "$bin_dir"
