#!/bin/sh
# Installs what ocirun needs to build and to run its whole test suite on
# Debian 12 (as root): the build, the integration tests (runc as reference),
# the engines for the end-to-end tests, qemu and a kernel for the cgroup v2
# VM, criu (checkpoint/restore, tested in that VM), and the benchmark's
# comparison runtimes. Skips apt when all is there.
set -eu
PKGS="build-essential autoconf automake pkg-config python3 python3-pytest go-md2man clang clang-format
libyajl-dev libseccomp-dev libcap-dev libsystemd-dev busybox-static runc crun iproute2 procps
python3-pytest-timeout docker.io containerd podman uidmap python3-grpcio python3-grpc-tools protobuf-compiler
qemu-system-x86 linux-image-amd64 debootstrap cpio time criu iptables"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Packages with daemons (docker, containerd) must not start them: tests
# start private instances on their own sockets.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
