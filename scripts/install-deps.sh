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
  libcpp-httplib-dev                                  # `pocketlora serve`: the app's HTTP server (tools/serve/)
  default-jdk-headless                                # JNI headers + javac/java: the C API's JNI bridge and its test
  # The aarch64 cross build run under qemu (scripts/test.sh step 3): Debian's cross toolchain, the arm64 -dev
  # packages the library, CLI and tests link (Eigen, JSON and CLI11 are headers shared by every architecture), and
  # qemu-user to run the tests.
  crossbuild-essential-arm64 qemu-user
  libopenblas-dev:arm64 libopenblas0-pthread:arm64 libfmt-dev:arm64 libgtest-dev:arm64 libgomp1:arm64
  libcpp-httplib-dev:arm64
  # The app's browser test (tests/e2e, ctest app_e2e): Debian's chromium, driven by playwright-core from npm.
  chromium
)
# node/npm run that test; a machine that has them already (node 20 + npm from elsewhere) keeps its own.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
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
# The :arm64 packages need the architecture enabled before apt-get update reads its package lists.
dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
