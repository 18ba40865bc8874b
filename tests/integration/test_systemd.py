"""The systemd cgroup driver (--systemd-cgroup).

Without systemd (this CI host: PID 1 is not systemd) only the errors are
checked. With systemd as PID 1 (the systemd VM of tests/vm/test_vm_systemd.py
runs this file there) the container's scope unit is checked through
systemctl and the cgroup filesystem, and compared with runc's."""

import os
import subprocess
from pathlib import Path

import pytest

from conftest import assert_nothing_left, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

HAVE_SYSTEMD = os.path.isdir("/run/systemd/system")
needs_systemd = pytest.mark.skipif(not HAVE_SYSTEMD, reason="systemd is not PID 1 here (runs in tests/vm)")
V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")

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
    cg = unit_props(unit, "ControlGroup").get("ControlGroup", "")
    assert cg.startswith("/"), f"no cgroup for {unit}: {systemctl('status', unit).stdout}"
    return Path("/sys/fs/cgroup" + cg)


def knob(d, name):
    return (d / name).read_text().strip()


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
        props = unit_props(unit, "ActiveState", "Delegate", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec", "Slice")
        assert props["ActiveState"] == "active", props
        assert props["Delegate"] == "yes", props
        assert props["MemoryMax"] == "67108864", props
        assert props["TasksMax"] == "50", props
        assert props["CPUQuotaPerSecUSec"] == "500ms", props
        assert props["Slice"] == slice_dir.split("/")[-1], props

        d = scope_cgroup(unit)
        assert str(d) == f"/sys/fs/cgroup/{slice_dir}/{unit}", d
        if V2:
            assert knob(d, "memory.max") == "67108864"
            assert knob(d, "pids.max") == "50"
            assert knob(d, "cpu.max") == "50000 100000"
            assert knob(d, "cpu.weight") == "20"  # shares 512, runc's conversion
        pid = sd_ocirun.state(cid)["pid"]
        # Only the container's init is in the scope (nothing of the runtime).
        procs = wait_for(lambda: knob(d, "cgroup.procs").split() == [str(pid)], timeout=5)
        assert procs, f"cgroup.procs: {knob(d, 'cgroup.procs')} (init {pid})"
        assert Path(f"/proc/{pid}/cgroup").read_text().strip().endswith(f"/{unit}")

        # exec joins the same scope
        r = sd_ocirun("exec", cid, "cat", "/proc/self/cgroup")
        assert r.out.strip() in ("0::/", f"0::/{slice_dir}/{unit}"), r
        ps = sd_ocirun("ps", "--format", "json", cid).out
        assert ps.strip() == f"[{pid}]", ps
        sd_ocirun("kill", cid, "KILL")
        wait_for(lambda: sd_ocirun.state(cid)["status"] == "stopped")
    finally:
        sd_ocirun("delete", "--force", cid, check=False)
    assert wait_for(lambda: unit_gone(unit), timeout=10), systemctl("status", unit).stdout
    assert not d.exists(), f"{d} left behind"
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
    knobs = "memory.max pids.max cpu.max cpu.weight" if V2 else "memory/memory.limit_in_bytes pids/pids.max"
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
        props = unit_props(unit, "MemoryMax", "TasksMax")
        # The unit itself, not only the files: a daemon-reload keeps them.
        assert props == {"MemoryMax": str(32 << 20), "TasksMax": "20"}, props
        systemctl("daemon-reload")
        d = scope_cgroup(unit)
        if V2:
            assert knob(d, "memory.max") == str(32 << 20)
            assert knob(d, "pids.max") == "20"
    finally:
        sd_ocirun("delete", "--force", cid, check=False)
    assert wait_for(lambda: unit_gone(unit), timeout=10)
