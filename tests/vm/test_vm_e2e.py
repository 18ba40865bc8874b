"""The engines on pure cgroup v2, in a qemu guest (tests/vm/vm.py): a focused
subset of tests/e2e (containerd through ctr and the runc v2 shim with
--runc-binary, podman through conmon with --runtime), each test under runc
(the control) and ocirun side by side, as on the host.

The guest boots once per module with the overlay switch_root'ed onto / (not
chroot'ed into: under a chroot, setns() into a container's mount namespace
lands in the initramfs, and runc's exec runs the initramfs's busybox). Every
inner test is an outer test of the same name here; an inner failure fails it
with the inner message. Skips when qemu or a kernel is missing."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import vm  # noqa: E402
from test_vm_v2 import ocirun_binary  # noqa: E402


TIMEOUT = vm.guest_timeout(600)
pytestmark = vm.module_marks(TIMEOUT)
RUNTIMES = ("runc", "ocirun")
# The everyday operations per engine, kept few: TCG runs them ~10x slower
# than the host (about 12 s per test).
INNER = {
    "tests/e2e/test_containerd.py": [
        "test_run_rm_exit_code",  # run --rm, exit status, cgroup path
        "test_exec_kill_ps_delete",  # run -d, exec (pipes, -t), ps, state, kill, delete
        "test_pause_resume",
        "test_metrics",  # memory and pids from the v2 cgroup
        "test_stop_sigterm_exit_status",
    ],
    "tests/e2e/test_podman.py": [
        "test_run_rm_exit_code",
        "test_detached_exec_top_stop_rm",  # run -d, logs, exec (--user), top, stop, rm
        "test_pause_unpause",
        "test_stats",
        "test_stop_kills_after_timeout",
        "test_update",  # memory.max / cpu.max on v2
        "test_options",  # read-only, caps, user, pids-limit, hostname, no-new-privileges
        "test_uidmap",  # user namespace
        "test_rootfs",
        "test_checkpoint_restore",  # criu (the host's kernel is too new for it)
    ],
    "tests/e2e/test_cri.py": [
        "test_pod_lifecycle_two_containers_share_namespaces",  # sandbox, bridge CNI, exec, stop, remove
        "test_container_exit_code_and_pid_namespace_pod",
        "test_exec_sync_and_update",
    ],
}
# Made by podman itself (its cgroupfs manager probes v2 with it), not by a
# runtime: not a leftover.
PODMAN_PROBE = "/sys/fs/cgroup/podman_probe"

SCRIPT = vm.INNER_PRELUDE + r"""
env_check() (
  set -e
  grep -E '^cgroup2 /sys/fs/cgroup cgroup2 ' /proc/mounts
  ! grep -E ' cgroup ' /proc/mounts
  for c in cpu io memory pids; do grep -qw $c /sys/fs/cgroup/cgroup.controllers; done
  for b in containerd ctr containerd-shim-runc-v2 podman conmon runc; do command -v $b; done
  test -x "__OCIRUN__"
  # criu (podman checkpoint): its socket-diag modules and a loopback.
  for m in unix_diag inet_diag tcp_diag udp_diag netlink_diag af_packet_diag veth tun nf_tables; do
    modprobe $m
  done
  ip link set lo up
  criu check
)
# criu runs iptables-restore and ip from PATH.
export PATH=/usr/sbin:/sbin:$PATH
step env env_check
cd "__REPO__"
step pytest env OCIRUN="__OCIRUN__" /usr/bin/python3 -m pytest -p no:cacheprovider -v -o timeout=120 -o timeout_method=thread -rfE \
  --junitxml=/results/pytest.xml __TESTS__
# No cgroup, shim, conmon or container process may be left in the guest.
step leftovers sh -c 'find /sys/fs/cgroup -mindepth 1 -type d | grep -v -x -e __PROBE__;
  ps -eo pid,args | grep -e containerd -e conmon -e "sleep 1000" | grep -v grep; true'
echo done > /results/done
"""


def inner_ids():
    return [(f, t, rt) for f, tests in INNER.items() for t in tests for rt in RUNTIMES]



@pytest.fixture(scope="module")
def guest():
    vm.require_host()
    tests = " ".join(f"'{f}::{t}[{rt}]'" for f, t, rt in inner_ids())
    script = (SCRIPT.replace("__REPO__", str(REPO)).replace("__OCIRUN__", ocirun_binary())
              .replace("__TESTS__", tests).replace("__PROBE__", PODMAN_PROBE))
    for run in vm.module_guest(script, "v2 e2e guest", mode="v2", timeout=TIMEOUT, switch_root=True):
        xml = run.file("pytest.xml")
        run.cases = _cases(xml) if xml else None
        yield run


def _cases(xml):
    """{(module file stem, test name): (outcome, text)} from the junit XML."""
    import xml.etree.ElementTree as ET

    out = {}
    for tc in ET.fromstring(xml).iter("testcase"):
        key = (tc.get("classname", "").rsplit(".", 1)[-1], tc.get("name"))
        outcome, text = "passed", ""
        for kind in ("failure", "error", "skipped"):
            el = tc.find(kind)
            if el is not None:
                outcome = kind
                text = f"{el.get('message', '')}\n{(el.text or '')[-5000:]}"
                break
        # A teardown error comes as a second <testcase> of the same name.
        if key not in out or outcome != "passed":
            out[key] = (outcome, text)
    return out


step = vm.must_step


def test_guest_finished(guest):
    vm.assert_finished(guest, TIMEOUT)


def test_pure_v2_with_engines(guest):
    rc, out = step(guest, "env")
    assert rc == 0, f"the guest is not pure cgroup v2 or lacks an engine:\n{out}"


@pytest.mark.parametrize("path,name,rt", inner_ids(),
                         ids=[f"{Path(f).stem}::{t}[{rt}]" for f, t, rt in inner_ids()])
def test_e2e_in_guest(guest, path, name, rt):
    rc, out = step(guest, "pytest")
    if guest.cases is None:
        pytest.fail(f"inner pytest wrote no report (rc {rc}):\n{out[-6000:]}\n{vm.context(guest)}")
    res = guest.cases.get((Path(path).stem, f"{name}[{rt}]"))
    assert res is not None, f"{path}::{name}[{rt}] did not run in the guest:\n{out[-3000:]}"
    outcome, text = res
    if outcome == "skipped":
        pytest.fail(f"{path}::{name}[{rt}] skipped in the guest: {text}")
    assert outcome == "passed", f"{path}::{name}[{rt}] {outcome} on cgroup v2:\n{text}"


def test_nothing_left_in_guest(guest):
    rc, out = step(guest, "leftovers")
    left = [line for line in out.splitlines() if line.strip()]
    assert not left, "left in the guest after the e2e tests (cgroups, processes):\n" + "\n".join(left)
