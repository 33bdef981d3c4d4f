#!/usr/bin/env bash
# Prints the size of each part of the built image (default $AQUA_IMAGE_TAG) and of its base.
#   image/measure.sh [IMAGE [BASE_IMAGE]]
set -euo pipefail
# shellcheck source=image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

image="${1:-$image_tag}"
base="${2:-}"
if [[ -z "$base" ]]; then
  base="$(bah inspect --type image --format '{{ index .ImageAnnotations "org.opencontainers.image.base.name" }}' "$image" 2>/dev/null || true)"
  [[ "$base" == "<no value>" ]] && base=""
  if [[ -z "$base" ]]; then
    base="$(bah inspect --type image --format '{{ index .Docker.Config.Labels "org.opencontainers.image.base.name" }}' "$image")"
  fi
fi
containers=()
cleanup() {
  local ctr
  for ctr in "${containers[@]}"; do bah rm "$ctr" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
ctr="$(bah from --pull-never "$image")"
containers+=("$ctr")
rootfs="$(bah mount "$ctr")"
base_rootfs=()
if [[ -n "$base" ]] && image_exists "$base"; then
  base_ctr="$(bah from --pull-never "$base")"
  containers+=("$base_ctr")
  base_rootfs=("$(bah mount "$base_ctr")")
fi
echo "image $image ($(bah inspect --type image --format '{{.FromImageID}}' "$image" | cut -c1-12)), base ${base:-unknown}"
python3 "$image_dir/measure.py" "$rootfs" "${base_rootfs[@]}"
