"""ocirun on pure cgroup v2, in a qemu guest (tests/vm/vm.py): the cgroup
unit test, the cgroup-touching integration tests, and one bundle run under
ocirun, runc and crun side by side. The guest boots once per module; every
inner failure fails the host-side test of its step, with its name and output.

Skips when qemu or a kernel is missing (scripts/install-deps.sh installs
both). OCIRUN names the binary under test; its build directory must hold the
unit tests (make check builds them; they are built here when missing)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import vm  # noqa: E402


# Kept focused: TCG runs these several times slower than the host.
INNER_PYTEST = ["tests/integration/test_cgroups.py", "tests/integration/test_lifecycle.py"]
UNIT_TESTS = ["tests/unit/test-cgroup", "tests/unit/test-systemd"]
TIMEOUT = vm.guest_timeout(900)
pytestmark = vm.module_marks(TIMEOUT)

INNER = vm.INNER_PRELUDE + r"""
env_check() (
  set -e
  grep -E '^cgroup2 /sys/fs/cgroup cgroup2 ' /proc/mounts
  ! grep -E ' cgroup ' /proc/mounts
  echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
  for c in cpu io memory pids cpuset; do grep -qw $c /sys/fs/cgroup/cgroup.controllers; done
  uname -r
)
step env env_check
for t in __UNIT__; do
  step unit-$(basename $t) "__BUILD__/$t"
done
cd "__REPO__"
step pytest env OCIRUN="__OCIRUN__" /usr/bin/python3 -m pytest -p no:cacheprovider -v -o timeout=300 \
  --junitxml=/results/pytest.xml __PYTEST__
step compare /usr/bin/python3 "__HERE__/compare.py" "__OCIRUN__" /tmp/compare
cp /results/steps/compare.out /results/compare.json
# Nothing the tests made may be left in the guest's cgroup tree.
step leftovers sh -c 'find /sys/fs/cgroup -mindepth 1 -type d | grep -v -e "^/sys/fs/cgroup/init" ; true'
echo done > /results/done
"""


def ocirun_binary():
    b = os.environ.get("OCIRUN")
    if b:
        return os.path.abspath(b)
    for cand in (REPO / "build" / "ocirun", REPO / "ocirun"):
        if cand.exists():
            return str(cand)
    pytest.fail("ocirun binary not found: build it or set OCIRUN")


def build_units(build):
    """Brings the unit tests up to date (make check builds them too)."""
    if not (Path(build) / "Makefile").exists():
        pytest.fail(f"{build} (the directory of OCIRUN) is not a build directory with the unit tests")
    cp = subprocess.run(["make", "-C", build, "-s"] + UNIT_TESTS, capture_output=True, text=True)
    if cp.returncode != 0:
        pytest.fail(f"building {UNIT_TESTS} in {build} failed:\n{cp.stdout[-2000:]}{cp.stderr[-2000:]}")


@pytest.fixture(scope="module")
def guest():
    vm.require_host()
    ocirun = ocirun_binary()
    build = os.path.dirname(ocirun)
    build_units(build)
    script = (INNER.replace("__UNIT__", " ".join(UNIT_TESTS)).replace("__BUILD__", build)
              .replace("__REPO__", str(REPO)).replace("__OCIRUN__", ocirun).replace("__HERE__", str(HERE))
              .replace("__PYTEST__", " ".join(INNER_PYTEST)))
    yield from vm.module_guest(script, "v2 guest", mode="v2", timeout=TIMEOUT)


step = vm.must_step


def test_guest_finished(guest):
    vm.assert_finished(guest, TIMEOUT)


def test_pure_v2(guest):
    rc, out = step(guest, "env")
    assert rc == 0, f"the guest is not pure cgroup v2 with cpu/io/memory/pids/cpuset:\n{out}"


@pytest.mark.parametrize("unit", UNIT_TESTS, ids=[os.path.basename(u) for u in UNIT_TESTS])
def test_unit_in_guest(guest, unit):
    rc, out = step(guest, "unit-" + os.path.basename(unit))
    assert rc == 0, f"{unit} failed in the v2 guest (rc {rc}):\n{out[-6000:]}"
    assert "skipping" not in out or "unreachable" in out, f"{unit} skipped its cgroupfs part:\n{out[-3000:]}"


def test_integration_in_guest(guest):
    names, out = vm.assert_inner_pytest(guest, where="on cgroup v2", ok_rc=(0, 5))
    for p in INNER_PYTEST:
        if (REPO / p).exists():
            mod = Path(p).stem
            assert any(mod in n for n in names), f"{p} did not run in the guest:\n{out[-3000:]}"


def test_side_by_side_with_runc_and_crun(guest):
    rc, out = step(guest, "compare")
    assert rc == 0, f"compare.py failed:\n{out}"
    res = json.loads(out)
    for rt in ("ocirun", "runc", "crun"):
        assert "error" not in res[rt], f"{rt} could not run the bundle on cgroup v2: {res[rt]['error']}\n{out}"
    # The knobs every runtime converts the same way.
    for k in ("memory.max", "memory.low", "cpu.max", "pids.max", "cpuset.cpus"):
        vals = {rt: res[rt].get(k) for rt in res}
        assert len(set(vals.values())) == 1 and None not in vals.values(), f"{k} differs: {vals}\n{out}"
    # runc is the reference for the rest (crun rounds some differently).
    for k in ("memory.swap.max", "cpu.weight", "io.weight"):
        assert res["ocirun"].get(k) == res["runc"].get(k), f"{k}: ocirun {res['ocirun'].get(k)} runc {res['runc'].get(k)}\n{out}"
    assert res["ocirun"]["memory.max"] == "67108864" and res["ocirun"]["cpu.max"] == "50000 100000", out
    # A cgroup namespace: the container sees itself at its cgroup root.
    assert res["ocirun"].get("/proc/self/cgroup") == "0::/", out


def test_nothing_left_in_guest(guest):
    rc, out = step(guest, "leftovers")
    left = [line for line in out.splitlines() if line.strip()]
    assert not left, "cgroups left in the guest after the tests:\n" + "\n".join(left)
