#!/bin/sh
# Builds (once) the Debian 12 root filesystem the systemd VM boots: systemd
# as PID 1, dbus for the system bus (and the user bus of a lingering user:
# dbus-user-session, libpam-systemd), the libraries ocirun links against, and
# runc/crun for comparison, criu (with iptables and ip, which it runs). Needs the Debian mirror; takes a few minutes.
# Usage: build-systemd-rootfs.sh [CACHE_DIR]   (prints the rootfs path)
set -eu
cache=${1:-${OCIRUN_VM_CACHE:-/var/cache/ocirun-vm}}
mirror=${OCIRUN_VM_MIRROR:-http://deb.debian.org/debian}
root=$cache/debian12-systemd
pkgs=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,libyajl2,libseccomp2,libcap2,busybox-static,runc,crun,procps,kmod,python3,python3-pytest,python3-pytest-timeout,criu,iptables,iproute2

# .complete holds the package list: a changed list rebuilds the rootfs.
if [ -e "$root/.complete" ] && [ "$(cat "$root/.complete")" = "$pkgs" ]; then
  echo "$root"
  exit 0
fi
mkdir -p "$cache"
tmp=$root.tmp.$$
trap 'rm -rf "$tmp"' EXIT
debootstrap --variant=minbase --include="$pkgs" bookworm "$tmp" "$mirror" >&2
# No getty, no network wait, no timers: the VM runs one test unit and stops.
echo ocirun-vm > "$tmp/etc/hostname"
: > "$tmp/etc/machine-id"
rm -f "$tmp"/etc/systemd/system/timers.target.wants/* "$tmp"/etc/systemd/system/getty.target.wants/*
rm -rf "$root"
mv "$tmp" "$root"
trap - EXIT
echo "$pkgs" > "$root/.complete"
echo "$root"
