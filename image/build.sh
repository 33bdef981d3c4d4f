#!/usr/bin/env bash
# Builds the real Dockerfile with buildah (no daemon: vfs storage, chroot isolation) against the
# local stand-ins of image/stand-ins.sh, and tags it $AQUA_IMAGE_TAG (localhost/aqua-metrics:ci).
# Installs buildah and debootstrap when missing (as root). Pulls nothing from a container registry:
# every FROM resolves to an image in local storage or the build fails.
#
#   image/build.sh [--no-cache]      prints the image id on its last line
#
# Intermediate layers are cached (--layers) in the same storage, as `docker build` caches them; a
# build whose inputs did not change reuses them. --no-cache rebuilds every step.
set -euo pipefail
# shellcheck source=image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cache_flags=(--layers)
if [[ "${1:-}" == "--no-cache" ]]; then
  cache_flags=(--layers --no-cache)
fi

"$image_dir/install-tools.sh"
mkdir -p "$cache_root"
exec 9>"$cache_root/build.lock"
flock 9  # one build at a time per storage; running image tests hold it shared

# Containers of image test runs that were interrupted (no test run holds the lock now).
bah containers --quiet --notruncate --filter name=aqua-ci- | while read -r stale; do
  bah rm "$stale" >/dev/null || true
done

# vfs keeps a full copy of the file tree per layer, so cached layers of older builds add up (about
# 3 GB per build whose Dockerfile steps changed). Past the cap, start the storage afresh; the
# stand-ins come back from their cached tarball and .debs in seconds.
cap_kb=$((${AQUA_IMAGE_STORAGE_CAP_GB:-15} * 1024 * 1024))
if [[ -d "$storage_root" ]] && (($(du -sk "$storage_root" | cut -f1) > cap_kb)); then
  log "storage over ${AQUA_IMAGE_STORAGE_CAP_GB:-15} GB: removing every container and image in $storage_root"
  bah rm --all >/dev/null || true
  bah rmi --all --force >/dev/null || true
fi

started=$(date +%s)
mapfile -t stand_in_args < <("$image_dir/stand-ins.sh")
((${#stand_in_args[@]} == 4)) || die "stand-ins.sh did not print four build arguments"
stand_ins_done=$(date +%s)

build_args=()
for arg in "${stand_in_args[@]}"; do
  build_args+=(--build-arg "$arg")
done
# This machine reaches PyPI through a TLS-intercepting egress proxy whose CA only the host trusts.
# RUN steps see the host's CA bundle through a read-only bind mount; nothing of it enters a layer.
host_ca=/etc/ssl/certs/ca-certificates.crt
mounts=()
if [[ -s "$host_ca" ]]; then
  mounts=(--volume "$host_ca:$host_ca:ro")
fi
iidfile="$(mktemp)"
# buildah 1.28 leaves a working container behind for each FROM-only stage (prometheus,
# alertmanager, grafana):
# a full vfs copy of that stand-in per build. Remove what this build created.
containers_before="$(bah containers --quiet --notruncate | sort)"
log "buildah build ${stand_in_args[*]}"
bah build "${cache_flags[@]}" --pull=never --isolation chroot --format docker \
  "${mounts[@]}" "${build_args[@]}" --iidfile "$iidfile" -t "$image_tag" -f "$repo_root/Dockerfile" "$repo_root" >&2 \
  || die "buildah build of the Dockerfile failed"
image_id="$(cat "$iidfile")"
rm -f "$iidfile"
comm -13 <(echo "$containers_before") <(bah containers --quiet --notruncate | sort) \
  | while read -r leftover; do
    name="$(bah inspect --format '{{.Container}}' "$leftover" 2>/dev/null || true)"
    if [[ "$name" == *-working-container* ]]; then bah rm "$leftover" >/dev/null; fi
  done
finished=$(date +%s)
log "stand-ins ready in $((stand_ins_done - started))s; Dockerfile built in $((finished - stand_ins_done))s; $image_tag = $image_id"
echo "$image_id"
