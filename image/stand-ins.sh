#!/usr/bin/env bash
# Builds local stand-ins for the Dockerfile's four sources, in buildah's storage, and prints the
# four --build-arg lines that point the Dockerfile at them. Each stand-in is tagged with a key of
# its inputs, so a second run on the same machine reuses it (debootstrap runs once).
#
#   PYTHON_IMAGE      Debian bookworm minbase (debootstrap) + Debian's python3, python3-venv and
#                     ca-certificates; python3 is /usr/bin/python3 (the official image keeps it in
#                     /usr/local/bin: the Dockerfile makes a venv with `python3 -m venv`, so either
#                     works). Configured and trimmed like Debian's -slim images (no apt caches, no
#                     docs, man pages or locales).
#   PROMETHEUS_IMAGE  Debian sid's Prometheus 3.x binaries (scripts/install-prometheus.sh) at the
#                     official image's paths, /bin/prometheus and /bin/promtool.
#   ALERTMANAGER_IMAGE  Debian sid's Alertmanager and amtool at the official image's paths,
#                     /bin/alertmanager and /bin/amtool (sid's 0.33, the official image's version;
#                     the tests outside the image run bookworm's 0.25). Debian's builds read their
#                     notification templates from /usr/share/prometheus/alertmanager, where the
#                     Dockerfile puts them (image/alertmanager-templates); the official binary
#                     embeds the same files.
#   GRAFANA_IMAGE     an honest placeholder: /usr/share/grafana/bin/grafana answers --version with a
#                     line saying it is a placeholder, and refuses `server` (exit 78). Grafana is
#                     not available here; runs of this image must set GRAFANA_ENABLED=false.
set -euo pipefail
# shellcheck source=image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

suite=bookworm
mirror="${AQUA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=python3,python3-venv,ca-certificates
mkdir -p "$cache_root"

# --- Python base ----------------------------------------------------------------------------------
# The root file system, made in the folder $1. Its definition is part of the cache key, so editing it
# makes a new base; nothing else here does.
make_python_rootfs() {
  debootstrap --variant=minbase --include="$packages" "$suite" "$1" "$mirror" \
    >"$cache_root/debootstrap.log" 2>&1 || {
    tail -20 "$cache_root/debootstrap.log" >&2
    die "debootstrap failed (log: $cache_root/debootstrap.log)"
  }
  # The same sources as Debian's bookworm images (main, updates, security), so apt-get in the
  # Dockerfile sees what it sees on the official base.
  rm -f "$1/etc/apt/sources.list"
  cat >"$1/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Debian's container images configure apt to keep no caches and dpkg to skip documentation
  # (debuerreotype's minimizing config); the official python image inherits both.
  cat >"$1/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$1/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$1/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$1/etc/apt/apt.conf.d/docker-autoremove-suggests"
  # What Debian's -slim images leave out, now and for packages installed later.
  mkdir -p "$1/etc/dpkg/dpkg.cfg.d"
  cat >"$1/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  find "$1/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$1"/usr/share/{man,info,locale,lintian}/* "$1"/var/cache/apt/archives/*.deb \
    "$1"/var/cache/apt/*.bin "$1"/var/lib/apt/lists/* "$1"/var/log/*.log \
    "$1"/tmp/* "$1"/root/.cache
}

rootfs_key="$(input_key "$suite" "$mirror" "$packages" "$(declare -f make_python_rootfs)")"
python_tar="$cache_root/python-base-$rootfs_key.tar"
python_config=(
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  --env LANG=C.UTF-8 --cmd python3
  --label "org.opencontainers.image.description=stand-in for python:3.11-slim-bookworm (debootstrap + Debian python3)"
)
python_ref="localhost/aqua-stand-in/python:$suite-$(input_key "$rootfs_key" "${python_config[@]}")"
if ! image_exists "$python_ref"; then
  if [[ ! -s "$python_tar" ]]; then
    started=$(date +%s)
    rootfs="$(mktemp -d "$cache_root/debootstrap.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    log "debootstrap --variant=minbase $suite (+ $packages); once per machine"
    make_python_rootfs "$rootfs"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$python_tar.partial" .
    mv "$python_tar.partial" "$python_tar"
    find "$cache_root" -maxdepth 1 -name 'python-base-*.tar' ! -name "${python_tar##*/}" -delete
    rm -rf "$rootfs"
    trap - EXIT
    log "debootstrap done in $(($(date +%s) - started))s"
  fi
  ctr="$(bah from --pull-never scratch)"
  bah add "$ctr" "$python_tar" / >/dev/null
  bah config "${python_config[@]}" "$ctr"
  bah commit --quiet --rm "$ctr" "$python_ref" >/dev/null
  log "made $python_ref"
fi

# --- Prometheus -----------------------------------------------------------------------------------
prometheus_bin="$("$repo_root/scripts/install-prometheus.sh" | tail -1)"
[[ -x "$prometheus_bin/prometheus" && -x "$prometheus_bin/promtool" ]] \
  || die "scripts/install-prometheus.sh gave no prometheus/promtool in $prometheus_bin"
prometheus_key="$(input_key "$prometheus_bin/prometheus" "$prometheus_bin/promtool")"
prometheus_ref="localhost/aqua-stand-in/prometheus:$prometheus_key"
if ! image_exists "$prometheus_ref"; then
  ctr="$(bah from --pull-never scratch)"
  bah copy --chown 0:0 --chmod 0755 "$ctr" "$prometheus_bin/prometheus" "$prometheus_bin/promtool" /bin/ >/dev/null
  bah config --user 65534 --entrypoint '["/bin/prometheus"]' \
    --label "org.opencontainers.image.description=stand-in for prom/prometheus: Debian sid's $("$prometheus_bin/prometheus" --version 2>&1 | head -1)" \
    "$ctr"
  bah commit --quiet --rm "$ctr" "$prometheus_ref" >/dev/null
  log "made $prometheus_ref"
fi

# --- Alertmanager ---------------------------------------------------------------------------------
# Fetched with the private sid apt lists scripts/install-prometheus.sh keeps (the system's sources
# are never changed), unpacked with dpkg-deb.
prometheus_apt="${PROMETHEUS_CACHE_DIR:-$repo_root/.cache/prometheus}/apt"
alertmanager_dir="$cache_root/alertmanager-sid"
if [[ ! -x "$alertmanager_dir/root/usr/bin/prometheus-alertmanager" ]]; then
  rm -rf "$alertmanager_dir" && mkdir -p "$alertmanager_dir/debs" "$alertmanager_dir/root"
  (cd "$alertmanager_dir/debs" && apt-get -o "Dir::Etc::SourceList=$prometheus_apt/sources.list" \
    -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$prometheus_apt/lists" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Debug::NoLocking=1 \
    -qq download prometheus-alertmanager >&2) || die "apt-get download of sid's prometheus-alertmanager failed"
  dpkg-deb -x "$alertmanager_dir"/debs/*.deb "$alertmanager_dir/root"
fi
alertmanager_bin="$alertmanager_dir/root/usr/bin"
alertmanager_key="$(input_key "$alertmanager_bin/prometheus-alertmanager" "$alertmanager_bin/amtool")"
alertmanager_ref="localhost/aqua-stand-in/alertmanager:$alertmanager_key"
if ! image_exists "$alertmanager_ref"; then
  staging="$(mktemp -d)"
  install -m 0755 "$alertmanager_bin/prometheus-alertmanager" "$staging/alertmanager"
  install -m 0755 "$alertmanager_bin/amtool" "$staging/amtool"
  ctr="$(bah from --pull-never scratch)"
  bah copy --chown 0:0 --chmod 0755 "$ctr" "$staging/alertmanager" "$staging/amtool" /bin/ >/dev/null
  bah config --user 65534 --entrypoint '["/bin/alertmanager"]' \
    --label "org.opencontainers.image.description=stand-in for prom/alertmanager: Debian sid's $("$alertmanager_bin/prometheus-alertmanager" --version 2>&1 | head -1)" \
    "$ctr"
  bah commit --quiet --rm "$ctr" "$alertmanager_ref" >/dev/null
  rm -rf "$staging"
  log "made $alertmanager_ref"
fi

# --- Grafana (placeholder) ------------------------------------------------------------------------
grafana_key="$(input_key "$image_dir/grafana-placeholder.sh")"
grafana_ref="localhost/aqua-stand-in/grafana-placeholder:$grafana_key"
if ! image_exists "$grafana_ref"; then
  staging="$(mktemp -d)"
  mkdir -p "$staging/grafana/bin" "$staging/grafana/conf"
  install -m 0755 "$image_dir/grafana-placeholder.sh" "$staging/grafana/bin/grafana"
  printf '; placeholder: this is not Grafana (see docs/image.md)\n' >"$staging/grafana/conf/defaults.ini"
  ctr="$(bah from --pull-never scratch)"
  bah copy --chown 0:0 "$ctr" "$staging/grafana" /usr/share/grafana >/dev/null
  bah config --user 472 \
    --label "org.opencontainers.image.description=placeholder for grafana/grafana: NOT Grafana" "$ctr"
  bah commit --quiet --rm "$ctr" "$grafana_ref" >/dev/null
  rm -rf "$staging"
  log "made $grafana_ref"
fi

echo "PYTHON_IMAGE=$python_ref"
echo "PROMETHEUS_IMAGE=$prometheus_ref"
echo "ALERTMANAGER_IMAGE=$alertmanager_ref"
echo "GRAFANA_IMAGE=$grafana_ref"
