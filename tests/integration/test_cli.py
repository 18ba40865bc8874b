"""The command line: spec (equal to runc's), features, --version, check,
global options and errors."""

import json
import re
import shutil
import subprocess

import pytest

from conftest import ocirun_binary


def run(*args, **kw):
    return subprocess.run([ocirun_binary(), *map(str, args)], capture_output=True, text=True, **kw)


@pytest.mark.parametrize("rootless", [False, True])
def test_spec_equals_runc(tmp_path, rootless):
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    extra = ["--rootless"] if rootless else []
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert run("spec", "--bundle", tmp_path / "a", *extra).returncode == 0
    subprocess.run(["runc", "spec", "--bundle", tmp_path / "b", *extra], check=True)
    ours = json.loads((tmp_path / "a" / "config.json").read_text())
    theirs = json.loads((tmp_path / "b" / "config.json").read_text())
    # The spec version is ours (runc 1.1.5 writes its own, older one).
    assert ours.pop("ociVersion").startswith("1.")
    theirs.pop("ociVersion")
    assert ours == theirs


def test_spec_refuses_to_overwrite(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    r = run("spec", "--bundle", tmp_path)
    assert r.returncode == 1
    assert "exists" in r.stderr
    assert (tmp_path / "config.json").read_text() == "{}"


def test_version():
    r = run("--version")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert re.match(r"ocirun version \d+\.\d+\.\d+", lines[0])
    assert any(l.startswith("commit: ") for l in lines)
    assert "spec: 1.3.0" in lines
    assert any(re.match(r"libseccomp: \d+\.\d+\.\d+", l) for l in lines)


def test_features_is_truthful_json():
    r = run("features")
    assert r.returncode == 0
    f = json.loads(r.stdout)
    assert f["ociVersionMin"].startswith("1.0") and f["ociVersionMax"] == "1.3.0"
    assert set(f["hooks"]) == {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
    assert set(f["linux"]["namespaces"]) == {"cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"}
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert f["linux"]["seccomp"]["enabled"] is True
    assert "SCMP_ACT_ERRNO" in f["linux"]["seccomp"]["actions"]
    assert "SCMP_CMP_MASKED_EQ" in f["linux"]["seccomp"]["operators"]
    assert "SCMP_ARCH_X86_64" in f["linux"]["seccomp"]["archs"]
    for opt in ("ro", "rbind", "nosuid", "rro", "idmap"):
        assert opt in f["mountOptions"]


def test_unknown_command_and_bad_global_option():
    r = run("frobnicate")
    assert r.returncode != 0 and "frobnicate" in r.stderr
    r = run("--log-format", "xml", "list")
    assert r.returncode != 0 and "xml" in r.stderr


def _write_bundle(tmp_path, rootfs, base_config, mutate):
    c = json.loads(json.dumps(base_config))
    c["root"] = {"path": str(rootfs)}
    mutate(c)
    (tmp_path / "config.json").write_text(json.dumps(c))
    return tmp_path


def test_check_valid_bundle(tmp_path, rootfs, base_config):
    b = _write_bundle(tmp_path, rootfs, base_config, lambda c: None)
    r = run("check", "--bundle", b)
    assert r.returncode == 0, r.stderr


def test_check_reports_every_problem(tmp_path, rootfs, base_config):
    def mutate(c):
        c["process"]["user"]["uid"] = "abc"
        c["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]
        c["mounts"][0]["destination"] = "relative/path"
        c["linux"]["namespaces"].append({"type": "pid"})
        c["linux"]["namespaces"].append({"type": "nonsense"})
        c["hooks"] = {"prestart": [{"path": "hooks/relative"}]}
        c["root"]["path"] = str(tmp_path / "missing-rootfs")

    b = _write_bundle(tmp_path, rootfs, base_config, mutate)
    r = run("check", "--bundle", b)
    assert r.returncode == 1
    text = r.stdout + r.stderr
    # JSON errors are reported with their path; with a type error the other
    # semantic checks still run on what could be read.
    assert 'process.user.uid: expected an unsigned 32-bit integer, got "abc"' in text


def test_check_semantic_problems(tmp_path, rootfs, base_config):
    def mutate(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]
        c["mounts"][0]["destination"] = "relative/path"
        c["linux"]["namespaces"].append({"type": "pid"})
        c["linux"]["namespaces"].append({"type": "nonsense"})
        c["linux"]["namespaces"].append({"type": "user"})
        c["hooks"] = {"prestart": [{"path": "hooks/relative"}]}
        c["root"]["path"] = str(tmp_path / "missing-rootfs")
        c["linux"]["netDevices"] = {"eth/0": {}}
        c["linux"]["intelRdt"] = {"closID": "../x"}

    b = _write_bundle(tmp_path, rootfs, base_config, mutate)
    r = run("check", "--bundle", b)
    assert r.returncode == 1
    text = r.stdout + r.stderr
    for needle in ("RLIMIT_BOGUS", "relative/path", "nonsense", "pid", "hooks/relative", "missing-rootfs",
                   "uidMappings", "eth/0", "closID"):
        assert needle in text, f"{needle!r} not reported in:\n{text}"
