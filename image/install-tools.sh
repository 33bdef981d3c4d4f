#!/usr/bin/env bash
# Installs what the image build needs from Debian's archive: buildah (daemonless builds; vfs storage
# and chroot isolation need neither fuse-overlayfs nor a container runtime) and debootstrap (the
# Python base stand-in). Does nothing when both are present; fails loudly when it cannot install.
set -euo pipefail

missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "image: FAIL: ${missing[*]} missing and not root; install them: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "image: installing ${missing[*]} from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in "${missing[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "image: FAIL: $tool did not install" >&2; exit 1; }
done
