"""Hooks: all six phases, in the right order, namespace and moment, with
the state on stdin, args, env and timeouts; failures as the spec says."""

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import assert_nothing_left, wait_for

PHASES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def make_hook(tmp_path, name, body):
    p = tmp_path / f"{name}.sh"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


@pytest.fixture
def recorder(tmp_path):
    """A hook that appends `phase state-json mntns` to a log file."""
    log = tmp_path / "hooks.log"
    log.touch()
    # Logs next to itself, so the same script works on the host and, bound
    # at /hooks, inside the container (startContainer).
    path = make_hook(tmp_path, "record",
                     'state=$(cat)\necho "$1 $(readlink /proc/self/ns/mnt) $state" >> "$(dirname "$0")/hooks.log"\n')
    return path, log


def entries(log):
    out = []
    for line in log.read_text().splitlines():
        phase, mnt, state = line.split(" ", 2)
        out.append((phase, mnt, json.loads(state)))
    return out


def test_all_phases_order_state_and_namespace(ocirun, bundle, cid, recorder, tmp_path):
    hook, log = recorder
    # startContainer runs inside the container: its path resolves there, so
    # the hook script must exist in the rootfs: use a copy under /tmp via a
    # bind mount of the script's directory.
    bundle.config["mounts"].append({"destination": "/hooks", "type": "bind", "source": str(tmp_path),
                                    "options": ["rbind", "rw"]})
    hooks = {}
    for ph in PHASES:
        path = "/hooks/record.sh" if ph == "startContainer" else hook
        hooks[ph] = [{"path": path, "args": [path, ph]}]
    bundle.config["hooks"] = hooks
    bundle.sh("echo ran >> /hooks/hooks.log").write()
    ocirun("create", "--bundle", bundle.path, cid)
    init = ocirun.state(cid)["pid"]
    container_mnt = os.readlink(f"/proc/{init}/ns/mnt")
    host_mnt = os.readlink("/proc/self/ns/mnt")
    got = entries(log)
    assert [g[0] for g in got] == ["prestart", "createRuntime", "createContainer"]
    assert got[0][1] == host_mnt and got[1][1] == host_mnt  # runtime namespace
    assert got[2][1] == container_mnt  # container namespace
    for _, _, st in got:
        assert st["id"] == cid and st["pid"] == init and st["status"] == "creating"
        assert st["bundle"] == str(bundle.path) and st["ociVersion"]
    ocirun("start", cid)
    assert wait_for(lambda: ocirun.state(cid)["status"] == "stopped")
    lines = log.read_text().splitlines()
    phases = [l.split(" ", 1)[0] for l in lines]
    # startContainer before the process runs; poststart after it started.
    assert phases[:4] == ["prestart", "createRuntime", "createContainer", "startContainer"]
    assert "ran" in phases and phases.index("startContainer") < phases.index("ran")
    assert "poststart" in phases
    start_entry = [l for l in lines if l.startswith("startContainer ")][0]
    assert start_entry.split(" ")[1] == container_mnt
    ocirun("delete", cid)
    last = log.read_text().splitlines()[-1]
    assert last.startswith("poststop ")
    st = json.loads(last.split(" ", 2)[2])
    assert st["status"] == "stopped" and st["id"] == cid


def test_hook_args_env_and_empty_env(ocirun, bundle, cid, tmp_path):
    out = tmp_path / "out"
    # For a script the kernel puts the interpreter in front, so check the
    # arguments after argv[0] and the environment the hook was exec'd with.
    h = make_hook(tmp_path, "argsenv", f'echo "$1|$2" > {out}; tr "\\0" "\\n" < /proc/$$/environ >> {out}\n')
    bundle.config["hooks"] = {"createRuntime": [{"path": h, "args": ["custom-argv0", "a b", "c"],
                                                "env": ["FOO=bar"]}]}
    bundle.set_args("true").write()
    assert ocirun.run(bundle, cid).rc == 0
    # The environment is exactly hook.env.
    assert out.read_text().splitlines() == ["a b|c", "FOO=bar"]


def test_hook_timeout_fails_create_and_leaves_nothing(ocirun, bundle, cid, tmp_path):
    h = make_hook(tmp_path, "slow", "sleep 30\n")
    bundle.config["hooks"] = {"prestart": [{"path": h, "timeout": 1}]}
    bundle.set_args("true").write()
    t0 = time.time()
    r = ocirun("create", "--bundle", bundle.path, cid, check=False)
    assert r.rc == 1 and "timed out" in r.err and "prestart" in r.err
    assert time.time() - t0 < 10
    assert_nothing_left(ocirun, cid)
    out = subprocess.run(["pgrep", "-f", h], capture_output=True, text=True).stdout
    assert out == "", "the timed-out hook is still running"


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hooks(ocirun, bundle, cid, tmp_path, phase):
    h = make_hook(tmp_path, "fail", "echo no way >&2; exit 4\n")
    bundle.config["hooks"] = {phase: [{"path": h}]}
    bundle.set_args("true").write()
    r = ocirun("create", "--bundle", bundle.path, cid, check=False)
    assert r.rc == 1 and phase in r.err and "exit status 4" in r.err and "no way" in r.err
    assert_nothing_left(ocirun, cid)


def test_failing_start_container_hook_stops_the_container(ocirun, bundle, cid, tmp_path):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    marker = tmp_path / "ran"
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp_path),
                                    "options": ["rbind", "rw"]})
    bundle.sh("touch /out/ran").write()
    ocirun("create", "--bundle", bundle.path, cid)
    ocirun("start", cid, check=False)
    assert wait_for(lambda: ocirun.state(cid)["status"] == "stopped")
    assert not marker.exists(), "the process ran although startContainer failed"
    ocirun("delete", cid)


def test_failing_poststart_and_poststop_only_warn(ocirun, bundle, cid, tmp_path):
    h = make_hook(tmp_path, "fail", "exit 1\n")
    bundle.config["hooks"] = {"poststart": [{"path": h}], "poststop": [{"path": h}]}
    bundle.set_args("sleep", "100").write()
    ocirun("create", "--bundle", bundle.path, cid)
    r = ocirun("start", cid)
    assert r.rc == 0
    assert ocirun.state(cid)["status"] == "running"
    r = ocirun("delete", "--force", cid)
    assert r.rc == 0
    assert_nothing_left(ocirun, cid)


def test_relative_hook_path_is_an_error(ocirun, bundle, cid):
    bundle.config["hooks"] = {"prestart": [{"path": "relative/hook"}]}
    bundle.set_args("true").write()
    r = ocirun("create", "--bundle", bundle.path, cid, check=False)
    assert r.rc == 1 and "relative/hook" in r.err
    assert_nothing_left(ocirun, cid)
