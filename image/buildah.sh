#!/usr/bin/env bash
# buildah with the image scripts' storage settings (vfs, one root, chroot isolation), for tests and
# for a look by hand:  image/buildah.sh images   image/buildah.sh inspect localhost/aqua-metrics:ci
set -euo pipefail
# shellcheck source=image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v buildah >/dev/null 2>&1 || die "buildah is not installed (image/install-tools.sh installs it)"
exec buildah --root "$storage_root" --runroot "$run_root" --storage-driver vfs "$@"
