"""exec: a new process inside a running container, checked from inside
against the container's init, and compared with runc where both can run."""

import concurrent.futures
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import pty_read, wait_for

NS = ("pid", "net", "ipc", "uts", "mnt", "cgroup", "user")


@pytest.fixture
def running(ocirun, bundle, cid):
    """A running container whose init sleeps; yields (runtime, id, bundle)."""
    bundle.set_args("sleep", "100000").write()
    ocirun("run", "--detach", "--bundle", bundle.path, cid)
    yield ocirun, cid, bundle
    ocirun("delete", "--force", cid, check=False)


def ns_of(pid):
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in NS}


def test_exec_joins_every_namespace_and_cgroup(running):
    rt, cid, _ = running
    init = rt.state(cid)["pid"]
    r = rt("exec", cid, "sh", "-c", "for n in " + " ".join(NS) + "; do readlink /proc/self/ns/$n; done; "
           "cat /proc/self/cgroup; echo pid=$$")
    lines = r.out.splitlines()
    assert dict(zip(NS, lines[: len(NS)])) == ns_of(init)
    cg_inside = sorted(l for l in lines[len(NS):] if not l.startswith("pid="))
    cg_init = sorted(Path(f"/proc/{init}/cgroup").read_text().splitlines())
    # Inside a cgroup namespace the paths are relative to the container's
    # cgroup: compare the hierarchies and that the process is at its root.
    assert [l.split(":")[1] for l in cg_inside] == [l.split(":")[1] for l in cg_init]
    assert int(lines[-1].split("=")[1]) > 1  # not the init


def test_exec_matches_init_security(running):
    rt, cid, _ = running
    init = rt.state(cid)["pid"]
    want = [l for l in Path(f"/proc/{init}/status").read_text().splitlines()
            if l.startswith(("Cap", "NoNewPrivs", "Seccomp", "Uid", "Gid"))]
    r = rt("exec", cid, "grep", "-E", "^(Cap|NoNewPrivs|Seccomp|Uid|Gid)", "/proc/self/status")
    assert r.out.splitlines() == want


def test_exec_overrides(running):
    rt, cid, _ = running
    r = rt("exec", "--user", "1000:1000", "--additional-gids", "10", "--env", "FOO=bar", "--cwd", "/tmp",
           cid, "sh", "-c", 'id; echo "$FOO"; pwd')
    assert r.out.splitlines() == ["uid=1000(user) gid=1000(user) groups=10,1000(user)"] or \
        r.out.splitlines()[0].startswith("uid=1000(user) gid=1000(user) groups=")
    assert r.out.splitlines()[1:] == ["bar", "/tmp"]


def test_exec_cap_add(running):
    rt, cid, _ = running
    r = rt("exec", "--cap", "CAP_SYS_ADMIN", cid, "grep", "CapEff", "/proc/self/status")
    eff = int(r.out.split()[1], 16)
    assert eff & (1 << 21)  # CAP_SYS_ADMIN
    r = rt("exec", cid, "grep", "CapEff", "/proc/self/status")
    assert not int(r.out.split()[1], 16) & (1 << 21)


def test_exec_process_json(running, tmp_path):
    rt, cid, _ = running
    p = {"user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo $X; pwd; exit 3"], "env": ["X=from-json", "PATH=/bin"],
         "cwd": "/proc", "terminal": False}
    (tmp_path / "p.json").write_text(json.dumps(p))
    r = rt("exec", "--process", tmp_path / "p.json", cid, check=False)
    assert r.rc == 3
    assert r.out.splitlines() == ["from-json", "/proc"]


def test_exec_bad_process_json_names_field(running, tmp_path):
    rt, cid, _ = running
    (tmp_path / "p.json").write_text(json.dumps({"user": {"uid": -1, "gid": 0}, "args": ["true"], "cwd": "/"}))
    r = rt("exec", "--process", tmp_path / "p.json", cid, check=False)
    assert r.rc == 1 and "user.uid" in r.err


@pytest.mark.parametrize("script,code", [("exit 0", 0), ("exit 9", 9), ("kill -KILL $$", 137), ("kill -TERM $$", 143)])
def test_exec_exit_codes(running, script, code):
    rt, cid, _ = running
    assert rt("exec", cid, "sh", "-c", script, check=False).rc == code


def test_exec_forwards_signals(running):
    rt, cid, _ = running
    p = rt.popen("exec", cid, "sh", "-c", "trap 'exit 11' USR1; while :; do sleep 0.05; done",
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    p.send_signal(10)  # SIGUSR1
    assert p.wait(timeout=10) == 11


def test_exec_detach_pid_file(running, tmp_path):
    rt, cid, _ = running
    pf = tmp_path / "exec.pid"
    rt("exec", "--detach", "--pid-file", pf, cid, "sleep", "1000")
    pid = int(pf.read_text())
    assert b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert pid in json.loads(rt("ps", "--format", "json", cid).out)


def test_exec_missing_command(running, runc):
    rt, cid, _ = running
    r = rt("exec", cid, "no-such-cmd", check=False)
    assert r.rc == 255 and "no-such-cmd" in r.err and "not found" in r.err
    r = rt("exec", cid, "/etc/passwd", check=False)
    assert r.rc == 255 and "/etc/passwd" in r.err
    # Failures before the process is attempted keep exit code 1.
    assert rt("exec", "no-such-container", "true", check=False).rc == 1


def test_exec_missing_cwd_is_an_error(running):
    rt, cid, _ = running
    r = rt("exec", "--cwd", "/does/not/exist", cid, "true", check=False)
    assert r.rc == 255 and "/does/not/exist" in r.err


def test_exec_cwd_cannot_reach_host_fd(running):
    """CVE-2024-21626: no host directory fd may be reachable as cwd."""
    rt, cid, _ = running
    for n in range(3, 12):
        r = rt("exec", "--cwd", f"/proc/self/fd/{n}", cid, "sh", "-c", "ls /proc/self/fd; cat ../../../../etc/hostname",
               check=False)
        host_hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else None
        if r.rc == 0 and host_hostname:
            assert host_hostname not in r.out


def test_exec_into_stopped_and_missing(ocirun, bundle, cid):
    r = ocirun("exec", "nosuch", "true", check=False)
    assert r.rc == 1 and "does not exist" in r.err
    bundle.set_args("true").write()
    ocirun("run", "-d", "--bundle", bundle.path, cid)
    assert wait_for(lambda: ocirun.state(cid)["status"] == "stopped")
    r = ocirun("exec", cid, "true", check=False)
    assert r.rc == 1 and "stopped" in r.err
    ocirun("delete", cid)


def test_exec_50_in_parallel(running):
    rt, cid, _ = running

    def one(i):
        return rt("exec", cid, "sh", "-c", f"echo {i}", check=False)

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as ex:
        results = list(ex.map(one, range(50)))
    assert [r.rc for r in results] == [0] * 50
    assert sorted(int(r.out) for r in results) == list(range(50))


def _console_receiver(path, got):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        _msg, fds, _f, _a = socket.recv_fds(conn, 4096, 1)
        got["master"] = fds[0]
        conn.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def test_exec_tty_with_console_socket(running, tmp_path):
    rt, cid, _ = running
    sock = str(tmp_path / "console.sock")
    got = {}
    t = _console_receiver(sock, got)
    rt("exec", "--tty", "--detach", "--console-socket", sock, cid, "sh", "-c", "tty; stty size; sleep 0.5")
    t.join(timeout=10)
    master = got["master"]
    out = b""
    end = time.time() + 5
    while time.time() < end and b"\n" not in out.split(b"/dev/pts/", 1)[-1]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert b"/dev/pts/" in out


def test_exec_tty_foreground(running):
    """`exec -t` without a console socket relays a pty to our stdio."""
    rt, cid, _ = running
    import pty
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(rt.binary, [rt.binary, "--root", rt.root, "exec", "-t", cid, "sh", "-c", "tty; exit 4"])
    out = pty_read(fd)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 4
    assert b"/dev/pts/" in out


def test_exec_lands_in_the_container_root_with_no_pivot(ocirun, bundle, cid):
    """With --no-pivot the mount namespace's root is still the host's `/`
    (the rootfs is moved over it and chroot'ed): joining the namespace alone
    would put an exec'd process on the host filesystem."""
    bundle.set_args("sleep", "100000").write()
    ocirun("run", "--no-pivot", "--detach", "--bundle", bundle.path, cid)
    r = ocirun("exec", cid, "sh", "-c", "ls /; ls /work /etc/hostname 2>&1 | head -3")
    assert "bin" in r.out.split()
    assert not Path("/work").exists() or "No such file" in r.out, r.out
    init = ocirun.state(cid)["pid"]
    r2 = ocirun("exec", cid, "stat", "-c", "%d:%i", "/")
    st = os.stat(f"/proc/{init}/root/")
    assert r2.out.strip() == f"{st.st_dev}:{st.st_ino}"
