"""Rootless ocirun with a delegated cgroup v2 subtree, in the pure v2 qemu
guest (tests/vm/vm.py): tests/integration/test_rootless_cgroups.py runs
there as root, makes the delegated subtree for an unprivileged uid and runs
ocirun (and runc, for comparison) as that uid. One boot; every inner
failure fails the host-side test with its name and output.

Skips when qemu or a kernel is missing (scripts/install-deps.sh installs
both). OCIRUN names the binary under test."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import vm  # noqa: E402
from test_vm_v2 import ocirun_binary  # noqa: E402


# The v1 cases (one hierarchy delegated) need v1 hierarchies: the host runs them.
INNER_PYTEST = "tests/integration/test_rootless_cgroups.py -k 'not v1_partly'"
TIMEOUT = vm.guest_timeout(900)
pytestmark = vm.module_marks(TIMEOUT)

INNER = vm.INNER_PRELUDE + r"""
env_check() (
  set -e
  grep -E '^cgroup2 /sys/fs/cgroup cgroup2 ' /proc/mounts
  for c in cpu memory pids; do grep -qw $c /sys/fs/cgroup/cgroup.controllers; done
)
step env env_check
cd "__REPO__"
step pytest env OCIRUN="__OCIRUN__" /usr/bin/python3 -m pytest -p no:cacheprovider -v -rs -o timeout=300 \
  --junitxml=/results/pytest.xml __PYTEST__
# Nothing the tests made may be left in the guest's cgroup tree.
step leftovers sh -c 'find /sys/fs/cgroup -mindepth 1 -type d; true'
echo done > /results/done
"""


@pytest.fixture(scope="module")
def guest():
    vm.require_host()
    script = (INNER.replace("__REPO__", str(REPO)).replace("__OCIRUN__", ocirun_binary())
              .replace("__PYTEST__", INNER_PYTEST))
    # switch_root: the kernel refuses a user namespace to a chroot'ed caller.
    yield from vm.module_guest(script, "v2 guest (rootless)", mode="v2", timeout=TIMEOUT, switch_root=True)


step = vm.must_step


def test_guest_finished(guest):
    vm.assert_finished(guest, TIMEOUT)
    rc, out = step(guest, "env")
    assert rc == 0, f"the guest is not pure cgroup v2 with cpu/memory/pids:\n{out}"


def test_rootless_in_guest(guest):
    # On the guest nothing may skip: the delegated tests are why it boots.
    vm.assert_inner_pytest(guest, where="rootless on cgroup v2", no_skips=True)


def test_nothing_left_in_guest(guest):
    rc, out = step(guest, "leftovers")
    left = [line for line in out.splitlines() if line.strip()]
    assert not left, "cgroups left in the guest after the tests:\n" + "\n".join(left)
