"""The process room: what the container process is made of at execve (rlimits,
user, umask, HOME, capabilities, no_new_privs, seccomp, sysctl, scheduling
attributes, LSM labels) and the errors when a setting cannot be applied.
runc 1.1.5 is the reference wherever it supports the setting."""

import os
import platform
import time
from pathlib import Path

import pytest

from conftest import assert_nothing_left, elf_is_static, ocirun_binary, wait_for

STATUS = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status"


def run_both(ocirun, runc, bundle, cid):
    a = ocirun.run(bundle, cid)
    b = runc.run(bundle, cid)
    assert a.rc == 0, a
    assert b.rc == 0, b
    return a, b


def test_rlimits_match_runc(ocirun, runc, bundle, cid):
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    bundle.sh("ulimit -n; ulimit -Hn; ulimit -c").write()
    a, b = run_both(ocirun, runc, bundle, cid)
    assert a.out.split() == ["100", "200", "0"]
    assert a.out == b.out


def test_rlimit_above_hard_limit_fails_clearly(ocirun, bundle, cid):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("hard limit is unlimited")
    probe = os.system("capsh --has-p=cap_sys_resource >/dev/null 2>&1")
    if probe == 0:
        pytest.skip("CAP_SYS_RESOURCE present: raising the hard limit is allowed here")
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    bundle.set_args("true").write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "setrlimit `RLIMIT_NOFILE`: Operation not permitted" in r.err, r
    assert_nothing_left(ocirun, cid)


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges_matches_runc(ocirun, runc, bundle, cid, nnp):
    bundle.process["noNewPrivileges"] = nnp
    bundle.sh(STATUS).write()
    a, b = run_both(ocirun, runc, bundle, cid)
    assert f"NoNewPrivs:\t{int(nnp)}" in a.out
    assert a.out == b.out


@pytest.mark.parametrize(
    "user",
    [
        {"uid": 1000, "gid": 1000, "umask": 0o077},
        {"uid": 65534, "gid": 65534, "additionalGids": [1000]},
        {"uid": 4242, "gid": 4243},
        {"uid": 0, "gid": 0},
    ],
)
def test_user_umask_home_match_runc(ocirun, runc, bundle, cid, user):
    bundle.process["user"] = user
    bundle.process["env"] = ["PATH=/bin", "TERM=xterm"]
    bundle.sh('id; umask; echo "HOME=$HOME"; env | sort').write()
    a, b = run_both(ocirun, runc, bundle, cid)
    assert a.out == b.out


def test_home_from_env_wins(ocirun, bundle, cid):
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["env"] = ["PATH=/bin", "HOME=/elsewhere"]
    bundle.sh('echo "$HOME"').write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 0, r
    assert r.out == "/elsewhere\n"


def test_capabilities_custom_match_runc(ocirun, runc, bundle, cid):
    caps = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": caps + ["CAP_SYS_ADMIN"],
        "effective": caps,
        "permitted": caps,
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"],
    }
    bundle.sh(STATUS).write()
    a, b = run_both(ocirun, runc, bundle, cid)
    assert "CapAmb:\t0000000000000020" in a.out
    assert "CapBnd:\t0000000000200421" in a.out
    assert a.out == b.out


def test_unknown_capability_is_an_error(ocirun, bundle, cid):
    bundle.process["capabilities"]["bounding"].append("CAP_NOT_A_THING")
    bundle.set_args("true").write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "unknown capability `CAP_NOT_A_THING`" in r.err, r
    assert_nothing_left(ocirun, cid)


SECCOMP = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ["mkdir", "mkdirat", "not_a_syscall_anywhere"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
        },
    ],
}


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86 architectures in the profile")
@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_matches_runc(ocirun, runc, bundle, cid, nnp):
    bundle.process["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = SECCOMP
    bundle.config["root"]["readonly"] = False
    bundle.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    bundle.sh(
        STATUS + "; mkdir /tmp/x; echo mkdir=$?; hostname foo; echo hostname=$?;"
        " linux32 true; echo linux32=$?; linux64 true; echo linux64=$?"
    ).write()
    a = ocirun.run(bundle, cid)
    b = runc.run(bundle, cid)
    assert a.rc == 0, a
    assert "Seccomp:\t2" in a.out
    assert "mkdir=1" in a.out and "Function not implemented" in a.err
    assert "hostname=1" in a.out
    assert "linux32=1" in a.out and "linux64=0" in a.out
    assert (a.out, a.err) == (b.out, b.err)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86 architectures in the profile")
@pytest.mark.parametrize("filtered", [False, True])
def test_libseccomp_mapped_only_with_a_filter(ocirun, bundle, cid, filtered):
    """A dynamic ocirun loads libseccomp for containers with a filter,
    before the init leaves the host's filesystem; the others never map it.
    A static one (the default build) has it linked in and maps no shared
    library at all, filter or not: a dlopen there would load a second libc.
    The created init is still the runtime's code, so its maps show what it
    loaded; an exec into the container gets the filter too."""
    if filtered:
        bundle.config["linux"]["seccomp"] = SECCOMP
    bundle.config["root"]["readonly"] = False
    bundle.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    bundle.set_args("sleep", "100").write()
    ocirun("create", "--bundle", bundle.path, cid)
    try:
        pid = ocirun.state(cid)["pid"]
        maps = Path(f"/proc/{pid}/maps").read_text()
        if elf_is_static(ocirun_binary()):
            assert ".so" not in maps, maps
        else:
            assert ("libseccomp" in maps) == filtered, maps
        ocirun("start", cid)
        r = ocirun("exec", cid, "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x; echo mkdir=$?",
                   check=False)
        assert r.rc == 0, r
        assert ("Seccomp:\t2" in r.out) == filtered, r
        assert ("mkdir=1" if filtered else "mkdir=0") in r.out, r
    finally:
        ocirun("delete", "-f", cid)
    assert_nothing_left(ocirun, cid)


def test_seccomp_unknown_action_is_an_error(ocirun, bundle, cid):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}],
    }
    bundle.set_args("true").write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "seccomp: unknown action `SCMP_ACT_EXPLODE`" in r.err, r
    assert_nothing_left(ocirun, cid)


def test_sysctl_matches_runc(ocirun, runc, bundle, cid):
    bundle.config["linux"]["sysctl"] = {"kernel.shmmax": "123456", "net.ipv4.ip_forward": "1"}
    bundle.set_args("cat", "/proc/sys/kernel/shmmax", "/proc/sys/net/ipv4/ip_forward").write()
    a, b = run_both(ocirun, runc, bundle, cid)
    assert a.out == "123456\n1\n"
    assert a.out == b.out


def test_sysctl_key_cannot_escape(ocirun, bundle, cid):
    bundle.config["linux"]["sysctl"] = {"kernel/../../self/oom_score_adj": "1"}
    bundle.set_args("true").write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "invalid sysctl key" in r.err, r
    assert_nothing_left(ocirun, cid)


def test_oom_score_adj_matches_runc(ocirun, runc, bundle, cid):
    bundle.process["oomScoreAdj"] = 321
    bundle.set_args("cat", "/proc/self/oom_score_adj").write()
    a, b = run_both(ocirun, runc, bundle, cid)
    assert a.out == "321\n"
    assert a.out == b.out


def test_scheduler_ioprio_personality(ocirun, bundle, cid):
    bundle.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    bundle.process["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    # stat fields 19 (nice) and 41 (policy); ionice prints the class
    bundle.sh("cut -d' ' -f19,41 /proc/self/stat; ionice; uname -m; grep -c ' bind:0 ' /proc/self/numa_maps").write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "7 3"
    assert lines[1].startswith("idle")
    if platform.machine() == "x86_64":
        assert lines[2] == "i686"
    assert int(lines[3]) > 0


def test_cpu_affinity(ocirun, bundle, cid):
    if os.cpu_count() < 2:
        pytest.skip("one CPU")
    bundle.process["execCPUAffinity"] = {"initial": "0", "final": "0"}
    bundle.sh("grep Cpus_allowed_list /proc/self/status").write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 0, r
    assert r.out.split() == ["Cpus_allowed_list:", "0"]


def test_apparmor_profile_without_apparmor(ocirun, bundle, cid):
    if os.path.exists("/sys/module/apparmor/parameters/enabled"):
        with open("/sys/module/apparmor/parameters/enabled") as f:
            if f.read().startswith("Y"):
                pytest.skip("AppArmor is enabled here")
    bundle.process["apparmorProfile"] = "some-profile"
    bundle.set_args("true").write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "apparmor profile `some-profile` requested but AppArmor is not enabled on this host" in r.err, r
    assert_nothing_left(ocirun, cid)


def test_selinux_label_without_selinux(ocirun, bundle, cid):
    with open("/proc/filesystems") as f:
        if "selinuxfs" in f.read():
            pytest.skip("SELinux is enabled here")
    bundle.process["selinuxLabel"] = "system_u:system_r:container_t:s0"
    bundle.set_args("true").write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "requested but SELinux is not enabled on this host" in r.err, r
    assert_nothing_left(ocirun, cid)


def test_missing_path_in_env(ocirun, runc, bundle, cid):
    # The runtime's own PATH never counts: without PATH in process.env a bare
    # name is not found, as with runc.
    bundle.process["env"] = ["FOO=1"]
    bundle.set_args("true").write()
    a = ocirun.run(bundle, cid)
    b = runc.run(bundle, cid)
    assert a.rc != 0 and b.rc != 0
    # Same words as runc; runc wraps them in a logfmt line (quotes escaped),
    # ocirun prints the plain message.
    assert 'exec: "true": executable file not found in $PATH' in a.err, a
    assert 'exec: \\"true\\": executable file not found in $PATH' in b.err, b


def test_exec_gets_the_process_settings(ocirun, bundle, cid):
    bundle.sh("exec sleep 1000").write()
    ocirun("run", "--bundle", bundle.path, "--detach", cid)
    try:
        r = ocirun("exec", "--user", "1000:1000", "--additional-gids", "10", "--no-new-privs", cid,
                   "sh", "-c", 'id; echo "HOME=$HOME"; ' + STATUS, check=False)
        assert r.rc == 0, r
        lines = r.out.splitlines()
        assert lines[0] == "uid=1000(user) gid=1000(user) groups=10"
        assert "HOME=/home/user" in lines
        assert "NoNewPrivs:\t1" in lines
        r = ocirun("exec", "--cwd", "/nonexistent-dir", cid, "true", check=False)
        assert r.rc != 0
        assert "/nonexistent-dir" in r.err
    finally:
        ocirun("delete", "--force", cid, check=False)


def test_all_capabilities_match_runc(ocirun, runc, bundle, cid):
    # A privileged config names every capability, also those the host has
    # already dropped from the runtime's bounding set.
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    names = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ][: last + 1]
    bundle.process["capabilities"] = {k: names for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
    bundle.sh(STATUS).write()
    a = ocirun.run(bundle, cid)
    b = runc.run(bundle, cid)
    # Where the host took a capability from the runtime itself (here
    # CAP_SYS_RESOURCE) both fail; ocirun names the capability.
    assert (a.rc, a.out) == (b.rc, b.out), (a, b)
    if a.rc != 0:
        assert "is not in the runtime's own permitted set" in a.err, a
