"""ocirun on an older kernel: every system call Linux added after 5.0 that
ocirun uses or glibc tries (clone3 and CLONE_INTO_CGROUP, openat2, the
pidfd calls, close_range, the new mount API, faccessat2, ...) fails with
ENOSYS, through a seccomp filter on the runtime process (inherited by all
it starts). The fallbacks must give the same container as this kernel
does: same mounts, same cgroups, same process view; exec, kill and delete
work and leave nothing."""

import ctypes
import ctypes.util
import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import assert_nothing_left, wait_for

NEW_SYSCALLS = [
    "pidfd_send_signal", "io_uring_setup", "io_uring_enter", "io_uring_register",  # 5.1
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",  # 5.2
    "pidfd_open", "clone3",  # 5.3
    "close_range", "openat2", "pidfd_getfd", "faccessat2",  # 5.6 - 5.9
    "process_madvise", "epoll_pwait2", "mount_setattr", "quotactl_fd",  # 5.10 - 5.14
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "memfd_secret",
    "process_mrelease", "futex_waitv", "set_mempolicy_home_node",  # - 5.17
    "cachestat", "fchmodat2", "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue",  # 6.x
    "statmount", "listmount", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "mseal",
]

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_FLTATR_CTL_NNP = 3


def _scmp_act_errno(e):
    return 0x00050000 | (e & 0xFFFF)


def _libseccomp():
    name = ctypes.util.find_library("seccomp")
    if not name:
        pytest.skip("libseccomp not installed")
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    return lib


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


SCMP_CMP_EQ = 4


def _old_kernel_filter(missing=NEW_SYSCALLS, setns_pidfd_mask=None):
    """A preexec_fn installing the filter; the numbers are resolved here, in
    the parent, so the child only makes the calls. setns_pidfd_mask: also
    refuse setns() with that combination of CLONE_NEW* flags (EINVAL), which
    only a pidfd takes: a kernel that has pidfds but not setns() on them
    (5.3 - 5.7)."""
    lib = _libseccomp()
    nrs = [n for n in (lib.seccomp_syscall_resolve_name(s.encode()) for s in missing) if n >= 0]
    assert len(nrs) >= len(missing) // 2
    setns_nr = lib.seccomp_syscall_resolve_name(b"setns")

    def install():
        ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
        # root has CAP_SYS_ADMIN: no no_new_privs, which would change what
        # the runtime and its containers may do.
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        for nr in nrs:
            if lib.seccomp_rule_add_array(ctx, _scmp_act_errno(errno.ENOSYS), nr, 0, None) != 0:
                raise OSError("seccomp_rule_add_array")
        if setns_pidfd_mask is not None:
            cmp = _ArgCmp(1, SCMP_CMP_EQ, setns_pidfd_mask, 0)
            if lib.seccomp_rule_add_array(ctx, _scmp_act_errno(errno.EINVAL), setns_nr, 1, ctypes.byref(cmp)) != 0:
                raise OSError("seccomp_rule_add_array (setns)")
        if lib.seccomp_load(ctx) != 0:
            raise OSError("seccomp_load")

    return install


@pytest.fixture
def old(ocirun):
    ocirun.preexec_fn = _old_kernel_filter()
    return ocirun


def test_filter_works(old, bundle, cid):
    """The container inherits the filter too: busybox's own probe of clone3
    fails there, which proves the filter is on the runtime."""
    bundle.set_args("sh", "-c", "grep Seccomp: /proc/self/status").write()
    r = old.run(bundle, cid)
    assert r.rc == 0 and "Seccomp:\t2" in r.out, r


def _prepare_view(bundle):
    """A container that prints what it sees of its mounts, cgroups, ids and
    capabilities."""
    bundle.config["root"]["readonly"] = True
    bundle.linux["maskedPaths"] = ["/proc/kcore", "/sys/firmware"]
    bundle.linux["readonlyPaths"] = ["/proc/sys"]
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(bundle.path),
                                    "options": ["rbind", "ro"]})
    bundle.set_args("sh", "-c", "awk '{print $5, $6, $9}' /proc/self/mountinfo; cat /proc/self/cgroup; id; "
                    "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; ls /data; hostname").write()


def _view(rt, bundle, cid):
    r = rt.run(bundle, cid)
    assert r.rc == 0, r
    return r.out.replace(cid, "CID")


def test_same_container_as_on_this_kernel(ocirun, bundle, cid):
    _prepare_view(bundle)
    now = _view(ocirun, bundle, cid)
    ocirun.preexec_fn = _old_kernel_filter()
    then = _view(ocirun, bundle, cid + "-old")
    assert then == now
    assert "CID" in now  # the cgroups are named after the container


def test_lifecycle(old, bundle, cid):
    """create (the init is moved into its cgroups by the parent: no
    CLONE_INTO_CGROUP), start, exec, ps, kill, delete."""
    bundle.set_args("sleep", "1000").write()
    old("create", "--bundle", bundle.path, cid)
    pid = old.state(cid)["pid"]
    assert cid in Path(f"/proc/{pid}/cgroup").read_text()
    old("start", cid)
    r = old("exec", cid, "sh", "-c", "echo hi; cat /proc/self/cgroup")
    assert r.out.startswith("hi\n") and cid in r.out, r
    assert pid in json.loads(old("ps", "--format", "json", cid).out)
    old("kill", cid, "KILL")
    wait_for(lambda: old.state(cid)["status"] == "stopped")
    old("delete", cid)
    assert_nothing_left(old, cid)


def test_exec_tty_and_detach(old, bundle, cid):
    """exec -d (the runtime does not wait) and run -d, then delete --force
    (kills through plain kill(2) without pidfds)."""
    bundle.set_args("sleep", "1000").write()
    old("run", "-d", "--bundle", bundle.path, cid)
    old("exec", "-d", cid, "sleep", "500")
    wait_for(lambda: len(json.loads(old("ps", "--format", "json", cid).out)) == 2)
    old("delete", "--force", cid)
    assert_nothing_left(old, cid)


def test_exec_joins_user_namespace_first(old, bundle, cid):
    """Without setns() on a pidfd, exec opens the init's /proc/PID/ns files
    and must enter its user namespace before the others."""
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.set_args("sleep", "1000").write()
    old("run", "-d", "--bundle", bundle.path, cid)
    pid = old.state(cid)["pid"]
    r = old("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; readlink /proc/self/ns/mnt")
    lines = r.out.split()
    assert lines[0] == "0" and lines[1:4] == ["0", "100000", "65536"], r
    assert lines[4:] == [os.readlink(f"/proc/{pid}/ns/user"), os.readlink(f"/proc/{pid}/ns/mnt")], r
    old("delete", "--force", cid)
    assert_nothing_left(old, cid)


def test_run_forwards_signals(old, bundle, cid):
    """A foreground `run` relays the signals it gets to the init (kill(2) on
    its own child, no pidfd) and returns the init's exit code."""
    bundle.set_args("sh", "-c", "trap 'exit 7' TERM; echo up; sleep 1000 & wait").write()
    p = old.popen("run", "--bundle", bundle.path, cid, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  preexec_fn=old.preexec_fn)
    try:
        assert p.stdout.readline() == b"up\n"
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 7
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    assert_nothing_left(old, cid)


def test_events_ends_with_the_container(old, bundle, cid):
    """`events` notices the init's exit without a pidfd to poll."""
    bundle.set_args("sleep", "1000").write()
    old("run", "-d", "--bundle", bundle.path, cid)
    stats = json.loads(old("events", "--stats", cid).out)
    assert stats["type"] == "stats" and stats["id"] == cid
    p = old.popen("events", "--interval", "60s", cid, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                  preexec_fn=old.preexec_fn)
    try:
        time.sleep(0.3)
        old("kill", cid, "KILL")
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    old("delete", cid)
    assert_nothing_left(old, cid)


def test_hooks_and_their_timeout(old, bundle, cid, tmp_path):
    """Hooks get the state on stdin; one that overstays its timeout is killed
    and fails create (without a pidfd its exit is found by polling)."""
    from test_hooks import make_hook

    out = tmp_path / "state.json"
    ok = make_hook(tmp_path, "ok", f"cat > {out}\n")
    bundle.config["hooks"] = {"createRuntime": [{"path": ok}]}
    bundle.set_args("true").write()
    assert old.run(bundle, cid).rc == 0
    assert json.loads(out.read_text())["id"] == cid

    slow = make_hook(tmp_path, "slow", "sleep 30\n")
    bundle.config["hooks"] = {"prestart": [{"path": slow, "timeout": 1}]}
    bundle.write()
    t0 = time.monotonic()
    r = old("create", "--bundle", bundle.path, cid + "-slow", check=False)
    assert r.rc == 1 and "timed out" in r.err, r
    assert time.monotonic() - t0 < 10
    assert_nothing_left(old, cid + "-slow")


CLONE_FLAGS = {"mount": 0x00020000, "cgroup": 0x02000000, "uts": 0x04000000, "ipc": 0x08000000,
               "user": 0x10000000, "pid": 0x20000000, "network": 0x40000000, "time": 0x00000080}


def test_exec_without_setns_on_a_pidfd(ocirun, bundle, cid):
    """Linux 5.3 - 5.7: pidfd_open works, setns() refuses a pidfd (EINVAL);
    exec then joins the init's namespaces from /proc/PID/ns."""
    bundle.set_args("sleep", "1000").write()
    mask = 0
    for ns in bundle.linux["namespaces"]:
        mask |= CLONE_FLAGS[ns["type"]]
    ocirun.preexec_fn = _old_kernel_filter(missing=["clone3", "openat2", "close_range", "mount_setattr"],
                                           setns_pidfd_mask=mask)
    ocirun("run", "-d", "--bundle", bundle.path, cid)
    pid = ocirun.state(cid)["pid"]
    r = ocirun("exec", cid, "sh", "-c", "readlink /proc/self/ns/mnt; readlink /proc/self/ns/pid; hostname")
    assert r.out.split() == [os.readlink(f"/proc/{pid}/ns/mnt"), os.readlink(f"/proc/{pid}/ns/pid"),
                             bundle.config["hostname"]], r
    ocirun("delete", "--force", cid)
    assert_nothing_left(ocirun, cid)
