#!/bin/sh
# Installs what ocirun needs to build and to run its whole test suite on
# Debian 12 (as root). Skips apt entirely when everything is already there.
set -eu
PKGS="build-essential autoconf automake pkg-config python3 python3-pytest go-md2man clang
libyajl-dev libseccomp-dev libcap-dev libsystemd-dev busybox-static runc iproute2 procps"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
