"""containerd 1.6 through ctr and the io.containerd.runc.v2 shim, with the
runtime chosen by `ctr run --runc-binary`; runc is the control."""

import json

import pytest

from engines import run, run_in_pty, runtime_binary, unique, wait_for
from images import BB


@pytest.fixture
def ctr(containerd):
    """Task/container ids for one test; killed and deleted at its end."""
    ids = []

    def new():
        i = unique("c")
        ids.append(i)
        return i

    yield new
    for i in ids:
        containerd("task", "kill", "-s", "SIGKILL", i, check=False)
        wait_for(lambda: containerd("task", "delete", i, check=False).rc != 0
                 or i not in containerd("task", "ls", "-q").out.split(), timeout=10)
        containerd("container", "delete", i, check=False)


def task_status(containerd, tid):
    for line in containerd("task", "ls").out.splitlines()[1:]:
        f = line.split()
        if f and f[0] == tid:
            return f[2]
    return None


def start_detached(containerd, ctr, rt, *cmd):
    tid = ctr()
    containerd("run", "-d", *containerd.run_args(rt), BB, tid, *cmd, rt=rt, op="run -d")
    assert wait_for(lambda: task_status(containerd, tid) == "RUNNING"), f"[ctr run -d runtime={rt}] not running"
    return tid


def test_run_rm_exit_code(containerd, ctr, rt):
    tid = ctr()
    r = containerd("run", "--rm", *containerd.run_args(rt), BB, tid, "sh", "-c",
                   "echo hi; grep -q /" + containerd.namespace + "/" + tid + " /proc/self/cgroup && echo cg; exit 5",
                   rt=rt, op="run --rm", check=False)
    assert r.rc == 5 and r.out == "hi\ncg\n", f"[ctr run --rm runtime={rt}] {r}"
    assert tid not in containerd("container", "ls", "-q").out.split()


def test_exec_kill_ps_delete(containerd, ctr, rt):
    tid = start_detached(containerd, ctr, rt, "sh", "-c",
                         'trap "echo usr1 > /tmp/got" USR1; while :; do sleep 0.1; done')
    r = containerd("task", "exec", "--exec-id", "e1", tid, "sh", "-c", "echo exec-out; echo exec-err >&2; exit 6",
                   rt=rt, op="task exec", check=False)
    assert (r.rc, r.out, r.err.strip().splitlines()[:1]) == (6, "exec-out\n", ["exec-err"]), \
        f"[ctr task exec runtime={rt}] {r}"

    rc, out = run_in_pty(containerd.cmd("task", "exec", "-t", "--exec-id", "e2", tid, "sh", "-c",
                                        "tty; test -t 0 && echo stdin-is-tty; exit 7"),
                         what=f"ctr task exec -t runtime={rt}")
    assert rc == 7 and "/dev/pts/" in out and "stdin-is-tty" in out, f"[ctr task exec -t runtime={rt}] rc={rc} {out!r}"

    pids = containerd("task", "ps", tid, rt=rt, op="task ps").out.split()[2::2]
    assert len(pids) >= 1 and all(p.isdigit() for p in pids), f"[ctr task ps runtime={rt}] {pids}"

    # The shim ran the selected binary with --root <runc-root>/<namespace>:
    # that runtime reads its own state back.
    root = containerd.dir / "runtime-root" / containerd.namespace
    st = json.loads(run([runtime_binary(rt), "--root", root, "state", tid], what=f"{rt} state").out)
    assert st["status"] == "running" and str(st["pid"]) == pids[0], f"[{rt} state] {st}"

    containerd("task", "kill", "-s", "SIGUSR1", tid, rt=rt, op="task kill -s SIGUSR1")
    ok = wait_for(lambda: containerd("task", "exec", "--exec-id", "e3", tid, "cat", "/tmp/got", check=False).out
                  == "usr1\n")
    assert ok, f"[ctr task kill -s SIGUSR1 runtime={rt}] signal not delivered"

    containerd("task", "kill", "-s", "SIGKILL", tid, rt=rt, op="task kill -s SIGKILL")
    assert wait_for(lambda: task_status(containerd, tid) == "STOPPED"), f"[ctr task kill runtime={rt}]"
    r = containerd("task", "delete", tid, rt=rt, op="task delete", check=False)
    assert r.rc == 0 or "exit code 137" in r.err, f"[ctr task delete runtime={rt}] {r}"
    assert task_status(containerd, tid) is None
    containerd("container", "delete", tid, rt=rt, op="container delete")


def test_pause_resume(containerd, ctr, rt):
    tid = start_detached(containerd, ctr, rt, "sleep", "1000")
    containerd("task", "pause", tid, rt=rt, op="task pause")
    assert task_status(containerd, tid) == "PAUSED"
    containerd("task", "resume", tid, rt=rt, op="task resume")
    assert task_status(containerd, tid) == "RUNNING"
    r = containerd("task", "exec", "--exec-id", "e1", tid, "true", rt=rt, op="task exec after resume", check=False)
    assert r.rc == 0, r


def test_metrics(containerd, ctr, rt):
    tid = start_detached(containerd, ctr, rt, "sh", "-c", "sleep 1000 & wait")
    r = containerd("task", "metrics", "--format", "json", tid, rt=rt, op="task metrics")
    m = json.loads(r.out)
    data = m if "pids" in m else (m.get("Data") or m.get("data") or {})
    usage = (data.get("memory") or {}).get("usage") or 0
    if isinstance(usage, dict):  # cgroup v1 metrics: memory.usage.usage; v2: memory.usage
        usage = usage.get("usage", 0)
    assert usage > 0, f"[ctr task metrics runtime={rt}] {r.out[:500]}"
    assert (data.get("pids") or {}).get("current") == 2, f"[ctr task metrics runtime={rt}] pids {data.get('pids')}"


def test_create_error_reaches_ctr(containerd, ctr, rt):
    """The shim shows the last line of the runtime's JSON --log: our error
    message must get to ctr's output."""
    tid = ctr()
    r = containerd("run", "--rm", *containerd.run_args(rt), BB, tid, "no-such-binary-e2e",
                   rt=rt, op="run (failing create)", check=False)
    assert r.rc != 0
    assert "no-such-binary-e2e" in r.err and "executable file not found" in r.err, \
        f"[ctr run runtime={rt}] runtime error not shown: {r}"
    if rt == "ocirun":
        assert "OCI runtime create failed: create container" in r.err, r


def test_stop_sigterm_exit_status(containerd, ctr, rt):
    tid = start_detached(containerd, ctr, rt, "sh", "-c", 'trap "exit 42" TERM; while :; do sleep 0.1; done')
    containerd("task", "kill", tid, rt=rt, op="task kill (SIGTERM)")
    assert wait_for(lambda: task_status(containerd, tid) == "STOPPED")
    r = containerd("task", "delete", tid, check=False)
    assert "exit code 42" in r.err or "exit code 42" in r.out, f"[ctr task delete runtime={rt}] {r}"
