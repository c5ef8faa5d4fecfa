#!/usr/bin/env bash
# Installs exactly the Debian 12 packages PocketLoRA builds, tests and runs with. Idempotent: apt skips what is
# already installed. Needs root (or sudo).
set -euo pipefail
PACKAGES=(
  cmake ninja-build g++ pkg-config
  libvulkan-dev glslc glslang-tools spirv-tools       # Vulkan loader/headers, shader compiler, validator/optimiser
  mesa-vulkan-drivers vulkan-validationlayers vulkan-tools  # lavapipe (CPU Vulkan) + Khronos validation layer
  libeigen3-dev nlohmann-json3-dev libfmt-dev libcli11-dev
  libopenblas-dev libopenblas0-pthread                # the CPU backend's GEMMs (host/ref/blas.h)
  libgtest-dev libbenchmark-dev
  default-jdk-headless                                # JNI headers + javac/java: the C API's JNI bridge and its test
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
