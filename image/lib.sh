# shellcheck shell=bash disable=SC2034  # sourced; the variables are used by the scripts
# Shared settings of the image scripts (sourced, not run). Every buildah call goes through `bah`, so
# all of them use the same storage (driver vfs, one root) and the same daemonless isolation.
#
#   AQUA_IMAGE_CACHE   where stand-ins, the debootstrap tarball and buildah's storage live
#                      (default /var/cache/aqua-metrics-image: outside the work tree, so a fresh
#                      clone on the same machine reuses them)
#   AQUA_IMAGE_TAG     the image the real Dockerfile is built as (default localhost/aqua-metrics:ci)

image_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$image_dir/.." && pwd)"
cache_root="${AQUA_IMAGE_CACHE:-/var/cache/aqua-metrics-image}"
storage_root="$cache_root/storage"
# Lock and state files; kept beside the storage so a reboot that clears /run loses nothing.
run_root="$cache_root/run"
image_tag="${AQUA_IMAGE_TAG:-localhost/aqua-metrics:ci}"
export BUILDAH_ISOLATION=chroot
# Docker format: the OCI format has no HEALTHCHECK, and buildah would drop the Dockerfile's.
export BUILDAH_FORMAT=docker

bah() {
  buildah --root "$storage_root" --runroot "$run_root" --storage-driver vfs "$@"
}

log() {
  printf 'image: %s\n' "$*" >&2
}

die() {
  printf 'image: FAIL: %s\n' "$*" >&2
  exit 1
}

# A short, stable key of the given strings and files (a file is hashed by content).
input_key() {
  local item
  for item in "$@"; do
    if [[ -f "$item" ]]; then
      printf 'file %s ' "$(basename "$item")"
      sha256sum "$item" | cut -d' ' -f1
    else
      printf 'text %s\n' "$item"
    fi
  done | sha256sum | cut -c1-12
}

image_exists() {
  bah inspect --type image "$1" >/dev/null 2>&1
}
