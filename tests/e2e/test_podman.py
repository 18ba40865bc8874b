"""podman 4.3 (through conmon) with `--runtime /abs/path`, a private store
and a private containers.conf; runc is the control."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from engines import Podman, podman_conf, unique, wait_for
from images import BB



CGROUP_LIMITS = ("if [ -f /sys/fs/cgroup/cgroup.controllers ]; then d=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup); cat $d/memory.max; cut -d' ' -f1 $d/cpu.max; else cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us; fi")

def prun(podman, rt, *args):
    return ["run", "--cgroup-parent", podman.cgroup_parent, *args]


def test_run_rm_exit_code(podman, pnames, rt):
    n = pnames()
    r = podman(*prun(podman, rt, "--rm", "--name", n, BB, "sh", "-c", "echo hi; exit 4"), rt=rt, op="run --rm",
               check=False)
    assert (r.rc, r.out) == (4, "hi\n"), f"[podman run --rm runtime={rt}] {r}"
    assert n not in podman("ps", "-a", "--format", "{{.Names}}").out


def test_detached_exec_top_stop_rm(podman, pnames, rt):
    n = pnames()
    podman(*prun(podman, rt, "-d", "--name", n, BB, "sh", "-c",
                 'echo started; trap "echo got-term; exit 9" TERM; while :; do sleep 0.1; done'), rt=rt, op="run -d")
    assert wait_for(lambda: "started" in podman("logs", n).out), f"[podman logs runtime={rt}]"
    r = podman("exec", n, "sh", "-c", "echo ex; exit 2", rt=rt, op="exec", check=False)
    assert (r.rc, r.out) == (2, "ex\n"), f"[podman exec runtime={rt}] {r}"
    r = podman("exec", "--user", "1000", "--workdir", "/tmp", n, "sh", "-c", "id -u; pwd", rt=rt, op="exec --user")
    assert r.out.split() == ["1000", "/tmp"], f"[podman exec runtime={rt}] {r}"
    top = podman("top", n, rt=rt, op="top").out
    assert "sleep" in top and "trap" in top, f"[podman top runtime={rt}] {top}"
    podman("stop", "-t", "10", n, rt=rt, op="stop")
    assert podman("inspect", "-f", "{{.State.ExitCode}}", n).out.strip() == "9", f"[podman stop runtime={rt}]"
    assert "got-term" in podman("logs", n).out
    podman("rm", n, rt=rt, op="rm")


def test_stop_kills_after_timeout(podman, pnames, rt):
    n = pnames()
    podman(*prun(podman, rt, "-d", "--name", n, BB, "sleep", "1000"), rt=rt, op="run -d")
    t = time.time()
    podman("stop", "-t", "1", n, rt=rt, op="stop -t 1")
    assert 0.9 < time.time() - t < 15
    assert podman("inspect", "-f", "{{.State.ExitCode}}", n).out.strip() == "137", f"[podman stop runtime={rt}]"


def _criu_problem():
    criu = shutil.which("criu", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if criu is None:
        return "criu is not installed"
    if subprocess.run([criu, "check"], capture_output=True).returncode != 0:
        return "`criu check` fails on this kernel (tests/vm/test_vm_e2e.py runs this in a guest)"
    return None


@pytest.mark.skipif(os.geteuid() != 0 or _criu_problem() is not None, reason=str(_criu_problem()))
def test_checkpoint_restore(podman, pnames, rt):
    """podman container checkpoint / restore: the process goes on with what
    it kept in memory, and its output reaches podman's log again (conmon's
    new pipes, handed over by criu --inherit-fd)."""
    n = pnames()
    podman(*prun(podman, rt, "-d", "--name", n, BB, "sh", "-c",
                 'tok=$(cat /proc/sys/kernel/random/uuid); i=0; while :; do i=$((i+1)); echo "$tok $i"; sleep 0.2; done'),
           rt=rt, op="run -d")

    def last():
        """(token, count) of the last line logged, or None."""
        lines = [x.split() for x in podman("logs", n).out.splitlines() if len(x.split()) == 2]
        return (lines[-1][0], int(lines[-1][1])) if lines else None

    assert wait_for(last), f"[podman logs runtime={rt}] nothing logged"
    tok, n1 = last()
    podman("container", "checkpoint", n, rt=rt, op="checkpoint", timeout=300)
    assert podman("inspect", "-f", "{{.State.Status}}", n).out.strip() == "exited"
    podman("container", "restore", n, rt=rt, op="restore", timeout=300)
    assert podman("inspect", "-f", "{{.State.Status}}", n).out.strip() == "running"
    assert wait_for(lambda: last()[1] > n1 + 2, timeout=30), \
        f"[podman restore runtime={rt}] the restored process logs nothing new: {podman('logs', n).out[-500:]}"
    assert last()[0] == tok, f"[podman restore runtime={rt}] a new token: restarted, not restored"
    podman("rm", "-f", n, rt=rt, op="rm -f")


def test_pause_unpause(podman, pnames, rt):
    n = pnames()
    podman(*prun(podman, rt, "-d", "--name", n, BB, "sleep", "1000"), rt=rt, op="run -d")
    podman("pause", n, rt=rt, op="pause")
    assert podman("inspect", "-f", "{{.State.Status}}", n).out.strip() == "paused"
    podman("unpause", n, rt=rt, op="unpause")
    assert podman("inspect", "-f", "{{.State.Status}}", n).out.strip() == "running"


def test_stats(podman, pnames, rt):
    n = pnames()
    podman(*prun(podman, rt, "-d", "--name", n, "--memory", "64m", BB, "sleep", "1000"), rt=rt, op="run -d")
    r = podman("stats", "--no-stream", "--format", "{{.PIDs}} {{.MemUsage}}", n, rt=rt, op="stats --no-stream")
    pids, usage = r.out.strip().split(" ", 1)
    assert pids == "1" and usage.endswith("/ 67.11MB"), f"[podman stats runtime={rt}] {r}"


def test_update(podman, pnames, rt):
    # podman 4.3 has `update` with cpu/memory/blkio options (no --pids-limit).
    n = pnames()
    podman(*prun(podman, rt, "-d", "--name", n, BB, "sleep", "1000"), rt=rt, op="run -d")
    podman("update", "--memory", "100m", "--cpus", "0.5", n, rt=rt, op="update")
    # cgroup v1 files, or v2's memory.max and cpu.max (the cgroup VM).
    r = podman("exec", n, "sh", "-c", CGROUP_LIMITS)
    assert r.out.split() == [str(100 << 20), "50000"], f"[podman update runtime={rt}] {r}"


def test_uidmap(podman, pnames, rt):
    r = podman(*prun(podman, rt, "--rm", "--name", pnames(), "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536",
                     BB, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/x && stat -c %u /tmp/x"),
               rt=rt, op="run --uidmap")
    lines = [ln.split() for ln in r.out.splitlines()]
    assert lines[0] == ["0", "100000", "65536"] and lines[1] == ["0", "100000", "65536"], f"[podman --uidmap runtime={rt}] {r}"
    assert lines[2:] == [["0"], ["0"]], r


def test_rootfs(podman, pnames, rt, rootfs_dir):
    r = podman(*prun(podman, rt, "--rm", "--name", pnames(), "--rootfs", rootfs_dir, "/bin/sh", "-c",
                     "cat /data/marker; echo $$"), rt=rt, op="run --rootfs")
    assert r.out.split() == ["from-image", "1"], f"[podman --rootfs runtime={rt}] {r}"


def test_options(podman, pnames, rt):
    r = podman(*prun(podman, rt, "--rm", "--name", pnames(), "--read-only", "--cap-drop", "ALL", "--cap-add", "CHOWN",
                     "--user", "1000", "--pids-limit", "40", "--hostname", "pm-host", "--security-opt",
                     "no-new-privileges", BB, "sh", "-c",
                     "touch /x 2>&1; grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; id -u; hostname; "
                     "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/pids.max; "
                     "grep Seccomp: /proc/self/status"), rt=rt, op="run (options)")
    for want in ("Read-only file system", "CapBnd:\t0000000000000001", "NoNewPrivs:\t1", "\n1000\n", "pm-host\n40\n",
                 "Seccomp:\t2"):
        assert want in r.out, f"[podman run options runtime={rt}] {want!r} missing: {r}"


# ---------------------------------------------------------------- rootless

ROOTLESS_USER = "nobody"


def _rootless_possible():
    try:
        pw = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        return None, f"no user {ROOTLESS_USER}"
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return None, "user namespaces disabled (user.max_user_namespaces=0)"
    except OSError:
        pass
    if Path("/proc/sys/kernel/unprivileged_userns_clone").exists() and \
            Path("/proc/sys/kernel/unprivileged_userns_clone").read_text().strip() == "0":
        return None, "kernel.unprivileged_userns_clone=0"
    r = subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                        "unshare", "-U", "-r", "true"], capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"an unprivileged user cannot create a user namespace here: {r.stderr.strip()}"
    return pw, None


@pytest.fixture(scope="module")
def rootless_podman(image_archive):
    """podman run by an unprivileged user (nobody): no subuid ranges here, so
    podman uses a single-uid mapping; XDG_RUNTIME_DIR and HOME are private
    dirs that user owns (outside pytest's root-only tmp dir)."""
    if not shutil.which("podman"):
        pytest.skip("podman not installed")
    pw, why = _rootless_possible()
    if pw is None:
        pytest.skip(f"rootless not possible on this host: {why}")
    d = Path(tempfile.mkdtemp(prefix="ocirun-e2e-rootless-"))
    os.chmod(d, 0o755)
    for sub in ("home", "run", "store"):
        (d / sub).mkdir()
    os.chmod(d / "run", 0o700)
    shutil.copy(image_archive, d / "images.tar")
    conf = podman_conf(d / "containers.conf")
    for p in [d, *d.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(d / "home"),
           "XDG_RUNTIME_DIR": str(d / "run"), "USER": ROOTLESS_USER, "LANG": "C.UTF-8"}
    p = Podman(d / "store", conf, env=env, rootless=True)
    p.prefix = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
    try:
        p("load", "-q", "-i", d / "images.tar", timeout=120)
        yield p
    finally:
        ids = p("ps", "-aq", check=False).out.split()
        if ids:
            p("rm", "-f", "-t", "0", *ids, check=False)
        # podman's rootless pause process keeps the user namespace for later
        # calls; it is ours to end: the one whose XDG_RUNTIME_DIR is our dir.
        mark = f"XDG_RUNTIME_DIR={d / 'run'}".encode()
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and os.stat(f"/proc/{pid}").st_uid == pw.pw_uid and \
                        mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    os.kill(int(pid), 9)
            except OSError:
                pass
        # vfs layers written inside the user namespace: remove as root.
        shutil.rmtree(d, ignore_errors=True)


def test_rootless(rootless_podman, rt):
    p = rootless_podman
    r = p("run", "--rm", BB, "sh", "-c", "id -u; cat /proc/self/uid_map; echo rootless-ok; exit 3",
          rt=rt, op="run (rootless)", check=False)
    assert r.rc == 3 and "rootless-ok" in r.out, f"[podman rootless run runtime={rt}] {r}"
    fields = r.out.split()
    assert fields[:4] == ["0", "0", str(pwd.getpwnam(ROOTLESS_USER).pw_uid), "1"], r
    n = unique("rl")
    p("run", "-d", "--name", n, BB, "sleep", "1000", rt=rt, op="run -d (rootless)")
    try:
        r = p("exec", n, "sh", "-c", "exit 5", rt=rt, op="exec (rootless)", check=False)
        assert r.rc == 5, f"[podman rootless exec runtime={rt}] {r}"
        p("stop", "-t", "1", n, rt=rt, op="stop (rootless)")
    finally:
        p("rm", "-f", "-t", "0", n, check=False)


def test_default_runtime_from_containers_conf(podman, pnames, rt, tmp_path):
    """`[engine] runtime = NAME` with `[engine.runtimes] NAME = [path]` in
    containers.conf makes podman use that runtime without --runtime."""
    from engines import runtime_binary

    conf = Path(podman.env["CONTAINERS_CONF"]).read_text()
    name = f"e2e{rt}"
    (tmp_path / "containers.conf").write_text(
        conf.replace("[engine]\n", f'[engine]\nruntime = "{name}"\n')
        + f'[engine.runtimes]\n{name} = ["{runtime_binary(rt)}"]\n')
    p = Podman(podman.dir, tmp_path / "containers.conf")
    assert p("info", "--format", "{{.Host.OCIRuntime.Path}}").out.strip() == runtime_binary(rt)
    n = pnames()
    p(*prun(p, None, "-d", "--name", n, BB, "sleep", "1000"), op="run -d (runtime from containers.conf)", rt=rt)
    assert p("inspect", "-f", "{{.OCIRuntime}}", n).out.strip() in (name, runtime_binary(rt))
    r = p("exec", n, "sh", "-c", "exit 6", op="exec (runtime from containers.conf)", rt=rt, check=False)
    assert r.rc == 6, f"[podman containers.conf runtime={rt}] {r}"
    p("rm", "-f", "-t", "0", n, op="rm", rt=rt)
