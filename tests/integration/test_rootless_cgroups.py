"""Rootless containers and cgroups, ocirun run as an unprivileged uid (a
single-uid user namespace, the `spec --rootless` config), compared with runc:

- with a delegated cgroup v2 subtree (a directory chowned to the uid, as
  systemd's Delegate=yes makes one): limits applied and visible from both
  sides, ps / kill --all / pause / resume / update / events --stats / exec,
  and delete leaving nothing. Needs a pure cgroup v2 host (tests/vm runs it).
- without delegation: no cgroupsPath and no limits runs without cgroups
  (and --debug says so); limits or a cgroupsPath fail as runc's do, leaving
  nothing. Runs on any host that lets the uid make a user namespace.
- cgroup v1 with only the memory hierarchy delegated: the container is in
  that one and in no other, a memory limit works, a pids limit fails, as
  with runc.

Each runtime call runs in a child moved into a chosen cgroup (the "shell"
of the user) and then switched to the uid."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ocirun_binary, run_captured, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to set up the uid and its cgroup)")

UID = int(os.environ.get("OCIRUN_ROOTLESS_UID", "40123"))
CG = Path("/sys/fs/cgroup")
MiB = 1024 * 1024
PURE_V2 = (CG / "cgroup.controllers").exists()


def _write(path, value):
    with open(path, "w") as f:
        f.write(value)


class Rootless:
    """A runtime run as UID from inside the cgroup `shell` (None: where the
    test runs). root None: the runtime's default ($XDG_RUNTIME_DIR/...)."""

    def __init__(self, binary, name, xdg, shell, root=None):
        self.binary, self.name, self.xdg, self.shell, self.root = binary, name, Path(xdg), shell, root

    def _pre(self):
        if self.shell is not None:
            _write(self.shell / "cgroup.procs", str(os.getpid()))
        os.setgroups([])
        os.setresgid(UID, UID, UID)
        os.setresuid(UID, UID, UID)

    def __call__(self, *args, check=True, timeout=60):
        cmd = [self.binary] + (["--root", str(self.root)] if self.root else []) + [str(a) for a in args]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.xdg), "XDG_RUNTIME_DIR": str(self.xdg)}
        cp = run_captured(cmd, stdin=subprocess.DEVNULL, timeout=timeout, env=env, cwd="/", preexec_fn=self._pre)
        if check and cp.returncode != 0:
            raise AssertionError(f"{self.name} as uid {UID}: {' '.join(cmd)} failed: rc {cp.returncode}\n"
                                 f"{cp.stdout}\n{cp.stderr}")
        return cp

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def state_dir(self):
        return Path(self.root) if self.root else self.xdg / "ocirun"


def _as_uid():
    os.setgroups([])
    os.setresgid(UID, UID, UID)
    os.setresuid(UID, UID, UID)


@pytest.fixture(scope="module")
def home(workdir):
    """$XDG_RUNTIME_DIR of the uid, and a rootless base config made by
    `ocirun spec --rootless` run as that uid (so it maps the uid)."""
    h = workdir / f"rootless-{UID}"
    h.mkdir(mode=0o700)
    os.chown(h, UID, UID)
    cp = subprocess.run(["unshare", "-U", "true"], preexec_fn=_as_uid, capture_output=True, text=True)
    if cp.returncode != 0:
        pytest.skip(f"uid {UID} cannot make a user namespace here: {cp.stderr.strip()}")
    cp = subprocess.run([ocirun_binary(), "spec", "--rootless", "--bundle", str(h)], preexec_fn=_as_uid,
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    cfg = json.loads((h / "config.json").read_text())
    (h / "config.json").unlink()
    yield h, cfg
    shutil.rmtree(h, ignore_errors=True)


class RBundle:
    def __init__(self, path, rootfs, cfg):
        self.path = Path(path)
        self.path.mkdir(mode=0o755)
        self.config = json.loads(json.dumps(cfg))
        self.config["root"] = {"path": str(rootfs), "readonly": True}
        self.config["process"]["terminal"] = False
        self.linux = self.config["linux"]

    def args(self, *a):
        self.config["process"]["args"] = list(a)
        return self

    def cgroupns(self):
        """A cgroup namespace: the container's /sys/fs/cgroup (type cgroup)
        then shows its own cgroup as the root."""
        if {"type": "cgroup"} not in self.linux["namespaces"]:
            self.linux["namespaces"].append({"type": "cgroup"})
        return self

    def limits(self):
        self.linux["resources"] = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 100},
                                   "cpu": {"quota": 50000, "period": 100000}}
        return self

    def write(self):
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2))
        return self


@pytest.fixture
def rbundle(tmp_path, rootfs, home):
    os.chmod(tmp_path, 0o755)
    return RBundle(tmp_path / "rbundle", rootfs, home[1])


def _cgroup_tree(top):
    return sorted(str(p) for p in Path(top).rglob("*") if p.is_dir())


def _rmtree_cgroup(top):
    for d in sorted((p for p in Path(top).rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        d.rmdir()
    Path(top).rmdir()


def _nothing_left(rt, cid, cgroup_top=None):
    sd = rt.state_dir()
    left = [str(p) for p in sd.iterdir()] if sd.exists() else []
    assert not left, f"{rt.name} left state: {left}"
    if cgroup_top is not None:
        assert not (Path(cgroup_top) / cid).exists(), f"{rt.name} left the cgroup of {cid}"


# --------------------------------------------------------- delegated subtree


@pytest.fixture(scope="module")
def delegated():
    """A delegated subtree, as systemd's Delegate=yes leaves it: the parent
    lets it use memory, pids and cpu; the directory and its cgroup.procs,
    cgroup.subtree_control and cgroup.threads belong to the uid. The user's
    processes sit in a leaf below it ("shell")."""
    if not PURE_V2:
        pytest.skip("needs a pure cgroup v2 host (tests/vm/test_vm_rootless.py runs this)")
    top = CG / f"ocirun-rl-{os.getpid()}"
    for c in ("memory", "pids", "cpu"):
        _write(CG / "cgroup.subtree_control", "+" + c)
    top.mkdir()
    shell = top / "shell"
    shell.mkdir()
    for d in (top, shell):
        for f in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
            os.chown(d / f if f else d, UID, UID)
    yield top, shell
    left = [d for d in _cgroup_tree(top) if d != str(shell)]
    _rmtree_cgroup(top)
    assert not left, f"cgroups left in the delegated subtree: {left}"


@pytest.fixture
def rl(home, delegated):
    rt = Rootless(ocirun_binary(), "ocirun", home[0], delegated[1])
    yield rt
    _cleanup(rt)


def _cleanup(rt):
    sd = rt.state_dir()
    for p in (sd.iterdir() if sd.exists() else []):
        rt("delete", "--force", p.name, check=False)


INSIDE = ["0::/", str(64 * MiB), "100", "50000 100000", "rc 0"]


def _limits_inside(rt, rbundle, cid):
    """What the container reads from its own /sys/fs/cgroup. The rootless
    spec rbinds the host's /sys: the kernel refuses (EBUSY) to mount the
    cgroup2 tree again on the root of its own mount, and the runtime must
    still show the container its own cgroup, not the host's root."""
    rbundle.limits().cgroupns().args(
        "sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max"
    ).write()
    r = rt("run", "--bundle", rbundle.path, cid, check=False)
    return r.stdout.splitlines() + [f"rc {r.returncode}"] + r.stderr.splitlines()


def test_delegated_limits_seen_inside(rl, rbundle, cid, delegated, home):
    top, shell = delegated
    rbundle.linux["cgroupsPath"] = f"/{top.name}/{cid}"
    mine = _limits_inside(rl, rbundle, cid)
    _nothing_left(rl, cid, top)
    # Without cgroupsPath, the id below the parent of the caller's cgroup:
    # inside the delegated subtree too.
    del rbundle.linux["cgroupsPath"]
    mine_rel = _limits_inside(rl, rbundle, cid + "b")
    _nothing_left(rl, cid + "b", top)
    theirs = None
    if shutil.which("runc"):
        runc = Rootless(shutil.which("runc"), "runc", home[0], shell, root=home[0] / "runc")
        rbundle.linux["cgroupsPath"] = f"/{top.name}/runc-{cid}"
        theirs = _limits_inside(runc, rbundle, cid)
        _nothing_left(runc, cid, top)
        assert theirs == INSIDE
    assert mine == mine_rel == INSIDE, (mine, mine_rel, theirs)


def test_delegated_lifecycle(rl, rbundle, cid, delegated, home):
    top, _ = delegated
    rbundle.linux["cgroupsPath"] = f"/{top.name}/sub/{cid}"
    rbundle.limits().cgroupns().args("sh", "-c", "sleep 1000 & sleep 1000 & sleep 1000").write()
    try:
        _lifecycle(rl, rbundle, cid, top)
    finally:
        _cleanup(rl)
        if (top / "sub").exists():
            (top / "sub").rmdir()


def _lifecycle(rl, rbundle, cid, top):
    rl("run", "-d", "--bundle", rbundle.path, cid)
    pid = rl.state(cid)["pid"]
    d = top / "sub" / cid
    assert Path(f"/proc/{pid}/cgroup").read_text().strip() == f"0::/{top.name}/sub/{cid}"
    assert (d / "memory.max").read_text().strip() == str(64 * MiB)
    assert (d / "pids.max").read_text().strip() == "100"
    assert (d / "cpu.max").read_text().strip() == "50000 100000"
    assert d.stat().st_uid == UID
    assert (rl.state_dir() / cid).is_dir()

    procs = lambda: (d / "cgroup.procs").read_text().split()  # noqa: E731
    # busybox sh execs the last command: init and two children.
    assert wait_for(lambda: len(procs()) == 3), procs()
    ps = rl("ps", "--format", "json", cid).stdout
    assert sorted(json.loads(ps)) == sorted(int(p) for p in procs())

    inside = rl("exec", cid, "cat", "/sys/fs/cgroup/memory.max", "/proc/self/cgroup").stdout.split()
    assert inside == [str(64 * MiB), "0::/"]

    rl("update", "--memory", "32m", "--pids-limit", "20", "--cpu-quota", "20000", cid)
    assert (d / "memory.max").read_text().strip() == str(32 * MiB)
    assert (d / "pids.max").read_text().strip() == "20"
    assert (d / "cpu.max").read_text().strip() == "20000 100000"

    st = json.loads(rl("events", "--stats", cid).stdout)
    assert st["type"] == "stats" and st["id"] == cid
    assert st["data"]["pids"] == {"current": 3, "limit": 20}
    assert st["data"]["memory"]["usage"]["limit"] == 32 * MiB

    rl("pause", cid)
    assert rl.state(cid)["status"] == "paused"
    assert "frozen 1" in (d / "cgroup.events").read_text()
    rl("resume", cid)
    assert rl.state(cid)["status"] == "running"
    assert "frozen 0" in (d / "cgroup.events").read_text()

    rl("kill", "--all", cid, "KILL")
    assert wait_for(lambda: procs() == []), procs()
    assert wait_for(lambda: rl.state(cid)["status"] == "stopped")
    rl("delete", cid)
    assert not d.exists()
    _nothing_left(rl, cid, top / "sub")


def test_delegated_delete_force_paused(rl, rbundle, cid, delegated):
    top, _ = delegated
    rbundle.linux["cgroupsPath"] = f"/{top.name}/{cid}"
    rbundle.limits().args("sh", "-c", "sleep 1000 & sleep 1000").write()
    rl("run", "-d", "--bundle", rbundle.path, cid)
    rl("pause", cid)
    rl("delete", "--force", cid)
    _nothing_left(rl, cid, top)


def test_delegated_same_as_runc(home, delegated, rbundle, cid, tmp_path):
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    top, shell = delegated
    runc_root = home[0] / "runc"
    seen = {}
    for rt in (Rootless(ocirun_binary(), "ocirun", home[0], shell),
               Rootless(shutil.which("runc"), "runc", home[0], shell, root=runc_root)):
        rbundle.linux["cgroupsPath"] = f"/{top.name}/{rt.name}-{cid}"
        rbundle.limits().args("sleep", "1000").write()
        try:
            rt("run", "-d", "--bundle", rbundle.path, cid)
            d = top / f"{rt.name}-{cid}"
            seen[rt.name] = {k: (d / k).read_text().strip() for k in ("memory.max", "pids.max", "cpu.max")}
            rt("update", "--memory", "48m", cid)
            seen[rt.name]["updated"] = (d / "memory.max").read_text().strip()
            rt("delete", "--force", cid)
            _nothing_left(rt, cid, top)
            assert not d.exists()
        finally:
            _cleanup(rt)
    assert seen["ocirun"] == seen["runc"], seen


# ------------------------------------------------------------ no delegation


@pytest.fixture(scope="module")
def undelegated():
    """Where the uid's runtime calls run: on pure v2 a root-owned leaf (so the
    parent, where a container without cgroupsPath would go, is not
    writable); elsewhere where the tests run (root-owned v1 hierarchies)."""
    if not PURE_V2:
        yield None
        return
    top = CG / f"ocirun-rl-nodeleg-{os.getpid()}"
    top.mkdir()
    shell = top / "shell"
    shell.mkdir()
    yield shell
    left = [d for d in _cgroup_tree(top) if d != str(shell)]
    _rmtree_cgroup(top)
    assert not left, f"cgroups left: {left}"


def _all_cgroup_dirs_named(name):
    return [str(p) for p in CG.rglob(name) if p.is_dir()]


@pytest.mark.parametrize("case", ["plain", "limits", "path", "path+limits"])
def test_undelegated_like_runc(home, undelegated, rbundle, cid, case):
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    if "limits" in case:
        rbundle.limits()
    if "path" in case:
        rbundle.linux["cgroupsPath"] = f"/ocirun-rl-nowhere/{cid}"
    rbundle.args("cat", "/proc/self/cgroup").write()
    res = {}
    for rt in (Rootless(ocirun_binary(), "ocirun", home[0], undelegated),
               Rootless(shutil.which("runc"), "runc", home[0], undelegated, root=home[0] / "runc")):
        log = home[0] / f"{rt.name}.log"
        try:
            r = rt("--log", log, "--debug", "run", "--bundle", rbundle.path, cid, check=False)
            logtext = log.read_text() if log.exists() else ""
        finally:
            log.unlink(missing_ok=True)
            _cleanup(rt)
        res[rt.name] = r
        _nothing_left(rt, cid)
        assert _all_cgroup_dirs_named(cid) == [], f"{rt.name}: {_all_cgroup_dirs_named(cid)}"
        if rt.name == "ocirun":
            ologtext = logtext
    o, c = res["ocirun"], res["runc"]
    assert (o.returncode == 0) == (c.returncode == 0), (o, c)
    if case == "plain":
        assert o.returncode == 0, o
        assert "running without cgroups" in ologtext, ologtext
        # It stayed where its caller was.
        assert o.stdout == c.stdout, (o.stdout, c.stdout)
    else:
        assert o.returncode != 0
        err = o.stderr.strip()
        assert err.startswith("ocirun: ") and err.count("\n") == 0, err
        if case == "limits":
            assert "rootless needs no limits + no cgroupsPath when no permission is granted for cgroups" in err
        else:
            assert "ocirun-rl-nowhere" in err and "Permission denied" in err, err
        assert "level=error" in ologtext, ologtext


# ------------------------------------------------- v1, one hierarchy delegated


@pytest.fixture(scope="module")
def memory_delegated():
    """cgroup v1 with only the memory hierarchy delegated (a directory owned
    by the uid, where its processes sit); every other hierarchy, and the
    cgroup2 tree of a hybrid host, belongs to root."""
    if PURE_V2 or not (CG / "memory" / "tasks").exists():
        pytest.skip("needs a cgroup v1 memory hierarchy")
    top = CG / "memory" / f"ocirun-rl-mem-{os.getpid()}"
    top.mkdir()
    shell = top / "shell"
    shell.mkdir()
    for f in ("", "cgroup.procs", "tasks"):
        os.chown(shell / f if f else shell, UID, UID)
    yield shell
    left = [d for d in _cgroup_tree(top) if d != str(shell)]
    _rmtree_cgroup(top)
    assert not left, f"cgroups left in the delegated memory cgroup: {left}"


@pytest.mark.parametrize("case", ["plain", "memory", "pids"])
def test_v1_partly_delegated_like_runc(home, memory_delegated, rbundle, cid, case):
    """runc keeps the hierarchies it could create its cgroup in and runs
    without the others; a limit needs its own hierarchy. ocirun too: the
    container is in the delegated memory cgroup and nowhere else, a memory
    limit is applied there, and a pids limit fails, naming the hierarchy."""
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    shell = memory_delegated
    if case == "memory":
        rbundle.linux["resources"] = {"memory": {"limit": 64 * MiB}}
    elif case == "pids":
        rbundle.linux["resources"] = {"pids": {"limit": 100}}
    rbundle.args("sleep", "1000").write()
    res = {}
    for rt in (Rootless(ocirun_binary(), "ocirun", home[0], shell),
               Rootless(shutil.which("runc"), "runc", home[0], shell, root=home[0] / "runc")):
        try:
            r = rt("run", "-d", "--bundle", rbundle.path, cid, check=False)
            out = {"rc": r.returncode}
            if r.returncode == 0:
                pid = rt.state(cid)["pid"]
                lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                out["memory"] = [ln.split(":", 2)[2] for ln in lines if ln.split(":")[1] == "memory"]
                out["others"] = sorted(ln.split(":", 1)[1] for ln in lines if ln.split(":")[1] != "memory")
                out["limit"] = (shell / cid / "memory.limit_in_bytes").read_text().strip()
                if rt.name == "ocirun":
                    # The commands that read the cgroup find the container
                    # in the one hierarchy it has (runc 1.1's ps fails here:
                    # it looks in the devices hierarchy).
                    out["ps"] = pid in json.loads(rt("ps", "--format", "json", cid).stdout)
                    out["exec"] = rt("exec", cid, "true", check=False).returncode
                    rt("kill", "--all", cid, "KILL")
                    wait_for(lambda: rt.state(cid)["status"] == "stopped")
                rt("delete", "--force", cid)
            else:
                out["err"] = r.stderr.strip()
        finally:
            _cleanup(rt)
        res[rt.name] = out
        _nothing_left(rt, cid, shell)
        assert _all_cgroup_dirs_named(cid) == [], f"{rt.name}: {_all_cgroup_dirs_named(cid)}"
    o, c = res["ocirun"], res["runc"]
    assert (o["rc"] == 0) == (c["rc"] == 0) == (case != "pids"), res
    if case == "pids":
        assert o["err"].startswith("ocirun: ") and o["err"].count("\n") == 0, o
        assert "pids" in o["err"] and "no permission" in o["err"], o
        return
    rel = "/" + str(shell.relative_to(CG / "memory")) + "/" + cid
    assert o["memory"] == c["memory"] == [rel], res
    # Everywhere else the container stayed where its caller was.
    caller = sorted(ln.split(":", 1)[1] for ln in Path("/proc/self/cgroup").read_text().splitlines()
                    if ln.split(":")[1] != "memory")
    assert o["others"] == c["others"] == caller, res
    assert o["limit"] == c["limit"] == (str(64 * MiB) if case == "memory" else str(2**63 - 4096)), res
    assert o["ps"] and o["exec"] == 0, res
