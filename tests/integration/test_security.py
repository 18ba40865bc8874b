"""Protections against the runtime's own known attack classes: the host
binary (CVE-2019-5736), host fds (CVE-2024-21626: see test_namespaces and
test_exec), and running unprivileged (rootless)."""

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import Bundle, wait_for


def test_host_binary_unreachable_from_shared_pid_namespace(ocirun, bundle, cid, tmp_path, rootfs, base_config):
    """Until execve the init is a copy of the runtime. A process of another
    container sharing its pid namespace (a pod) must not read or open the
    host binary through /proc/PID/exe."""
    sb = Bundle(tmp_path / "sb", rootfs, base_config)
    sb.set_args("sleep", "100000").write()
    ocirun("run", "-d", "--bundle", sb.path, cid + "-sb")
    sb_pid = ocirun.state(cid + "-sb")["pid"]
    bundle.linux["namespaces"] = [{"type": "pid", "path": f"/proc/{sb_pid}/ns/pid"}, {"type": "mount"},
                                  {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]
    bundle.set_args("true").write()
    ocirun("create", "--bundle", bundle.path, cid)  # its init now waits, unexec'd
    r = ocirun("exec", cid + "-sb", "sh", "-c",
               "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = ocirun ] && echo found ${p#/proc/} && "
               "{ head -c 4 $p/exe >/dev/null 2>&1 && echo READABLE; ( : >> $p/exe ) 2>/dev/null && echo WRITABLE; "
               "for f in $p/fd/*; do readlink $f >/dev/null 2>&1 && echo FDS; done; readlink $p/cwd >/dev/null 2>&1 && echo CWD; }; done; true")
    assert "found" in r.out, "the waiting init should be visible in the shared pid namespace"
    assert "READABLE" not in r.out and "WRITABLE" not in r.out and "FDS" not in r.out and "CWD" not in r.out, r.out
    ocirun("delete", "--force", cid)
    ocirun("delete", "--force", cid + "-sb")


@pytest.fixture
def unprivileged(tmp_path):
    """An unprivileged user with its own XDG_RUNTIME_DIR."""
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    run_dir = tmp_path / "xdg"
    run_dir.mkdir()
    os.chown(run_dir, pw.pw_uid, pw.pw_gid)
    os.chmod(tmp_path, 0o755)
    return pw, run_dir


def test_rootless_run(unprivileged, rootfs, base_config, tmp_path):
    """`ocirun spec --rootless` + `run` as an unprivileged user: the state
    goes to $XDG_RUNTIME_DIR/ocirun, the container runs in a user namespace
    with the user mapped to root, without cgroups."""
    from conftest import ocirun_binary

    pw, run_dir = unprivileged
    b = tmp_path / "rl"
    b.mkdir()
    subprocess.run([ocirun_binary(), "spec", "--rootless", "--bundle", str(b)], check=True)
    c = json.loads((b / "config.json").read_text())
    # spec --rootless maps the caller (root here): map nobody instead.
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": pw.pw_uid, "size": 1}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": pw.pw_gid, "size": 1}]
    c["root"] = {"path": str(rootfs), "readonly": True}
    c["process"]["terminal"] = False
    c["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map"]
    (b / "config.json").write_text(json.dumps(c))
    os.chmod(b, 0o755)
    env = {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(run_dir), "HOME": str(run_dir)}

    def as_nobody():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    cp = subprocess.run([ocirun_binary(), "run", "--bundle", str(b), "rl1"], capture_output=True, text=True,
                        env=env, preexec_fn=as_nobody, timeout=30, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(pw.pw_uid), "1"]
    # run deleted it: the state root exists and is empty.
    assert (run_dir / "ocirun").is_dir() and list((run_dir / "ocirun").iterdir()) == []


def test_init_cwd_cannot_reach_host_fd(ocirun, bundle, cid):
    """CVE-2024-21626 through config.json: process.cwd = /proc/self/fd/N must
    never put the init in a host directory."""
    host_hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "no-such"
    for n in range(3, 16):
        bundle.process["cwd"] = f"/proc/self/fd/{n}"
        bundle.sh("cat ../../../../../../etc/hostname 2>/dev/null; pwd").write()
        r = ocirun.run(bundle, f"{cid}-{n}")
        if r.rc == 0:
            assert host_hostname not in r.out.splitlines(), (n, r.out)
        else:
            assert "cwd" in r.err, r.err
        assert cid + f"-{n}" not in ocirun.ids()
