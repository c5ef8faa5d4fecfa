# Cross-compiles for 64-bit Arm Linux with Debian's cross toolchain (g++-aarch64-linux-gnu) against the arm64
# multiarch -dev packages (libopenblas-dev:arm64, libfmt-dev:arm64, libgtest-dev:arm64; scripts/install-deps.sh).
# Tests run under qemu-user through CMAKE_CROSSCOMPILING_EMULATOR (ctest and gtest discovery use it). Shaders are
# compiled by the build machine's glslc: SPIR-V is the same on every architecture.
#   cmake -S . -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian multiarch: arm64 libraries live in /usr/lib/aarch64-linux-gnu, headers in /usr/include; the sysroot is /.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Programs (glslc, spirv-val, readelf) come from the build machine; libraries and packages only for arm64.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config (OpenBLAS) must read the arm64 .pc files, not the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# qemu runs the arm64 loader the multiarch libc6:arm64 installs (/lib/ld-linux-aarch64.so.1), so the loader and
# libc.so.6 come from one package. `-L /usr/aarch64-linux-gnu` took the cross toolchain's loader (glibc 2.36-8cross1)
# while the host's ld.so.cache still resolved libc.so.6 to the multiarch one (2.36-9+deb12u*): their _rtld_global
# layouts differ, and pthread_create looped forever walking the thread-stack cache list — every test that starts
# a thread hung under qemu (docs/ANDROID.md).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
