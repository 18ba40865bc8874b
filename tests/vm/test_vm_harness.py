"""The guest harness itself (vm.py), without booting a guest: a guest whose
kernel stalls a CPU is stopped soon after the kernel says so (not at the
guest's time limit), booted once more with a GuestStall warning, and the
step it was in is named with its output so far; an inner pytest run passes
only with a report, no failure, something run (and, where asked, no skip)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import vm  # noqa: E402

STALL_LINE = "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"


def fake_qemu(tmp_path, shell):
    """(process, console path): shell run with its output on a console file,
    as boot() runs qemu."""
    console = tmp_path / "console.log"
    with open(console, "wb") as out:
        p = subprocess.Popen(["sh", "-c", shell], stdout=out, stderr=subprocess.STDOUT)
    return p, console


@pytest.mark.parametrize("split", [False, True], ids=["whole", "line-written-in-two-parts"])
def test_stalled_guest_is_stopped_after_the_grace(tmp_path, split):
    first, rest = (STALL_LINE[:14], STALL_LINE[14:]) if split else (STALL_LINE, "")
    p, console = fake_qemu(tmp_path, f"echo booting; sleep 0.3; printf '[   46.8] {first}'; sleep 0.5; "
                                     f"printf '{rest}\\n[   46.9] NMI backtrace for cpu 0\\n'; exec sleep 60")
    start = time.monotonic()
    rc, timed_out, stalled = vm.watch(p, console, timeout=60, grace=1, poll=0.1)
    took = time.monotonic() - start
    assert stalled == STALL_LINE
    assert rc == -9 and not timed_out
    assert 1.5 < took < 10, f"stopped {took:.1f}s after the start (stall at 0.8s, grace 1s)"


@pytest.mark.parametrize("line", ["rcu: INFO: rcu_sched self-detected stall on CPU",
                                  "rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 0-...D }",
                                  "watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [sh:120]"])
def test_other_stall_reports(tmp_path, line):
    p, console = fake_qemu(tmp_path, f"echo '[    9.1] {line}'; exec sleep 60")
    rc, timed_out, stalled = vm.watch(p, console, timeout=60, grace=0.2, poll=0.1)
    assert stalled == line and rc == -9 and not timed_out


def test_clean_guest_and_timeout(tmp_path):
    p, console = fake_qemu(tmp_path, "echo '[ 2.5] rcu: Hierarchical RCU implementation.'; echo done")
    assert vm.watch(p, console, timeout=60, poll=0.1) == (0, False, None)
    p, console = fake_qemu(tmp_path, "exec sleep 60")
    start = time.monotonic()
    assert vm.watch(p, console, timeout=0.5, poll=0.1) == (-9, True, None)
    assert time.monotonic() - start < 5


def results_dir(tmp_path, name, finished):
    """A guest's results: steps env (done) and pytest (done when finished)."""
    d = tmp_path / name
    (d / "steps").mkdir(parents=True)
    (d / "steps/env.out").write_text("ok\n")
    (d / "steps/env.rc").write_text("0\n")
    (d / "steps/pytest.out").write_text("tests/integration/test_systemd.py::test_limits_match_runc ")
    (d / "inner.log").write_text("=== env: env_check\n=== env: rc 0 in 1s\n=== pytest: python3 -m pytest\n")
    if finished:
        (d / "steps/pytest.rc").write_text("0\n")
        (d / "done").write_text("done\n")
    return d


def test_stalled_guest_booted_again_with_a_warning(tmp_path, monkeypatch):
    console = f"boot\n[ 46.8] {STALL_LINE}\n[ 46.9] NMI backtrace for cpu 0\n[ 46.9] RIP: 0010:stuck_here+0x1/0x2\n"
    runs = [vm.Run(results_dir(tmp_path, "a", False), console, -9, 80.0, False, STALL_LINE),
            vm.Run(results_dir(tmp_path, "b", True), "boot\n", 0, 40.0, False, None)]
    boots = []
    monkeypatch.setattr(vm, "boot", lambda script, **kw: boots.append((script, kw)) or runs[len(boots) - 1])
    monkeypatch.delenv("OCIRUN_VM_KEEP", raising=False)
    with pytest.warns(vm.GuestStall) as w:
        gen = vm.module_guest("script", "test guest", mode="systemd", timeout=900)
        run = next(gen)
    assert run is runs[1] and boots == [("script", {"mode": "systemd", "timeout": 900})] * 2
    msg = str(w[0].message)
    assert "during step pytest" in msg and "stuck_here" in msg and STALL_LINE in msg
    assert not (tmp_path / "a").exists()
    vm.assert_finished(run, 900)
    next(gen, None)
    assert not (tmp_path / "b").exists()


def test_second_stall_fails_and_names_the_step(tmp_path, monkeypatch):
    console = f"boot\n[ 46.8] {STALL_LINE}\n[ 46.9] RIP: 0010:stuck_here+0x1/0x2\n"
    runs = [vm.Run(results_dir(tmp_path, n, False), console, -9, 80.0, False, STALL_LINE) for n in "ab"]
    monkeypatch.setattr(vm, "boot", lambda script, **kw: runs.pop(0))
    monkeypatch.setenv("OCIRUN_VM_KEEP", "1")
    with pytest.warns(vm.GuestStall):
        run = next(vm.module_guest("script", "test guest"))
    assert vm.running_step(run) == ("pytest", "tests/integration/test_systemd.py::test_limits_match_runc ")
    with pytest.raises(AssertionError) as e:
        vm.assert_finished(run, 900)
    text = str(e.value)
    assert "stalled a CPU (twice)" in text and "step pytest, unfinished" in text
    assert "test_limits_match_runc" in text and "stuck_here" in text


def inner_run(tmp_path, out, xml, rc=0):
    d = tmp_path / "r"
    (d / "steps").mkdir(parents=True)
    (d / "steps/pytest.out").write_text(out)
    (d / "steps/pytest.rc").write_text(f"{rc}\n")
    if xml is not None:
        (d / "pytest.xml").write_text(xml)
    return vm.Run(d, "", 0, 1.0, False)


CASE = '<testcase classname="integration.test_x" name="{}">{}</testcase>'


def test_inner_pytest_report_is_checked(tmp_path):
    ok = f'<testsuite>{CASE.format("test_a", "")}</testsuite>'
    assert vm.assert_inner_pytest(inner_run(tmp_path / "1", "1 passed", ok)) == ({"integration.test_x"}, "1 passed")
    failure = '<failure message="boom">trace</failure>'
    bad = f'<testsuite>{CASE.format("test_b", failure)}</testsuite>'
    with pytest.raises(AssertionError, match=r"(?s)1 of 1 inner tests failed in the guest.*test_b \(failure\): boom"):
        vm.assert_inner_pytest(inner_run(tmp_path / "2", "", bad, rc=1))
    with pytest.raises(AssertionError, match="wrote no report"):
        vm.assert_inner_pytest(inner_run(tmp_path / "3", "crashed", None, rc=2))
    with pytest.raises(AssertionError, match="rc 5, 0 tests"):
        vm.assert_inner_pytest(inner_run(tmp_path / "4", "no tests ran", "<testsuite></testsuite>", rc=5))
    skipped = "x.py::test_a SKIPPED (no criu)\n1 skipped"
    vm.assert_inner_pytest(inner_run(tmp_path / "5", skipped, ok))
    with pytest.raises(AssertionError, match="inner tests skipped"):
        vm.assert_inner_pytest(inner_run(tmp_path / "6", skipped, ok), no_skips=True)
