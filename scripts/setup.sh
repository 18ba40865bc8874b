#!/bin/sh
# One command for a fresh Debian 12 machine: dependencies, build, and a demo
# container (busybox from Debian's busybox-static) run with ocirun.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
make -C build -s demo
