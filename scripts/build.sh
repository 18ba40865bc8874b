#!/bin/sh
# Builds ocirun out of tree in ./build (warnings are errors).
set -eu
cd "$(dirname "$0")/.."
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build
cd build
[ -f Makefile ] || ../configure --enable-werror -q
make -j"$(nproc)" -s
