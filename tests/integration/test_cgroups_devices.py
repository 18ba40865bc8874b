"""Device rules on cgroup v1 under `update`: only the difference between
devices.list and the target is written (runc's emulator), so a container
that keeps opening /dev/null never sees EPERM while its rules change, and
devices.list ends up as runc makes it for the same rules at creation."""

import json
import os
from pathlib import Path

import pytest

from conftest import wait_for

MOUNTS = {}
with open("/proc/self/mountinfo") as _f:
    for _line in _f:
        _pre, _, _post = _line.partition(" - ")
        _post = _post.split()
        if _post and _post[0] == "cgroup" and "devices" in _post[2].split(","):
            MOUNTS["devices"] = _pre.split()[4]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif("devices" not in MOUNTS, reason="no v1 devices hierarchy"),
]

KMSG = {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rwm"}
# What each update asks for (runc's defaults are added to every set).
WHITELIST = [{"allow": False, "access": "rwm"}]
WHITELIST_KMSG = WHITELIST + [KMSG]
WHITELIST_KMSG_R = WHITELIST + [dict(KMSG, access="r")]
BLACKLIST = [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]


def devices_list(pid):
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if "devices" in ctrls.split(","):
            return sorted((Path(MOUNTS["devices"] + path) / "devices.list").read_text().splitlines())
    raise AssertionError(f"no devices cgroup for {pid}")


def opener(bundle, out):
    """A container that opens /dev/null as fast as it can and logs every
    failure to out/fail (a host directory bound in)."""
    out.mkdir()
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                                    "options": ["rbind", "rw"]})
    bundle.sh("exec 2>>/out/fail; touch /out/ready; "
              "while :; do true </dev/null || echo FAIL >>/out/fail; read x </dev/null; done")
    return bundle


def run_updates(rt, cid, tmp_path, sets, rounds):
    for i in range(rounds):
        for n, devs in enumerate(sets):
            f = tmp_path / f"res-{n}.json"
            f.write_text(json.dumps({"devices": devs}))
            rt("update", "--resources", f, cid)


@pytest.mark.parametrize("sets", [
    pytest.param([WHITELIST_KMSG, WHITELIST_KMSG_R, WHITELIST], id="whitelist"),
    pytest.param([BLACKLIST, WHITELIST_KMSG], id="default-changes"),
])
def test_update_never_denies_allowed_devices(ocirun, runc, bundle, cid, tmp_path, sets):
    out = tmp_path / "out"
    opener(bundle, out).write()
    ocirun("run", "-d", "--bundle", bundle.path, cid)
    pid = ocirun.state(cid)["pid"]
    assert wait_for(lambda: (out / "ready").exists())
    before = devices_list(pid)
    run_updates(ocirun, cid, tmp_path, sets, rounds=10)
    assert ocirun.state(cid)["status"] == "running"
    fail = (out / "fail").read_text() if (out / "fail").exists() else ""
    assert fail == "", f"the container was denied /dev/null during update:\n{fail[:2000]}"
    after = devices_list(pid)
    ocirun("delete", "--force", cid)

    # The end state is what runc makes of the same rules at creation.
    bundle.linux["resources"] = {"devices": sets[-1]}
    bundle.set_args("sleep", "1000").write()
    runc("run", "-d", "--bundle", bundle.path, cid)
    want = devices_list(runc.state(cid)["pid"])
    runc("delete", "--force", cid)
    assert after == want, (before, after, want)
    if sets[-1] is WHITELIST_KMSG:
        assert "c 1:11 rwm" in after and "a *:* rwm" not in after


def test_update_to_blacklist_and_back(ocirun, bundle, cid, tmp_path):
    bundle.set_args("sleep", "1000").write()
    ocirun("run", "-d", "--bundle", bundle.path, cid)
    pid = ocirun.state(cid)["pid"]
    created = devices_list(pid)
    run_updates(ocirun, cid, tmp_path, [BLACKLIST], rounds=1)
    assert devices_list(pid) == ["a *:* rwm"], "update did not apply linux.resources.devices"
    run_updates(ocirun, cid, tmp_path, [WHITELIST], rounds=1)
    assert devices_list(pid) == created
    assert ocirun.state(cid)["status"] == "running"
    # An update on a paused container keeps it paused.
    ocirun("pause", cid)
    run_updates(ocirun, cid, tmp_path, [BLACKLIST, WHITELIST_KMSG], rounds=1)
    assert ocirun.state(cid)["status"] == "paused"
    ocirun("resume", cid)
    assert "c 1:11 rwm" in devices_list(pid)


def test_update_rejects_hole_in_wildcard(ocirun, runc, bundle, cid, tmp_path):
    """cgroup v1 cannot deny part of a wildcard rule: runc refuses such a set
    rather than apply something else; so does ocirun, and the rules stay."""
    bad = WHITELIST + [{"allow": True, "type": "c", "access": "rwm"},
                       {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]
    bundle.set_args("sleep", "1000").write()
    ocirun("run", "-d", "--bundle", bundle.path, cid)
    pid = ocirun.state(cid)["pid"]
    before = devices_list(pid)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"devices": bad}))
    r = ocirun("update", "--resources", f, cid, check=False)
    assert r.rc != 0 and "wildcard" in r.err, r
    assert devices_list(pid) == before
    ocirun("delete", "--force", cid)
    bundle.linux["resources"] = {"devices": bad}
    bundle.write()
    r = runc("run", "-d", "--bundle", bundle.path, cid, check=False)
    assert r.rc != 0 and "wildcard" in r.err, r
