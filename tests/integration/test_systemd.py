"""The systemd cgroup driver (--systemd-cgroup).

Without systemd (this CI host: PID 1 is not systemd) only the errors are
checked. With systemd as PID 1 (the systemd VMs of tests/vm/test_vm_systemd.py
(cgroup v2) and test_vm_systemd_v1.py (hybrid) run this file there) the
container's scope unit is checked through systemctl and the cgroup
filesystem, and compared with runc's: limits, device rules (DevicePolicy,
DeviceAllow, and a denied device really denied), and, with a lingering user
named by $OCIRUN_SD_USER, rootless containers in that user's manager."""

import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from conftest import assert_nothing_left, ocirun_binary, run_captured, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

HAVE_SYSTEMD = os.path.isdir("/run/systemd/system")
needs_systemd = pytest.mark.skipif(not HAVE_SYSTEMD, reason="systemd is not PID 1 here (runs in tests/vm)")
CG = Path("/sys/fs/cgroup")
V2 = (CG / "cgroup.controllers").exists()
SD_USER = os.environ.get("OCIRUN_SD_USER")

LIMITS = {
    "memory": {"limit": 67108864},
    "pids": {"limit": 50},
    "cpu": {"quota": 50000, "period": 100000, "shares": 512},
}


def systemctl(*args):
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)


def unit_props(unit, *props):
    out = systemctl("show", "-p", ",".join(props), unit).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_gone(unit):
    return unit_props(unit, "LoadState").get("LoadState") == "not-found"


@pytest.fixture
def sd_ocirun(ocirun):
    ocirun.global_args = ["--systemd-cgroup"]
    return ocirun


@pytest.fixture
def sd_runc(runc):
    runc.global_args = ["--systemd-cgroup"]
    return runc


@pytest.mark.skipif(HAVE_SYSTEMD, reason="systemd is running")
def test_no_systemd_is_a_clear_error(sd_ocirun, bundle, cid):
    bundle.set_args("true").write()
    r = sd_ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "systemd cgroup driver: cannot reach systemd over D-Bus" in r.err, r
    assert_nothing_left(sd_ocirun, cid)


@pytest.mark.parametrize("path", ["/ocirun/abc", "a:b", "system.slice:p:x:y", "bad/slice.slice:p:n",
                                  "system.slice:p:", "nota-slice:p:n"])
def test_bad_cgroups_path(sd_ocirun, bundle, cid, path):
    bundle.linux["cgroupsPath"] = path
    bundle.set_args("true").write()
    r = sd_ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "systemd cgroup driver" in r.err, r
    if path in ("/ocirun/abc", "a:b", "system.slice:p:x:y"):
        assert '"slice:prefix:name"' in r.err, r
    assert_nothing_left(sd_ocirun, cid)


# ------------------------------------------------------ with a real systemd


def scope_cgroup(unit):
    """The scope's cgroup path (systemd's ControlGroup)."""
    cg = unit_props(unit, "ControlGroup").get("ControlGroup", "")
    assert cg.startswith("/"), f"no cgroup for {unit}: {systemctl('status', unit).stdout}"
    return cg


# v1: the hierarchy of a knob's controller; cgroup.procs from systemd's own.
V1_HIERARCHY = {"memory": "memory", "pids": "pids", "cpu": "cpu,cpuacct", "devices": "devices", "cgroup": "systemd"}


def cg_dir(cg, controller="cgroup"):
    return CG / cg.lstrip("/") if V2 else CG / V1_HIERARCHY[controller] / cg.lstrip("/")


def knob(cg, name):
    return (cg_dir(cg, name.split(".")[0]) / name).read_text().strip()


def cg_dirs(cg):
    """Every directory of cgroup path cg, in whichever hierarchy."""
    return [d / cg.lstrip("/") for d in [CG, *CG.iterdir()] if d.is_dir() and (d / cg.lstrip("/")).exists()]


@needs_systemd
@pytest.mark.parametrize("cgpath,slice_dir,unit", [
    ("", "system.slice", "ocirun-{cid}.scope"),
    ("system.slice:ocirun-test:{cid}", "system.slice", "ocirun-test-{cid}.scope"),
    ("ocirun-test.slice:pfx:{cid}", "ocirun.slice/ocirun-test.slice", "pfx-{cid}.scope"),
])
def test_scope_unit_lifecycle(sd_ocirun, bundle, cid, cgpath, slice_dir, unit):
    unit = unit.format(cid=cid)
    if cgpath:
        bundle.linux["cgroupsPath"] = cgpath.format(cid=cid)
    bundle.linux.setdefault("resources", {}).update(LIMITS)
    bundle.sh("cat /proc/self/cgroup; sleep 600").write()
    sd_ocirun("create", "--bundle", bundle.path, cid)
    try:
        st = systemctl("status", "--no-pager", unit)
        assert st.returncode == 0, f"systemctl status {unit}: rc {st.returncode}\n{st.stdout}{st.stderr}"
        mem = "MemoryMax" if V2 else "MemoryLimit"
        props = unit_props(unit, "ActiveState", "Delegate", mem, "TasksMax", "CPUQuotaPerSecUSec", "Slice")
        assert props["ActiveState"] == "active", props
        assert props["Delegate"] == "yes", props
        assert props[mem] == "67108864", props
        assert props["TasksMax"] == "50", props
        assert props["CPUQuotaPerSecUSec"] == "500ms", props
        assert props["Slice"] == slice_dir.split("/")[-1], props

        d = scope_cgroup(unit)
        assert d == f"/{slice_dir}/{unit}", d
        if V2:
            assert knob(d, "memory.max") == "67108864"
            assert knob(d, "pids.max") == "50"
            assert knob(d, "cpu.max") == "50000 100000"
            assert knob(d, "cpu.weight") == "20"  # shares 512, runc's conversion
        else:
            assert knob(d, "memory.limit_in_bytes") == "67108864"
            assert knob(d, "pids.max") == "50"
            assert knob(d, "cpu.cfs_quota_us") == "50000"
            assert knob(d, "cpu.shares") == "512"
        pid = sd_ocirun.state(cid)["pid"]
        # Only the container's init is in the scope (nothing of the runtime).
        procs = wait_for(lambda: knob(d, "cgroup.procs").split() == [str(pid)], timeout=5)
        assert procs, f"cgroup.procs: {knob(d, 'cgroup.procs')} (init {pid})"
        # ... in every hierarchy
        lines = Path(f"/proc/{pid}/cgroup").read_text().split()
        assert all(line.endswith(f"/{unit}") for line in lines), lines

        # exec joins the same scope
        r = sd_ocirun("exec", cid, "cat", "/proc/self/cgroup")
        lines = r.out.split()
        assert all(line.endswith(f":/{slice_dir}/{unit}") for line in lines) or \
            all(line.endswith(":/") for line in lines), r  # in its cgroup namespace
        ps = sd_ocirun("ps", "--format", "json", cid).out
        assert ps.strip() == f"[{pid}]", ps
        sd_ocirun("kill", cid, "KILL")
        wait_for(lambda: sd_ocirun.state(cid)["status"] == "stopped")
    finally:
        sd_ocirun("delete", "--force", cid, check=False)
    assert wait_for(lambda: unit_gone(unit), timeout=10), systemctl("status", unit).stdout
    assert not cg_dirs(d), f"{cg_dirs(d)} left behind"
    assert systemctl("is-failed", unit).stdout.strip() != "failed"


@needs_systemd
def test_run_exit_code_and_cleanup(sd_ocirun, bundle, cid):
    bundle.sh("exit 7").write()
    r = sd_ocirun.run(bundle, cid)
    assert r.rc == 7, r
    assert sd_ocirun.ids() == []
    assert wait_for(lambda: unit_gone(f"ocirun-{cid}.scope"), timeout=10)


@needs_systemd
def test_unit_exists_is_an_error(sd_ocirun, bundle, cid):
    bundle.set_args("sleep", "600").write()
    sd_ocirun("create", "--bundle", bundle.path, cid)
    try:
        # A second container with the same cgroupsPath asks for the same unit.
        bundle.linux["cgroupsPath"] = f":ocirun:{cid}"
        bundle.write()
        r = sd_ocirun("create", "--bundle", bundle.path, cid + "-2", check=False)
        assert r.rc != 0
        assert f"unit `ocirun-{cid}.scope` already exists" in r.err, r
        assert not (Path(sd_ocirun.root) / (cid + "-2")).exists()
        assert unit_props(f"ocirun-{cid}.scope", "ActiveState")["ActiveState"] == "active"
    finally:
        sd_ocirun("delete", "--force", cid, check=False)


@needs_systemd
def test_limits_match_runc(sd_ocirun, sd_runc, bundle, cid):
    bundle.linux.setdefault("resources", {}).update(LIMITS)
    knobs = "memory.max pids.max cpu.max cpu.weight" if V2 else \
        "memory.limit_in_bytes pids.max cpu.cfs_quota_us cpu.cfs_period_us cpu.shares"
    seen = {}
    for rt in (sd_ocirun, sd_runc):
        bundle.linux["cgroupsPath"] = f"system.slice:cmp-{rt.name}:{cid}"
        bundle.sh("sleep 600").write()
        rt("create", "--bundle", bundle.path, cid)
        try:
            d = scope_cgroup(f"cmp-{rt.name}-{cid}.scope")
            seen[rt.name] = {k: knob(d, k) for k in knobs.split()}
            seen[rt.name]["Delegate"] = unit_props(f"cmp-{rt.name}-{cid}.scope", "Delegate")["Delegate"]
        finally:
            rt("delete", "--force", cid, check=False)
    assert seen["ocirun"] == seen["runc"], seen


@needs_systemd
def test_update_sets_unit_properties(sd_ocirun, bundle, cid):
    unit = f"ocirun-{cid}.scope"
    bundle.linux.setdefault("resources", {}).update(LIMITS)
    bundle.set_args("sleep", "600").write()
    sd_ocirun("create", "--bundle", bundle.path, cid)
    try:
        sd_ocirun("update", "--memory", "32m", "--pids-limit", "20", cid)
        mem = "MemoryMax" if V2 else "MemoryLimit"
        props = unit_props(unit, mem, "TasksMax")
        # The unit itself, not only the files: a daemon-reload keeps them.
        assert props == {mem: str(32 << 20), "TasksMax": "20"}, props
        systemctl("daemon-reload")
        d = scope_cgroup(unit)
        assert knob(d, "memory.max" if V2 else "memory.limit_in_bytes") == str(32 << 20)
        assert knob(d, "pids.max") == "20"
    finally:
        sd_ocirun("delete", "--force", cid, check=False)
    assert wait_for(lambda: unit_gone(unit), timeout=10)


# ------------------------------------------------------------ device rules

# A spec's own rules on top of deny-all (runc's defaults come after them):
# a whole block major, one char device with merged permissions.
DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "b", "major": 7, "access": "rw"},
    {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "w"},
    {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "r"},
]
# /dev/kmsg: created in the container, never allowed. Opened write-only, as
# the open of a write-only kmsg needs no privilege: only the device rules
# decide.
KMSG = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666, "uid": 0, "gid": 0}


def device_props(unit):
    """DevicePolicy and the DeviceAllow lines of the unit (sorted: systemd
    lists them newest first, and reversed again after a daemon-reload)."""
    out = systemctl("show", "-p", "DevicePolicy,DeviceAllow", unit).stdout
    return sorted(line for line in out.splitlines() if line.startswith(("DevicePolicy=", "DeviceAllow=")))


def device_groups():
    """{"char-pts": "char-136", ...} from /proc/devices."""
    groups, kind = {}, None
    for line in Path("/proc/devices").read_text().splitlines():
        if line.endswith("devices:"):
            kind = "char" if line.startswith("Character") else "block"
        elif line.strip():
            major, name = line.split()
            groups[f"{kind}-{name}"] = f"{kind}-{major}"
    return groups


def runc_device_props(props):
    """runc 1.1.5 as packaged in Debian 12 fails to read systemd's version
    and falls back to its pre-240 forms: device groups by name
    ("char-pts"), and rules for devices missing from /proc/devices or /dev
    left out. Its entries in the forms it uses with systemd >= 240."""
    groups = device_groups()
    out = []
    for p in props:
        key, _, rest = p.partition("=")
        path, _, perms = rest.partition(" ")
        out.append(f"{key}={groups.get(path, path)} {perms}" if key == "DeviceAllow" else p)
    return sorted(out)


@needs_systemd
def test_device_rules_match_runc(sd_ocirun, sd_runc, bundle, cid):
    bundle.linux.setdefault("resources", {})["devices"] = DEVICE_RULES
    bundle.linux["devices"] = [KMSG]
    seen = {}
    for rt in (sd_ocirun, sd_runc):
        unit = f"dev-{rt.name}-{cid}.scope"
        bundle.linux["cgroupsPath"] = f"system.slice:dev-{rt.name}:{cid}"
        bundle.sh("sleep 600").write()
        rt("create", "--bundle", bundle.path, cid)
        try:
            seen[rt.name] = device_props(unit)
            if not V2:  # what the kernel ends up with, whatever the order of writes
                seen[rt.name].append(sorted(knob(scope_cgroup(unit), "devices.list").split("\n")))
            # From inside: the created but not allowed device is denied, the
            # default ones are not.
            r = rt("exec", cid, "sh", "-c", "echo x > /dev/kmsg", check=False)
            assert r.rc != 0 and "Operation not permitted" in r.err, (rt.name, r)
            r = rt("exec", cid, "sh", "-c", "echo x > /dev/null && head -c3 /dev/zero | wc -c", check=False)
            assert r.rc == 0 and r.out.strip() == "3", (rt.name, r)
        finally:
            rt("delete", "--force", cid, check=False)
    report = "\n".join(f"{k}:\n  " + "\n  ".join(map(str, v)) for k, v in seen.items())
    if not V2:  # the kernel's list in the devices hierarchy: the same
        assert seen["ocirun"].pop() == seen["runc"].pop(), report
    # Everything runc put there, in the same form, and runc's defaults plus
    # the config's own rules, in runc's forms for systemd >= 240.
    runc = runc_device_props(seen["runc"])
    assert set(runc) <= set(seen["ocirun"]), report
    assert seen["ocirun"] == sorted([
        "DevicePolicy=strict", "DeviceAllow=block-* m", "DeviceAllow=char-* m", "DeviceAllow=block-7 rw",
        "DeviceAllow=/dev/char/4:1 rw", "DeviceAllow=char-136 rwm", "DeviceAllow=/dev/char/10:200 rwm",
        *(f"DeviceAllow=/dev/char/{n} rwm" for n in ("1:3", "1:5", "1:7", "1:8", "1:9", "5:0", "5:2"))]), report


@needs_systemd
def test_update_keeps_device_rules(sd_ocirun, bundle, cid):
    """`update` (which, as runc's, takes no device rules) leaves the unit's
    device properties as they were, and the device denied, also after
    systemd re-applied the unit's settings (on v1 it rewrites the devices
    cgroup from DeviceAllow)."""
    unit = f"ocirun-{cid}.scope"
    bundle.linux.setdefault("resources", {})["devices"] = DEVICE_RULES
    bundle.linux["devices"] = [KMSG]
    bundle.set_args("sleep", "600").write()
    sd_ocirun("create", "--bundle", bundle.path, cid)
    try:
        before = device_props(unit)
        sd_ocirun("update", "--memory", "32m", cid)
        systemctl("daemon-reload")
        assert device_props(unit) == before
        r = sd_ocirun("exec", cid, "sh", "-c", "echo x > /dev/kmsg", check=False)
        assert r.rc != 0 and "Operation not permitted" in r.err, r
        r = sd_ocirun("exec", cid, "sh", "-c", "echo x > /dev/null && echo ok", check=False)
        assert r.rc == 0 and r.out.strip() == "ok", r
    finally:
        sd_ocirun("delete", "--force", cid, check=False)
    assert wait_for(lambda: unit_gone(unit), timeout=10)


# ---------------------------------------------------------------- rootless

needs_user = pytest.mark.skipif(not (HAVE_SYSTEMD and SD_USER),
                                reason="needs systemd and a lingering user in $OCIRUN_SD_USER (tests/vm sets one up)")


class UserRuntime:
    """ocirun run as SD_USER with its session's XDG_RUNTIME_DIR."""

    def __init__(self, env=None):
        pw = pwd.getpwnam(SD_USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.xdg = f"/run/user/{self.uid}"
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/", "XDG_RUNTIME_DIR": self.xdg}
        self.env.update(env or {})
        self.name = "ocirun"

    def _pre(self):
        os.setgroups([])
        os.setresgid(self.gid, self.gid, self.gid)
        os.setresuid(self.uid, self.uid, self.uid)

    def cmd(self, *args, check=True, timeout=60):
        cp = run_captured([str(a) for a in args], stdin=subprocess.DEVNULL, timeout=timeout, env=self.env, cwd="/",
                          preexec_fn=self._pre)
        if check and cp.returncode != 0:
            raise AssertionError(f"as {SD_USER}: {' '.join(map(str, args))}: rc {cp.returncode}\n"
                                 f"{cp.stdout}\n{cp.stderr}")
        return cp

    def __call__(self, *args, **kw):
        return self.cmd(ocirun_binary(), "--systemd-cgroup", *args, **kw)

    def unit_props(self, unit, *props):
        out = self.cmd("systemctl", "--user", "show", "-p", ",".join(props), unit, check=False).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture
def user_bundle(workdir, rootfs, cid):
    """A rootless bundle (`ocirun spec --rootless` run as the user) the user
    can read, with limits."""
    rt = UserRuntime()
    d = workdir / f"sd-user-{cid}"
    d.mkdir(mode=0o755)
    os.chown(d, rt.uid, rt.gid)
    rt.cmd(ocirun_binary(), "spec", "--rootless", "--bundle", d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["root"] = {"path": str(rootfs), "readonly": True}
    cfg["process"]["terminal"] = False
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 42}}
    cfg["process"]["args"] = ["sleep", "600"]
    (d / "config.json").write_text(json.dumps(cfg))
    yield d
    subprocess.run(["rm", "-rf", str(d)])


@needs_user
def test_rootless_user_manager(user_bundle, cid):
    rt = UserRuntime()
    unit = f"ocirun-{cid}.scope"
    if not V2:
        r = rt("create", "--bundle", user_bundle, cid, check=False)
        assert r.returncode != 0
        assert "rootless containers need cgroup v2" in r.stderr, r.stderr
        assert rt.unit_props(unit, "LoadState").get("LoadState") == "not-found"
        assert not Path(rt.xdg, "ocirun", cid).exists()
        return
    rt("create", "--bundle", user_bundle, cid)
    try:
        props = rt.unit_props(unit, "ActiveState", "Delegate", "MemoryMax", "TasksMax", "Slice", "ControlGroup")
        assert props.get("ActiveState") == "active", props
        assert props["Delegate"] == "yes" and props["Slice"] == "user.slice", props
        assert props["MemoryMax"] == str(64 << 20) and props["TasksMax"] == "42", props
        cg = props["ControlGroup"]
        assert cg == f"/user.slice/user-{rt.uid}.slice/user@{rt.uid}.service/user.slice/{unit}", props
        # Not in the system manager.
        assert unit_gone(unit)
        assert knob(cg, "memory.max") == str(64 << 20)
        assert knob(cg, "pids.max") == "42"
        st = json.loads(rt("state", cid).stdout)
        assert st["status"] == "created", st
        assert knob(cg, "cgroup.procs").split() == [str(st["pid"])]
        rt("start", cid)
        # From inside: its /sys/fs/cgroup is its own cgroup (as runc binds it
        # without a cgroup namespace), and /proc says which one it is.
        r = rt("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /proc/self/cgroup")
        assert r.stdout.split() == [str(64 << 20), "42", f"0::{cg}"], (r.stdout, r.stderr)
        ps = json.loads(rt("ps", "--format", "json", cid).stdout)
        assert ps == [st["pid"]], ps
        # exec --cgroup into a sub-cgroup the user made: the user manager
        # moves the process there too (the caller's own cgroup is not the
        # user's to move it out of).
        rt.cmd("mkdir", CG / cg.lstrip("/") / "sub")
        r = rt("exec", "--cgroup", "sub", cid, "cat", "/proc/self/cgroup")
        assert r.stdout.split() == [f"0::{cg}/sub"], (r.stdout, r.stderr)
        rt("update", "--pids-limit", "21", cid)
        assert rt.unit_props(unit, "TasksMax")["TasksMax"] == "21"
        assert knob(cg, "pids.max") == "21"
        rt("kill", cid, "KILL")
        wait_for(lambda: json.loads(rt("state", cid).stdout)["status"] == "stopped")
    finally:
        rt("delete", "--force", cid, check=False)
    assert wait_for(lambda: rt.unit_props(unit, "LoadState").get("LoadState") == "not-found", timeout=10), \
        rt.unit_props(unit, "LoadState", "ActiveState")
    assert not (CG / cg.lstrip("/")).exists()
    assert not Path(rt.xdg, "ocirun", cid).exists()


@needs_user
@pytest.mark.parametrize("env,named", [
    ({"XDG_RUNTIME_DIR": "/nonexistent/ocirun"}, "`unix:path=/nonexistent/ocirun/bus` ($XDG_RUNTIME_DIR/bus)"),
    ({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"},
     "`unix:path=/nonexistent/bus` (DBUS_SESSION_BUS_ADDRESS)"),
])
def test_rootless_without_user_bus(user_bundle, cid, env, named, tmp_path):
    rt = UserRuntime(env)
    root = Path(UserRuntime().xdg) / f"ocirun-nobus-{cid}"
    r = rt("--root", root, "run", "--bundle", user_bundle, cid, check=False)
    assert r.returncode != 0
    if V2:
        assert f"systemd cgroup driver: cannot connect to the user bus {named}" in r.stderr, r.stderr
        assert "loginctl enable-linger" in r.stderr, r.stderr
    else:
        assert "rootless containers need cgroup v2" in r.stderr, r.stderr
    assert not (root / cid).exists()
    subprocess.run(["rm", "-rf", str(root)])
