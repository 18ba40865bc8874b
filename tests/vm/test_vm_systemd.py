"""The systemd cgroup driver against a real systemd: a qemu guest booting a
debootstrap'd Debian 12 (tests/vm/build-systemd-rootfs.sh, cached in
$OCIRUN_VM_CACHE) with systemd as PID 1 and the host's / at /host. It runs
tests/integration/test_systemd.py there (scope unit created with the
limits, exec/ps/kill/delete, unit gone afterwards, same knobs as
`runc --systemd-cgroup`) plus the driver's unit test; every inner failure
fails this module with its name and output.

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

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
TIMEOUT = int(os.environ.get("OCIRUN_VM_TIMEOUT", "900"))

INNER = vm.INNER_PRELUDE + r"""
env_check() (
  set -e
  test "$(cat /proc/1/comm)" = systemd
  systemctl is-system-running || true  # "starting": this unit is part of the boot
  busctl --system status org.freedesktop.systemd1 | head -3
  grep -E '^cgroup2 /sys/fs/cgroup cgroup2 ' /proc/mounts
)
step env env_check
step unit-test-systemd /host__BUILD__/tests/unit/test-systemd
cd /host__REPO__
step pytest env OCIRUN=/host__OCIRUN__ python3 -m pytest -p no:cacheprovider -q -o timeout=300 \
  --junitxml=/results/pytest.xml tests/integration/test_systemd.py
step leftovers sh -c 'systemctl list-units --all --plain --no-legend "ocirun-*.scope" "cmp-*.scope" "pfx-*.scope"; systemctl list-units --failed --plain --no-legend "*.scope"'
echo done > /results/done
"""


@pytest.fixture(scope="module")
def guest():
    if os.environ.get("OCIRUN_VM_NO_SYSTEMD"):
        pytest.skip("OCIRUN_VM_NO_SYSTEMD is set")
    try:
        vm.check_host()
    except vm.Skip as e:
        pytest.skip(str(e))
    if shutil.which("debootstrap") is None and not (vm.CACHE / "debian12-systemd" / ".complete").exists():
        pytest.skip("debootstrap is not installed and no cached systemd rootfs")
    ocirun = ocirun_binary()
    build = os.path.dirname(ocirun)
    build_units(build)
    script = INNER.replace("__BUILD__", build).replace("__REPO__", str(REPO)).replace("__OCIRUN__", ocirun)
    run = vm.boot(script, mode="systemd", timeout=TIMEOUT)
    print(f"systemd guest: qemu rc {run.rc} in {run.seconds:.1f}s")
    yield run
    if not os.environ.get("OCIRUN_VM_KEEP"):
        shutil.rmtree(run.results, ignore_errors=True)


def step(run, name):
    r = vm.step(run, name)
    if r is None:
        pytest.fail(f"step {name} did not run in the systemd guest\n{vm.context(run)}")
    return r


def test_guest_finished(guest):
    assert not guest.timed_out, f"the systemd guest did not finish in {TIMEOUT}s\n{vm.context(guest)}"
    assert guest.file("done") is not None, f"the systemd guest stopped before the end\n{vm.context(guest)}"


def test_systemd_is_pid1(guest):
    rc, out = step(guest, "env")
    assert rc == 0, f"systemd is not PID 1 on the bus in the guest:\n{out}"


def test_unit_in_guest(guest):
    rc, out = step(guest, "unit-test-systemd")
    assert rc == 0, f"test-systemd failed under systemd (rc {rc}):\n{out[-6000:]}"


def test_systemd_driver_in_guest(guest):
    rc, out = step(guest, "pytest")
    xml = guest.file("pytest.xml")
    assert xml is not None, f"inner pytest wrote no report (rc {rc}):\n{out[-6000:]}"
    ran, failures, _ = vm.junit(xml)
    assert not failures, f"{len(failures)} of {ran} inner tests failed under systemd:\n\n" + "\n\n".join(failures)
    assert rc == 0, f"inner pytest rc {rc}:\n{out[-6000:]}"
    # The real-systemd tests must have run, not skipped.
    assert "skipped" not in out.splitlines()[-1] or "systemd is not PID 1" not in out, out[-3000:]


def test_no_units_left(guest):
    rc, out = step(guest, "leftovers")
    left = [line for line in out.splitlines() if line.strip()]
    assert not left, "units left in the systemd guest:\n" + "\n".join(left)
