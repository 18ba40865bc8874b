"""The systemd cgroup driver against a real systemd: a qemu guest booting a
debootstrap'd Debian 12 (tests/vm/build-systemd-rootfs.sh, cached in
$OCIRUN_VM_CACHE) with systemd as PID 1 and the host's / at /host, on
cgroup v2 (test_vm_systemd_v1.py boots the same guest hybrid). It runs
tests/integration/test_systemd.py there (scope unit created with the
limits and device rules, exec/ps/kill/delete, unit gone afterwards, same
knobs and unit properties as `runc --systemd-cgroup`; rootless containers
in the user manager of a lingering user made for it) plus the driver's unit
test; every inner failure fails this module with its name and output.

The first run builds the rootfs from the Debian mirror (about a minute);
set OCIRUN_VM_NO_SYSTEMD=1 to skip this module where the mirror is
unreachable."""

import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import vm  # noqa: E402
from test_vm_v2 import build_units, ocirun_binary  # noqa: E402

TIMEOUT = vm.guest_timeout(900)
pytestmark = vm.module_marks(TIMEOUT)

# The cgroup setup the guest must have booted with, per mode.
CGROUP_CHECK = {
    "v2": "grep -E '^cgroup2 /sys/fs/cgroup cgroup2 ' /proc/mounts",
    "hybrid": "grep -E '^cgroup2 /sys/fs/cgroup/unified cgroup2 ' /proc/mounts && "
              "grep -E '^cgroup /sys/fs/cgroup/memory cgroup ' /proc/mounts",
    "legacy": "grep -E '^cgroup2 ' /proc/mounts && exit 1; grep -E '^cgroup /sys/fs/cgroup/systemd cgroup ' /proc/mounts && "
              "grep -E '^cgroup /sys/fs/cgroup/memory cgroup ' /proc/mounts",
}
# Kernel command line per mode (systemd 252).
APPEND = {"v2": "", "hybrid": "systemd.unified_cgroup_hierarchy=0",
          "legacy": "systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1"}
SD_USER, SD_UID = "ocirun-sd", 1500

INNER = vm.INNER_PRELUDE + r"""
env_check() (
  set -e
  test "$(cat /proc/1/comm)" = systemd
  systemctl is-system-running || true  # "starting": this unit is part of the boot
  busctl --system status org.freedesktop.systemd1 | head -3
  __CGROUP_CHECK__
)
step env env_check
# A user with a systemd user manager and its user bus (lingering, as for
# rootless podman), for the rootless tests.
user_session() (
  set -e
  useradd -M -d / -u __UID__ -s /bin/sh __USER__
  loginctl enable-linger __USER__
  for i in $(seq 120); do
    test -S /run/user/__UID__/bus && systemctl is-active -q user@__UID__.service && break
    sleep 0.5
  done
  systemctl is-active user@__UID__.service
  ls -l /run/user/__UID__/bus
)
step user-session user_session
step unit-test-systemd /host__BUILD__/tests/unit/test-systemd
cd /host__REPO__
step pytest env OCIRUN=/host__OCIRUN__ OCIRUN_SD_USER=__USER__ python3 -m pytest -p no:cacheprovider -v \
  -o timeout=300 --junitxml=/results/pytest.xml tests/integration/test_systemd.py
__CRIU__
step leftovers sh -c 'systemctl list-units --all --plain --no-legend "ocirun-*.scope" "cmp-*.scope" "pfx-*.scope" "dev-*.scope" "cr-*.scope"; systemctl list-units --failed --plain --no-legend "*.scope"; runuser -u __USER__ -- env XDG_RUNTIME_DIR=/run/user/__UID__ systemctl --user list-units --all --plain --no-legend "ocirun-*.scope"'
loginctl disable-linger __USER__
echo done > /results/done
"""

# checkpoint/restore with the systemd driver (v2 guest only): criu needs its
# socket-diag modules (from the host's tree: this rootfs has no kernel) and
# a loopback; iptables-restore and ip come from PATH.
CRIU_STEP = r"""
criu_env() (
  set -e
  for m in unix_diag inet_diag tcp_diag udp_diag netlink_diag af_packet_diag veth tun nf_tables; do
    modprobe -d /host $m
  done
  ip link set lo up
  criu check
)
step criu-env criu_env
step criu env PATH=/usr/sbin:/sbin:$PATH OCIRUN=/host__OCIRUN__ OCIRUN_CR_SYSTEMD=1 python3 -m pytest -p no:cacheprovider \
  -v -o timeout=300 --junitxml=/results/criu.xml tests/integration/test_checkpoint.py \
  -k 'goes_on or pipe or foreground or errors'
"""


def boot_guest(mode):
    """A module fixture's body: boots the systemd guest with cgroup setup
    mode ("v2", "hybrid", "legacy"), runs the inner script, yields the Run;
    skips where the host cannot."""
    if os.environ.get("OCIRUN_VM_NO_SYSTEMD"):
        pytest.skip("OCIRUN_VM_NO_SYSTEMD is set")
    vm.require_host()
    if shutil.which("debootstrap") is None and not (vm.CACHE / "debian12-systemd" / ".complete").exists():
        pytest.skip("debootstrap is not installed and no cached systemd rootfs")
    ocirun = ocirun_binary()
    build = os.path.dirname(ocirun)
    build_units(build)
    script = (INNER.replace("__CRIU__", CRIU_STEP if mode == "v2" else "")
              .replace("__CGROUP_CHECK__", CGROUP_CHECK[mode]).replace("__BUILD__", build)
              .replace("__REPO__", str(REPO)).replace("__OCIRUN__", ocirun).replace("__USER__", SD_USER)
              .replace("__UID__", str(SD_UID)))
    yield from vm.module_guest(script, f"systemd guest ({mode})", mode="systemd", timeout=TIMEOUT,
                               append_extra=APPEND[mode])


@pytest.fixture(scope="module")
def guest():
    yield from boot_guest("v2")


step = vm.must_step


def test_guest_finished(guest):
    vm.assert_finished(guest, TIMEOUT, "the systemd guest")


def test_systemd_is_pid1(guest):
    rc, out = step(guest, "env")
    assert rc == 0, f"systemd is not PID 1 on the bus in the guest, or not the expected cgroup setup:\n{out}"


def test_user_session(guest):
    rc, out = step(guest, "user-session")
    assert rc == 0, f"no user manager / user bus for {SD_USER} in the guest:\n{out}"


def test_unit_in_guest(guest):
    rc, out = step(guest, "unit-test-systemd")
    assert rc == 0, f"test-systemd failed under systemd (rc {rc}):\n{out[-6000:]}"


def test_systemd_driver_in_guest(guest):
    _, out = vm.assert_inner_pytest(guest, where="under systemd")
    # The real-systemd tests must have run, not skipped.
    assert "skipped" not in out.splitlines()[-1] or "systemd is not PID 1" not in out, out[-3000:]


def test_no_units_left(guest):
    rc, out = step(guest, "leftovers")
    left = [line for line in out.splitlines() if line.strip()]
    assert not left, "units left in the systemd guest:\n" + "\n".join(left)


def test_checkpoint_with_systemd_driver(guest):
    """tests/integration/test_checkpoint.py with --systemd-cgroup: the
    container's scope unit made again on restore, the restored tasks in it."""
    rc, out = step(guest, "criu-env")
    assert rc == 0, f"criu does not work in the systemd guest:\n{out}"
    vm.assert_inner_pytest(guest, "criu", "criu.xml", where="with the systemd driver", no_skips=True)
