#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) and the Vulkan loader, so that the `wgpu`
# backend can run on a machine without a GPU (CI's conformance tests; docs: README, Backends).
# Debian/Ubuntu only (apt-get); does nothing when lavapipe's ICD file is already present.
set -euo pipefail
icd=$(ls /usr/share/vulkan/icd.d/lvp_icd.*.json 2>/dev/null | head -1 || true)
if [ -n "$icd" ] && ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  echo "lavapipe present: $icd"
  exit 0
fi
command -v apt-get >/dev/null || { echo "error: apt-get not found; install Mesa's Vulkan drivers (lavapipe) and the Vulkan loader by hand" >&2; exit 1; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
# mesa-vulkan-drivers: lavapipe (lvp_icd); libvulkan1: the loader wgpu opens at run time.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1
icd=$(ls /usr/share/vulkan/icd.d/lvp_icd.*.json 2>/dev/null | head -1 || true)
[ -n "$icd" ] || { echo "error: mesa-vulkan-drivers installed but no lvp_icd.*.json in /usr/share/vulkan/icd.d" >&2; exit 1; }
echo "lavapipe installed: $icd"
