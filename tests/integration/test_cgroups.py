"""cgroups: resource settings as the host sees them (compared with runc on
the same bundle), `update`, `pause`/`resume`, `events` (stats and OOM),
`kill --all` with forked children, and `exec --cgroup`."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import wait_for

MiB = 1024 * 1024


def _v1_mounts():
    """controller -> mount point of its v1 hierarchy."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields, post = pre.split(), post.split()
            if post and post[0] == "cgroup":
                for opt in post[2].split(","):
                    out.setdefault(opt, fields[4])
    return out


def _unified_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[:1] == ["cgroup2"]:
                return pre.split()[4]
    return None


V1 = _v1_mounts()
V2_ONLY = not V1 and _unified_mount() == "/sys/fs/cgroup"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def cgdir(pid, controller):
    """The host directory of pid's cgroup for a controller."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if V2_ONLY and ctrls == "":
            return Path("/sys/fs/cgroup" + path)
        if controller in ctrls.split(","):
            return Path(V1[controller] + path)
    raise AssertionError(f"no {controller} cgroup for {pid}")


def knob(pid, controller, name):
    return (cgdir(pid, controller) / name).read_text().strip()


def start(rt, bundle, cid, *args):
    bundle.set_args(*(args or ("sleep", "1000"))).write()
    rt("run", "-d", "--bundle", bundle.path, cid)
    return rt.state(cid)["pid"]


def limits(bundle):
    res = bundle.linux.setdefault("resources", {})
    res["memory"] = {"limit": 64 * MiB, "reservation": 32 * MiB}
    res["cpu"] = {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}
    res["pids"] = {"limit": 100}
    return bundle


def settings(pid):
    if V2_ONLY:
        return {
            "memory": knob(pid, "memory", "memory.max"),
            "reservation": knob(pid, "memory", "memory.low"),
            "cpu.max": knob(pid, "cpu", "cpu.max"),
            "weight": knob(pid, "cpu", "cpu.weight"),
            "pids": knob(pid, "pids", "pids.max"),
            "cpus": knob(pid, "cpuset", "cpuset.cpus"),
        }
    return {
        "memory": knob(pid, "memory", "memory.limit_in_bytes"),
        "reservation": knob(pid, "memory", "memory.soft_limit_in_bytes"),
        "quota": knob(pid, "cpu", "cpu.cfs_quota_us"),
        "period": knob(pid, "cpu", "cpu.cfs_period_us"),
        "shares": knob(pid, "cpu", "cpu.shares"),
        "pids": knob(pid, "pids", "pids.max"),
        "cpus": knob(pid, "cpuset", "cpuset.cpus"),
        "mems": knob(pid, "cpuset", "cpuset.mems"),
        "devices": sorted(knob(pid, "devices", "devices.list").splitlines()),
    }


def test_resources_match_runc(ocirun, runc, bundle, cid):
    limits(bundle)
    got = settings(start(ocirun, bundle, cid))
    want = settings(start(runc, bundle, cid))
    assert got == want
    if not V2_ONLY:
        assert got["memory"] == str(64 * MiB)
        assert got["shares"] == "512" and got["quota"] == "50000" and got["pids"] == "100"
        assert "c 1:3 rwm" in got["devices"] and "a *:* rwm" not in got["devices"]


@pytest.mark.skipif(V2_ONLY, reason="v1 layout of the container's /sys/fs/cgroup")
def test_limits_seen_inside(ocirun, bundle, cid):
    limits(bundle)
    bundle.sh("cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes").write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 0, r
    assert r.out.split() == ["100", str(64 * MiB)]


def test_update_flags_and_stored_config(ocirun, bundle, cid):
    limits(bundle)
    pid = start(ocirun, bundle, cid)
    ocirun("update", "--memory", "32m", "--memory-reservation", "16M", "--cpu-share", "256",
           "--cpu-quota", "20000", "--pids-limit", "50", cid)
    s = settings(pid)
    if not V2_ONLY:
        assert (s["memory"], s["reservation"], s["shares"], s["quota"], s["pids"]) == (
            str(32 * MiB), str(16 * MiB), "256", "20000", "50")
    # A later update of one setting keeps the others, in the cgroup and in
    # the stored config that a new command reads.
    ocirun("update", "--pids-limit", "60", cid)
    assert knob(pid, "pids", "pids.max") == "60"
    cfg = json.loads((Path(ocirun.root) / cid / "config.json").read_text())
    res = cfg["linux"]["resources"]
    assert res["memory"]["limit"] == 32 * MiB and res["memory"]["reservation"] == 16 * MiB
    assert res["cpu"]["shares"] == 256 and res["cpu"]["quota"] == 20000 and res["pids"]["limit"] == 60
    # -1 lifts the pids limit.
    ocirun("update", "--pids-limit", "-1", cid)
    assert knob(pid, "pids", "pids.max") == "max"
    assert ocirun.state(cid)["status"] == "running"
    # Commands that read the stored config still work with the new one.
    assert ocirun("exec", cid, "true").rc == 0
    assert json.loads((Path(ocirun.root) / cid / "config.json").read_text())["linux"]["resources"]["pids"] == {
        "limit": -1}


def test_update_resources_file(ocirun, runc, bundle, cid, tmp_path):
    limits(bundle)
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"memory": {"limit": 48 * MiB}, "pids": {"limit": 40}}))
    pids = {}
    for rt in (ocirun, runc):
        pid = start(rt, bundle, cid)
        # runc: with --resources the other flags are ignored.
        rt("update", "--resources", f, "--pids-limit", "70", cid)
        pids[rt.name] = (knob(pid, "pids", "pids.max"), knob(pid, "memory", "memory.max" if V2_ONLY
                                                             else "memory.limit_in_bytes"))
        rt("update", "-r", "-", cid, input=json.dumps({"pids": {"limit": 30}}))
        assert knob(pid, "pids", "pids.max") == "30"
    assert pids["ocirun"] == pids["runc"] == ("40", str(48 * MiB))


def test_update_device_rules_from_inside(ocirun, bundle, cid, tmp_path):
    """`update --resources` with device rules changes what the running
    container may open: v1 devices.list here, the eBPF program on v2 (the
    VM runs this too). /dev/kmsg (c 1:11) is in the container but only
    allowed by the rules of the moment (opened write-only: reading it needs
    CAP_SYSLOG); /dev/null stays usable throughout."""
    kmsg = {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}
    bundle.linux.setdefault("devices", []).append(
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644, "uid": 0, "gid": 0})
    res = bundle.linux.setdefault("resources", {})
    res["devices"] = [{"allow": False, "access": "rwm"}, kmsg]
    start(ocirun, bundle, cid)
    probe = "true >/dev/kmsg && echo kmsg=ok; true </dev/null && echo null=ok"

    def probe_out():
        r = ocirun("exec", cid, "sh", "-c", probe, check=False)
        return r.out.split(), r.err

    assert probe_out()[0] == ["kmsg=ok", "null=ok"]
    f = tmp_path / "deny.json"
    f.write_text(json.dumps({"devices": [{"allow": False, "access": "rwm"}]}))
    ocirun("update", "--resources", f, cid)
    out, err = probe_out()
    assert out == ["null=ok"] and "Operation not permitted" in err, (out, err)
    f.write_text(json.dumps({"devices": [{"allow": False, "access": "rwm"}, kmsg]}))
    ocirun("update", "--resources", f, cid)
    assert probe_out()[0] == ["kmsg=ok", "null=ok"]


def test_update_keeps_linux_devices_replacing_defaults(ocirun, bundle, cid, tmp_path):
    """A linux.devices entry at /dev/zero takes the place of runc's default
    rule for it (create); an update with device rules must not bring that
    default back."""
    bundle.linux.setdefault("devices", []).append(
        {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666, "uid": 0, "gid": 0})
    bundle.linux.setdefault("resources", {})["devices"] = [{"allow": False, "access": "rwm"}]
    start(ocirun, bundle, cid)
    probe = "head -c1 /dev/zero >/dev/null && echo zero=ok; true </dev/null && echo null=ok"
    r = ocirun("exec", cid, "sh", "-c", probe, check=False)
    assert r.out.split() == ["null=ok"] and "Operation not permitted" in r.err, r
    f = tmp_path / "deny.json"
    f.write_text(json.dumps({"devices": [{"allow": False, "access": "rwm"}]}))
    ocirun("update", "--resources", f, cid)
    r = ocirun("exec", cid, "sh", "-c", probe, check=False)
    assert r.out.split() == ["null=ok"] and "Operation not permitted" in r.err, r


@pytest.mark.parametrize("args", [
    ["--memory", "abc"],
    ["--cpu-share", "xyz"],
    ["--cpu-quota", "1.5"],
    ["--pids-limit", "x"],
    ["--l3-cache-schema", "L3:0=f"],
])
def test_update_errors_match_runc(ocirun, runc, bundle, cid, args):
    msgs = {}
    for rt in (ocirun, runc):
        start(rt, bundle, cid)
        r = rt("update", *args, cid, check=False)
        assert r.rc != 0
        msgs[rt.name] = r.err.replace("\\\"", "\"")
    assert msgs["ocirun"].strip().splitlines()[-1].removeprefix("ocirun: ") in msgs["runc"]


def test_update_stopped_container(ocirun, bundle, cid):
    bundle.set_args("true").write()
    ocirun("create", "--bundle", bundle.path, cid)
    ocirun("start", cid)
    assert wait_for(lambda: ocirun.state(cid)["status"] == "stopped")
    r = ocirun("update", "--pids-limit", "5", cid, check=False)
    assert r.rc == 1 and "container not running" in r.err


def _frozen(pid):
    if V2_ONLY:
        return "frozen 1" in (cgdir(pid, "") / "cgroup.events").read_text()
    return knob(pid, "freezer", "freezer.state") == "FROZEN"


def test_pause_resume(ocirun, runc, bundle, cid):
    pid = start(ocirun, bundle, cid, "sh", "-c", "sleep 1000 & sleep 1000")
    ocirun("pause", cid)
    assert ocirun.state(cid)["status"] == "paused"
    assert _frozen(pid)
    r = ocirun("exec", cid, "true", check=False)
    assert r.rc != 0 and "paused" in r.err
    errs = {"ocirun": [ocirun("pause", cid, check=False)]}
    ocirun("resume", cid)
    assert ocirun.state(cid)["status"] == "running"
    assert not _frozen(pid)
    errs["ocirun"].append(ocirun("resume", cid, check=False))
    assert ocirun("exec", cid, "true").rc == 0

    start(runc, bundle, cid)
    runc("pause", cid)
    errs["runc"] = [runc("pause", cid, check=False)]
    runc("resume", cid)
    errs["runc"].append(runc("resume", cid, check=False))
    for mine, theirs in zip(errs["ocirun"], errs["runc"]):
        assert mine.rc == theirs.rc == 1
        assert mine.err.strip().removeprefix("ocirun: ") in theirs.err


# Fields runc (Go's omitempty) leaves out when zero: present or not by chance.
OMITEMPTY = {"cache", "raw", "total", "percpu", "percpu_kernel", "percpu_user", "usage", "max", "current", "limit"}


def test_pause_created_container(ocirun, runc, bundle, cid):
    bundle.set_args("true").write()
    seen = {}
    for rt in (ocirun, runc):
        rt("create", "--bundle", bundle.path, cid)
        rt("pause", cid)
        paused = rt.state(cid)["status"]
        start = rt("start", cid, check=False)
        rt("resume", cid)
        seen[rt.name] = (paused, start.rc, start.err.strip().splitlines()[-1].split("msg=")[-1].strip('"').removeprefix("ocirun: "),
                         rt.state(cid)["status"])
        rt("delete", "--force", cid)
    assert seen["ocirun"] == seen["runc"] == ("paused", 1, "cannot start a container in the paused state", "created")


def _keys(d):
    return sorted(k for k in d.keys() if k not in OMITEMPTY) if isinstance(d, dict) else d


def test_events_stats_shape(ocirun, runc, bundle, cid):
    limits(bundle)
    start(ocirun, bundle, cid)
    r = ocirun("events", "--stats", cid)
    assert r.out.count("\n") == 1
    mine = json.loads(r.out)
    start(runc, bundle, cid)
    theirs = json.loads(runc("events", "--stats", cid).out)
    assert mine["type"] == "stats" and mine["id"] == cid
    assert _keys(mine) == _keys(theirs)
    assert _keys(mine["data"]) == _keys(theirs["data"])
    for k in ("cpu", "cpuset", "pids"):
        assert _keys(mine["data"][k]) == _keys(theirs["data"][k]), k
    assert _keys(mine["data"]["memory"]) == _keys(theirs["data"]["memory"])
    assert _keys(mine["data"]["memory"]["usage"]) == _keys(theirs["data"]["memory"]["usage"])
    assert _keys(mine["data"]["cpu"]["usage"]) == _keys(theirs["data"]["cpu"]["usage"])
    # What containerd's shim reads.
    d = mine["data"]
    assert d["cpu"]["usage"]["total"] > 0
    assert d["memory"]["usage"]["usage"] > 0 and d["memory"]["usage"]["limit"] == 64 * MiB
    assert d["pids"] == {"current": 1, "limit": 100}
    assert d["network_interfaces"] is None and d["intel_rdt"] == {}


def test_events_stopped_container(ocirun, bundle, cid):
    bundle.set_args("true").write()
    ocirun("create", "--bundle", bundle.path, cid)
    ocirun("start", cid)
    assert wait_for(lambda: ocirun.state(cid)["status"] == "stopped")
    r = ocirun("events", "--stats", cid, check=False)
    assert r.rc == 1 and f"container with id {cid} is not running" in r.err


def test_events_stream_oom_and_exit(ocirun, bundle, cid, tmp_path):
    bundle.linux["resources"] = {"memory": {"limit": 16 * MiB, "swap": 16 * MiB}}
    bundle.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    # tail buffers its whole input (no newline in /dev/zero): the OOM
    # killer takes it; the container goes on until told to stop.
    start(ocirun, bundle, cid, "sh", "-c",
          "while [ ! -e /tmp/go ]; do sleep 0.1; done; dd if=/dev/zero bs=1M count=64 | tail; sleep 1000")
    out = tmp_path / "events.out"
    with open(out, "w") as f:
        p = ocirun.popen("events", "--interval", "300ms", cid, stdout=f, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: out.read_text().count('"type":"stats"') >= 2, timeout=5)
        assert '"oom"' not in out.read_text()
        ocirun("exec", cid, "touch", "/tmp/go")
        assert wait_for(lambda: '{"type":"oom","id":"%s"}' % cid in out.read_text(), timeout=15), out.read_text()
        ocirun("kill", cid, "KILL")
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    for line in out.read_text().splitlines():
        ev = json.loads(line)
        assert ev["id"] == cid and ev["type"] in ("stats", "oom")


def _procs(pid):
    return (cgdir(pid, "pids") / "cgroup.procs").read_text().split()


@pytest.mark.parametrize("how", ["kill", "delete", "kill-paused", "delete-paused"])
def test_kill_all_forked_children(ocirun, bundle, cid, how):
    # Children, a grandchild re-parented to init, and a child that forks.
    pid = start(ocirun, bundle, cid, "sh", "-c",
                "sleep 1000 & (sleep 1000 &) ; sh -c 'sleep 1000 & sleep 1000' & sleep 1000")
    assert wait_for(lambda: len(_procs(pid)) >= 5), _procs(pid)
    d = cgdir(pid, "pids")
    procs = [int(p) for p in _procs(pid)]
    if how.endswith("-paused"):
        ocirun("pause", cid)
        how = how.removesuffix("-paused")
    if how == "kill":
        ocirun("kill", "--all", cid, "KILL")
        assert wait_for(lambda: (d / "cgroup.procs").read_text().strip() == "")
        assert wait_for(lambda: ocirun.state(cid)["status"] == "stopped")
        ocirun("delete", cid)
    else:
        ocirun("delete", "--force", cid)
        assert not d.exists()
    for p in procs:
        assert wait_for(lambda: not Path(f"/proc/{p}").exists() or
                        Path(f"/proc/{p}/stat").read_text().split()[2] == "Z")


@pytest.mark.skipif(V2_ONLY, reason="v1 controller:path form")
def test_exec_cgroup(ocirun, bundle, cid):
    pid = start(ocirun, bundle, cid)
    sub = cgdir(pid, "pids") / "sub"
    sub.mkdir()
    r = ocirun("exec", "--cgroup", "pids:sub", cid, "cat", "/proc/self/cgroup")
    mine = [l for l in r.out.splitlines() if ":pids:" in l]
    assert mine and mine[0].endswith("/sub"), r.out
    # the other hierarchies stay at the container's cgroup
    mem = [l for l in r.out.splitlines() if ":memory:" in l]
    assert mem and not mem[0].endswith("/sub")
    r = ocirun("exec", "--cgroup", "sub", cid, "cat", "/proc/self/cgroup", check=False)
    assert r.rc != 0 and "sub-cgroup must exist" in r.err
    r = ocirun("exec", "--cgroup", "nosuch:sub", cid, "true", check=False)
    assert r.rc != 0 and "nosuch:sub" in r.err


@pytest.mark.parametrize("interval,msg", [
    ("0s", "duration interval must be greater than 0"),
    ("-1s", "duration interval must be greater than 0"),
    ("abc", 'invalid value "abc" for flag -interval: parse error'),
])
def test_events_bad_interval(ocirun, runc, bundle, cid, interval, msg):
    for rt in (ocirun, runc):
        start(rt, bundle, cid)
        r = rt("events", "--interval", interval, cid, check=False, timeout=10)
        assert r.rc != 0 and msg in r.err.replace('\\"', '"'), (rt.name, r)
