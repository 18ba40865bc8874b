"""Helpers shared by the e2e tests: the ocirun binary, running client
commands with readable failures, a pty runner for `-it`, private daemons
(dockerd, containerd) and their cleanup."""

import itertools
import os
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNC = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/runc"
RUNTIMES = ("runc", "ocirun")
# Names this session gives cgroup parents, ctr namespaces and containers.
TAG = f"ocirun-e2e-{os.getpid()}"
_names = itertools.count()

# An ocirun command still being written prints "<cmd> is not implemented
# yet"; a test that hits one is an expected failure (xfail) until then.
NOT_IMPLEMENTED = "not implemented yet"


def ocirun_binary():
    b = os.environ.get("OCIRUN")
    if not b:
        for cand in (REPO / "build" / "ocirun", REPO / "ocirun"):
            if cand.exists():
                b = str(cand)
                break
    if not b:
        raise RuntimeError("ocirun binary not found: build it or set OCIRUN")
    # Engines run the runtime by the path they are given: it must be absolute.
    return str(Path(b).resolve())


def runtime_binary(name):
    return ocirun_binary() if name == "ocirun" else RUNC


class Result:
    def __init__(self, cmd, rc, out, err):
        self.cmd, self.rc, self.out, self.err = cmd, rc, out, err

    def __repr__(self):
        return f"Result(rc={self.rc}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


def run(cmd, *, what="", check=True, timeout=60, input=None, env=None):
    """Runs a client command. Output goes through files, not pipes: a client
    may leave a daemonized child (conmon, a shim) holding its stdout, and a
    pipe would then never reach EOF. `what` names engine/operation/runtime in
    the failure message."""
    cmd = [str(c) for c in cmd]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            cp = subprocess.run(cmd, input=input, stdout=out, stderr=err, text=True, timeout=timeout, env=env,
                                stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            out.seek(0)
            err.seek(0)
            raise AssertionError(f"[{what}] timed out after {timeout}s: {' '.join(cmd)}\n"
                                 f"stdout: {out.read()[-2000:]}\nstderr: {err.read()[-2000:]}")
        out.seek(0)
        err.seek(0)
        r = Result(cmd, cp.returncode, out.read(), err.read())
    if check and r.rc != 0:
        xfail_if_not_implemented(r, what)
        raise AssertionError(f"[{what}] failed: {' '.join(cmd)}\n{r}")
    return r


def xfail_if_not_implemented(r, what):
    text = (r.out or "") + (r.err or "")
    if NOT_IMPLEMENTED in text and "ocirun" in what:
        line = next(ln for ln in text.splitlines() if NOT_IMPLEMENTED in ln)
        pytest.xfail(f"[{what}] ocirun command not implemented yet: {line.strip()[:300]}")


def run_in_pty(cmd, *, what="", timeout=30, rows=40, cols=100, env=None):
    """Runs `cmd` with a pty as its stdin/stdout/stderr (for `-it` / `-t`
    clients, which insist on a terminal); returns (rc, output)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen([str(c) for c in cmd], stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True, close_fds=True)
    os.close(slave)
    chunks = []
    end = time.time() + timeout
    try:
        while time.time() < end:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the slave
                    break
                if not data:
                    break
                chunks.append(data)
            elif p.poll() is not None:
                break
        else:
            p.kill()
            p.wait()
            raise AssertionError(f"[{what}] timed out in a pty: {' '.join(map(str, cmd))}: {b''.join(chunks)!r}")
        rc = p.wait(timeout=10)
    finally:
        os.close(master)
    return rc, b"".join(chunks).decode(errors="replace")


def wait_for(pred, timeout=15.0, interval=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


# ---------------------------------------------------------------- daemons


class Daemon:
    """A daemon started in its own mount and network namespaces
    (`unshare -m -n`): its rootfs mounts, bridges, iptables rules and netns
    files stay private and vanish with it."""

    def __init__(self, name, argv, logfile, env=None):
        self.name = name
        self.logfile = Path(logfile)
        # `unshare` without --fork execs, and so does `sh -c exec`: the pid we
        # get is the daemon's. lo is brought up for daemons that listen on
        # 127.0.0.1 (containerd's CRI streaming server).
        script = '{ ip link set lo up || busybox ip link set lo up; } && exec "$@"'
        self.log = open(self.logfile, "w")
        self.proc = subprocess.Popen(
            ["unshare", "-m", "-n", "--propagation", "private", "sh", "-c", script, "sh"] + [str(a) for a in argv],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            preexec_fn=_die_with_parent)
        self.mntns = None

    def wait_ready(self, pred, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            if pred():
                self.mntns = self._own_mntns()
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {self.tail()}")

    def _own_mntns(self):
        """The daemon's mount namespace, or None unless it is certainly a
        namespace of its own (never ours: the cleanup kills by it)."""
        try:
            ns = os.readlink(f"/proc/{self.proc.pid}/ns/mnt")
        except OSError:
            return None
        return None if ns == os.readlink("/proc/self/ns/mnt") else ns

    def tail(self, n=30):
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def processes_in_ns(self):
        """{pid: start time} of the processes in the daemon's mount namespace
        (shims and the containers they run). Only meaningful while the daemon
        is alive: a dead namespace's inode number gets reused."""
        found = {}
        if not self.mntns:
            return found
        for d in os.listdir("/proc"):
            if d.isdigit():
                st = _start_time(d)
                try:
                    if st and os.readlink(f"/proc/{d}/ns/mnt") == self.mntns:
                        found[int(d)] = st
                except OSError:
                    pass
        return found

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL; then kills by pid what was in the daemon's
        mount namespace and is still there. Returns those leftovers."""
        # Snapshot while the daemon is alive: it pins its namespace, whose
        # inode number may be reused once it is gone.
        self.mntns = self._own_mntns() if self.proc.poll() is None else None
        before = self.processes_in_ns()
        before.pop(self.proc.pid, None)
        if 1 in before or len(before) > 300:  # not a daemon's own namespace
            before = {}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

        def still_there():
            return {p: st for p, st in before.items() if _start_time(p) == st}

        # The daemon's children (dockerd's containerd, idle shims) exit on
        # their own shortly after it; give them that time.
        wait_for(lambda: not still_there(), timeout=10)
        left = []
        for p in still_there():
            try:
                cmdline = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                left.append(f"{p} {cmdline[:200]}")
                os.kill(p, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        self.log.close()
        return left


def _die_with_parent():
    """SIGTERM to the daemon if pytest dies without tearing down (a timeout
    kill): no dockerd outlives the test run."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _start_time(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def remove_cgroup_tree(relpath):
    """rmdir the cgroup `relpath` (e.g. "/ocirun-e2e-123-docker") and what is
    under it, in every hierarchy, deepest first. Returns what could not be
    removed."""
    left = []
    rel = relpath.strip("/")
    root = Path("/sys/fs/cgroup")
    # Pure cgroup v2: one hierarchy, mounted on /sys/fs/cgroup itself.
    hiers = [root] if (root / "cgroup.controllers").exists() else list(root.iterdir())
    for hier in hiers:
        top = hier / rel
        if not top.is_dir():
            continue
        dirs = [top] + [p for p in top.rglob("*") if p.is_dir()]
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                left.append(str(d))
    return left


def mounts_under(prefix):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp.startswith(str(prefix)):
                out.append(mp)
    return out


def unmount_under(prefix):
    for mp in sorted(mounts_under(prefix), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def rmtree(path):
    """Removes a daemon's data dir; immutable or busy files are not worth a
    failed teardown."""
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


def unique(prefix="e2e"):
    return f"{prefix}-{os.getpid()}-{next(_names)}"


# ------------------------------------------------------------ engine CLIs


class Docker:
    """The docker CLI bound to one private dockerd."""

    def __init__(self, name, sock, execroot, cgroup_parent):
        self.name = name
        self.sock = sock
        self.execroot = Path(execroot)
        self.cgroup_parent = cgroup_parent
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(Path(sock).parent / "cli"))
        self.client = shutil.which("docker", path="/usr/bin:/usr/local/bin")

    def __call__(self, *args, rt=None, op=None, check=True, timeout=60, input=None):
        what = f"{self.name} {op or args[0]} runtime={rt}"
        return run([self.client] + list(args), what=what, check=check, timeout=timeout, input=input, env=self.env)

    def cmd(self, *args):
        """argv for running the client some other way (a pty)."""
        return [self.client, "-H", f"unix://{self.sock}"] + list(args)

    def inspect(self, name, fmt):
        return self("inspect", "-f", fmt, name).out.strip()

    @property
    def runtime_root(self):
        # dockerd 20.10 hands every runtime the same --root.
        return self.execroot / "runtime-runc" / "moby"


class Containerd:
    """ctr bound to the private containerd, in its own namespace."""

    def __init__(self, d, sock):
        self.dir = Path(d)
        self.sock = sock
        self.namespace = TAG  # ctr's cgroups are /<namespace>/<id>
        self.ctr = shutil.which("ctr", path="/usr/bin:/usr/local/bin")

    def __call__(self, *args, rt=None, op=None, check=True, timeout=60, ns=None):
        what = f"containerd/ctr {op or args[0]} runtime={rt}"
        return run(self.cmd(*args, ns=ns), what=what, check=check, timeout=timeout)

    def cmd(self, *args, ns=None):
        return [self.ctr, "--address", self.sock, "-n", ns or self.namespace] + list(args)

    def run_args(self, rt):
        """`ctr run` options selecting runtime `rt`: the runc v2 shim with
        its BinaryName, and a private runtime --root."""
        return ["--runc-binary", runtime_binary(rt), "--runc-root", str(self.dir / "runtime-root")]


class Podman:
    """podman with a private store, runroot, tmpdir and containers.conf."""

    def __init__(self, d, conf, env=None, rootless=False):
        self.dir = Path(d)
        self.rootless = rootless
        self.base = ["podman", "--root", self.dir / "root", "--runroot", self.dir / "runroot",
                     "--storage-driver", "vfs", "--tmpdir", self.dir / "tmp", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file"]
        self.env = dict(env or os.environ, CONTAINERS_CONF=str(conf))
        self.cgroup_parent = f"/{TAG}-podman"
        self.prefix = []

    def runtime_args(self, rt):
        return ["--runtime", runtime_binary(rt)] if rt else []

    def __call__(self, *args, rt=None, op=None, check=True, timeout=60, input=None):
        what = f"podman{' (rootless)' if self.rootless else ''} {op or args[0]} runtime={rt}"
        return run(self.cmd(*args, rt=rt), what=what, check=check, timeout=timeout, input=input, env=self.env)

    def cmd(self, *args, rt=None):
        return self.prefix + self.base + self.runtime_args(rt) + list(args)


def podman_conf(path, netns="none"):
    # Without CAP_SYS_RESOURCE no runtime can raise RLIMIT_NOFILE/NPROC to
    # podman's defaults (nofile 1048576): stay within this host's hard limits
    # (and at most 20000/32768, below what podman keeps for its own
    # processes). netns=none: no CNI bridge on the host's network.
    import resource

    def lim(which, cap):
        hard = resource.getrlimit(which)[1]
        return cap if hard == resource.RLIM_INFINITY else min(hard, cap)

    nofile = lim(resource.RLIMIT_NOFILE, 20000)
    nproc = lim(resource.RLIMIT_NPROC, 32768)
    Path(path).write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        f'netns = "{netns}"\n'
        "[network]\n"
        f'network_config_dir = "{Path(path).parent / "net"}"\n'
        "[engine]\n"
        'events_logger = "file"\n'
    )
    return path
