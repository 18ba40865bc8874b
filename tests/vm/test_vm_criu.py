"""checkpoint and restore in the pure v2 qemu guest (tests/vm/vm.py), whose
Debian 6.1 kernel criu 3.17 works on (it fails on the CI host's 6.18):
tests/integration/test_checkpoint.py runs there, ocirun next to runc, and
nothing may skip. The guest loads the socket-diag, veth, tun and nf_tables
modules and brings up lo first: `criu check` needs them. One boot; every
inner failure fails the host-side test with its name and output.

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

TIMEOUT = vm.guest_timeout(900)
pytestmark = vm.module_marks(TIMEOUT)

INNER = vm.INNER_PRELUDE + r"""
# criu runs iptables-restore and ip from PATH (to lock the network).
export PATH=/usr/sbin:/sbin:$PATH
env_check() (
  set -e
  grep -E '^cgroup2 /sys/fs/cgroup cgroup2 ' /proc/mounts
  for m in unix_diag inet_diag tcp_diag udp_diag netlink_diag af_packet_diag veth tun nf_tables; do
    modprobe $m
  done
  ip link set lo up
  criu --version
  criu check
)
step env env_check
cd "__REPO__"
step pytest env OCIRUN="__OCIRUN__" /usr/bin/python3 -m pytest -p no:cacheprovider -v -rs -o timeout=300 \
  --junitxml=/results/pytest.xml tests/integration/test_checkpoint.py
step leftovers sh -c 'find /sys/fs/cgroup -mindepth 1 -type d; true'
echo done > /results/done
"""


@pytest.fixture(scope="module")
def guest():
    vm.require_host()
    script = INNER.replace("__REPO__", str(REPO)).replace("__OCIRUN__", ocirun_binary())
    # switch_root: criu compares the mounts it sees with those of the tasks
    # it dumps, which a chroot'ed caller does not share.
    yield from vm.module_guest(script, "v2 guest (criu)", mode="v2", timeout=TIMEOUT, switch_root=True)


step = vm.must_step


def test_guest_finished(guest):
    vm.assert_finished(guest, TIMEOUT)
    rc, out = step(guest, "env")
    assert rc == 0, f"criu does not work in the guest:\n{out}"


def test_checkpoint_restore_in_guest(guest):
    vm.assert_inner_pytest(guest, no_skips=True)


def test_nothing_left_in_guest(guest):
    rc, out = step(guest, "leftovers")
    left = [line for line in out.splitlines() if line.strip()]
    assert not left, "cgroups left in the guest after the tests:\n" + "\n".join(left)
