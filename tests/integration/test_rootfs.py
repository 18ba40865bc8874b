"""The container's filesystem: config mounts and their options, /dev, masked
and read-only paths, the read-only root, pivot_root and --no-pivot, and
symlinks in the rootfs that try to send a mount to the host. runc is the
reference where both can run the same bundle."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUSYBOX

MOUNTINFO = "cat /proc/self/mountinfo"


def mounts(out):
    """mountinfo text -> {mountpoint: (per-mount options, fstype, super options)}."""
    res = {}
    for line in out.splitlines():
        f = line.split()
        if "-" not in f[6:]:
            continue
        sep = f.index("-", 6)
        res[f[4]] = (f[5], f[sep + 1], f[sep + 3])
    return res


def normalized_mountinfo(out, cid):
    """mountinfo without ids/device numbers, container id made generic."""
    rows = []
    for line in out.splitlines():
        f = line.split()
        sep = f.index("-")
        root = f[3].replace(cid, "CID")
        rows.append(" ".join([root, f[4], f[5]] + f[6:sep] + f[sep + 1 :]))
    return rows


def own_rootfs(tmp_path):
    """A private busybox rootfs the test may fill with hostile entries."""
    r = tmp_path / "own-rootfs"
    (r / "bin").mkdir(parents=True)
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (r / d).mkdir()
    shutil.copy2(BUSYBOX, r / "bin" / "busybox")
    for a in ("sh", "cat", "ls", "stat", "mkdir", "touch", "echo", "grep", "readlink", "test", "id"):
        (r / "bin" / a).symlink_to("busybox")
    return r


def run_ok(rt, bundle, cid):
    r = rt.run(bundle, cid)
    assert r.rc == 0, r
    return r


def test_default_mounts_match_runc(ocirun, runc, bundle, cid):
    bundle.sh(MOUNTINFO).write()
    a = run_ok(ocirun, bundle, cid)
    b = run_ok(runc, bundle, cid)
    ours = normalized_mountinfo(a.out, cid)
    theirs = normalized_mountinfo(b.out, cid)
    # The one deliberate difference: on a hybrid host the cgroup2 hierarchy
    # (/sys/fs/cgroup/unified) is mounted too (runc 1.1.5 leaves it out).
    unified = [l for l in ours if " /sys/fs/cgroup/unified " in l]
    assert len(unified) == (1 if os.path.ismount("/sys/fs/cgroup/unified") else 0)
    assert [l for l in ours if l not in unified] == theirs


def test_default_mount_flags(ocirun, bundle, cid):
    bundle.sh(MOUNTINFO).write()
    m = mounts(run_ok(ocirun, bundle, cid).out)
    assert m["/"][0].startswith("ro,")
    assert m["/proc"][1] == "proc"
    assert m["/dev"] == ("rw,nosuid", "tmpfs", "rw,size=65536k,mode=755")
    assert m["/dev/pts"][1] == "devpts" and "gid=5" in m["/dev/pts"][2] and "ptmxmode=666" in m["/dev/pts"][2]
    assert m["/dev/shm"][0].startswith("rw,nosuid,nodev,noexec")
    assert m["/dev/mqueue"][1] == "mqueue"
    assert m["/sys"][0].startswith("ro,nosuid,nodev,noexec") and m["/sys"][1] == "sysfs"
    assert m["/sys/fs/cgroup"][1] == "tmpfs"
    assert m["/sys/fs/cgroup/memory"][0].startswith("ro,nosuid,nodev,noexec")
    assert m["/sys/fs/cgroup/memory"][1] == "cgroup"
    assert m["/proc/sys"][0].startswith("ro,")
    assert m["/proc/acpi"][:2] == ("ro,relatime", "tmpfs")


def test_dev_matches_runc(ocirun, runc, bundle, cid):
    script = "cd /dev && for f in *; do stat -c '%n %F %t:%T %a %u:%g' $f; done; for l in ptmx fd stdin stdout stderr; do readlink $l; done"
    bundle.sh(script).write()
    a = run_ok(ocirun, bundle, cid)
    b = run_ok(runc, bundle, cid)
    assert a.out == b.out
    assert "null character special file 1:3 666 0:0" in a.out
    assert "tty character special file 5:0 666 0:0" in a.out
    assert a.out.splitlines()[-5:] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"]


def test_linux_devices(ocirun, runc, bundle, cid):
    bundle.linux["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000, "gid": 1000},
        {"path": "/dev/deep/er/zero", "type": "c", "major": 1, "minor": 5},
        {"path": "/dev/fifo", "type": "p"},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 7, "fileMode": 0o640},
    ]
    bundle.sh("for f in /dev/mynull /dev/deep/er/zero /dev/fifo /dev/null; do stat -c '%n %F %t:%T %a %u:%g' $f; done")
    bundle.write()
    a = run_ok(ocirun, bundle, cid)
    assert a.out.splitlines() == [
        "/dev/mynull character special file 1:3 600 1000:1000",
        "/dev/deep/er/zero character special file 1:5 666 0:0",
        "/dev/fifo fifo 0:0 666 0:0",
        "/dev/null character special file 1:7 640 0:0",
    ]
    assert a.out == run_ok(runc, bundle, cid).out


def test_dev_bind_from_host_is_left_alone(ocirun, bundle, cid):
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if not m["destination"].startswith("/dev")]
    bundle.config["mounts"].append({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]})
    bundle.sh("stat -c '%F' /dev/ptmx; test -e /dev/fd && echo fd || echo nofd").write()
    a = run_ok(ocirun, bundle, cid)
    # No ptmx -> pts/ptmx symlink and no /dev/fd link made in the host's /dev.
    assert a.out.split("\n")[0] == "character special file"
    assert not os.path.islink("/dev/ptmx")


def test_masked_and_readonly_paths(ocirun, bundle, cid):
    bundle.config["root"]["readonly"] = False
    bundle.config["mounts"].append({"destination": "/var", "type": "tmpfs", "source": "tmpfs"})
    bundle.linux["maskedPaths"] = ["/proc/timer_list", "/proc/acpi", "/etc/passwd", "/not/there"]
    bundle.linux["readonlyPaths"] = ["/proc/sys", "/var", "/nope"]
    bundle.sh(
        "cat /proc/timer_list | wc -c; ls -A /proc/acpi | wc -l; cat /etc/passwd | wc -c;"
        "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo wrote || echo refused;"
        "touch /var/f 2>/dev/null && echo wrote || echo refused;"
        "stat -c '%t:%T' /proc/timer_list"
    ).write()
    a = run_ok(ocirun, bundle, cid)
    assert a.out.split() == ["0", "0", "0", "refused", "refused", "1:3"]


def test_readonly_root(ocirun, bundle, cid):
    bundle.sh("touch /newfile 2>&1; echo rc=$?").write()
    a = run_ok(ocirun, bundle, cid)
    assert "Read-only file system" in a.out and "rc=1" in a.out
    bundle.config["root"]["readonly"] = False
    bundle.config["root"]["path"] = str(own_rootfs(bundle.path))
    bundle.sh("touch /newfile && echo ok").write()
    assert run_ok(ocirun, bundle, cid).out == "ok\n"


def test_bind_mounts_and_options(ocirun, runc, bundle, cid, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("content\n")
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("one file\n")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro", "nosuid", "nodev"]},
        {"destination": "/rw", "type": "none", "source": str(src), "options": ["bind", "noexec"]},
        {"destination": "/etc/one/file", "type": "bind", "source": str(hostfile), "options": ["bind", "ro"]},
    ]
    bundle.sh(
        MOUNTINFO + "; echo ---; cat /data/file /etc/one/file; touch /data/x 2>/dev/null || echo refused;"
        "touch /rw/made && echo made"
    ).write()
    a = run_ok(ocirun, bundle, cid)
    info, rest = a.out.split("---\n")
    m = mounts(info)
    assert m["/data"][0].startswith("ro,nosuid,nodev")
    assert m["/rw"][0].startswith("rw,noexec")
    assert m["/etc/one/file"][0].startswith("ro,")
    assert rest == "content\none file\nrefused\nmade\n"
    assert (src / "made").exists()
    (src / "made").unlink()
    b = run_ok(runc, bundle, cid)
    assert b.out.split("---\n")[1] == rest
    (src / "made").unlink()


def test_recursive_mount_attributes(ocirun, bundle, cid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    bundle.config["mounts"] += [
        {"destination": "/sys2", "type": "bind", "source": "/sys", "options": ["rbind", "rro", "rnosuid"]},
        {"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "rro", "rnoatime"]},
    ]
    bundle.sh(MOUNTINFO).write()
    m = mounts(run_ok(ocirun, bundle, cid).out)
    assert m["/sys2"][0].startswith("ro,nosuid")
    # Every submount of the recursive bind got the attributes too.
    subs = {k: v for k, v in m.items() if k.startswith("/sys2/")}
    assert subs and all(v[0].startswith("ro,nosuid") for v in subs.values())
    assert m["/data"][0].startswith("ro,") and "noatime" in m["/data"][0]


def test_tmpfs_options(ocirun, bundle, cid):
    bundle.config["mounts"].append(
        {"destination": "/run/x", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=700", "size=1m"]}
    )
    bundle.sh(MOUNTINFO + "; stat -c %a /run/x").write()
    a = run_ok(ocirun, bundle, cid)
    m = mounts(a.out)
    assert m["/run/x"] == ("rw,nosuid,relatime", "tmpfs", "rw,size=1024k,mode=700")
    assert a.out.splitlines()[-1] == "700"
    # Run again, now over the directory the first run made: mode= still wins
    # (runc 1.1.5 chmods to the old directory's mode; fixed in runc 1.1.8).
    assert run_ok(ocirun, bundle, cid).out.splitlines()[-1] == "700"


def test_tmpfs_keeps_mode_of_existing_dir(ocirun, runc, bundle, cid):
    # /tmp is 1777 in the rootfs: the tmpfs over it keeps that mode.
    bundle.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    bundle.sh("stat -c %a /tmp").write()
    assert run_ok(ocirun, bundle, cid).out == "1777\n"
    assert run_ok(runc, bundle, cid).out == "1777\n"


def test_tmpcopyup(ocirun, runc, bundle, cid):
    bundle.config["mounts"].append(
        {"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}
    )
    bundle.sh("grep -c . /etc/passwd; touch /etc/new && echo writable; grep ' /etc ' /proc/self/mountinfo | wc -l").write()
    a = run_ok(ocirun, bundle, cid)
    assert a.out.split() == ["3", "writable", "1"]
    assert a.out == run_ok(runc, bundle, cid).out


def test_propagation_options(ocirun, bundle, cid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    bundle.config["mounts"] += [
        {"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]},
        {"destination": "/unbind", "type": "bind", "source": str(src), "options": ["rbind", "runbindable"]},
    ]
    bundle.sh(MOUNTINFO).write()
    out = run_ok(ocirun, bundle, cid).out
    shared = [l for l in out.splitlines() if l.split()[4] == "/shared"][0]
    unbind = [l for l in out.splitlines() if l.split()[4] == "/unbind"][0]
    assert re.search(r" shared:\d+ ", shared)
    assert " unbindable " in unbind


@pytest.mark.parametrize("prop", ["private", "rslave", "rshared"])
def test_rootfs_propagation(ocirun, runc, bundle, cid, prop):
    bundle.linux["rootfsPropagation"] = prop
    bundle.sh("grep ' / / ' /proc/self/mountinfo").write()
    a = ocirun.run(bundle, cid)
    b = runc.run(bundle, cid)
    assert a.rc == b.rc, (a, b)
    if a.rc == 0:
        fields = lambda out: [f.split(":")[0] for f in out.split()[6 : out.split().index("-")]]
        assert fields(a.out) == fields(b.out)


def test_no_pivot(ocirun, bundle, cid):
    bundle.sh(MOUNTINFO + "; echo ---; ls /; pwd").write()
    r = ocirun.run(bundle, cid, "--no-pivot")
    assert r.rc == 0, r
    info, rest = r.out.split("---\n")
    m = mounts(info)
    assert m["/"][0].startswith("ro,")
    assert "busybox" not in rest and "bin" in rest.split()
    assert rest.split()[-1] == "/"


def test_symlinks_in_rootfs_stay_inside(ocirun, bundle, cid, tmp_path):
    root = own_rootfs(tmp_path)
    target = tmp_path / "host-target"
    target.mkdir()
    (root / "abs").symlink_to(str(target))
    (root / "rel").symlink_to("../../../../../../../../" + str(target).lstrip("/"))
    (root / "loop").symlink_to("loop")
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("x")
    bundle.config["root"]["path"] = str(root)
    bundle.config["mounts"] += [
        {"destination": "/abs/m1", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/rel/m2", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/abs/f", "type": "bind", "source": str(hostfile), "options": ["bind"]},
    ]
    bundle.sh("grep -c tmpfs /proc/self/mountinfo; cat /abs/f").write()
    before = target.stat().st_dev
    r = run_ok(ocirun, bundle, cid)
    assert r.out.split()[-1] == "x"
    # Everything was made inside the rootfs, nothing in the host directory.
    assert list(target.iterdir()) == []
    inside = root / str(target).lstrip("/")
    assert sorted(p.name for p in inside.iterdir()) == ["f", "m1", "m2"]
    assert target.stat().st_dev == before

    bundle.config["mounts"].append({"destination": "/loop/x", "type": "tmpfs", "source": "tmpfs"})
    bundle.write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "/loop/x" in r.err and "Too many levels of symbolic links" in r.err


def test_mount_errors_name_the_mount(ocirun, bundle, cid):
    bundle.config["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "weird"})
    bundle.set_args("true").write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "mount `weird` on `/x`: No such device" in r.err

    bundle.config["mounts"][-1] = {"destination": "/proc/foo", "type": "bind", "source": "/tmp", "options": ["bind"]}
    bundle.write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0 and "cannot be mounted because it is inside /proc" in r.err

    bundle.config["mounts"][-1] = {"destination": "/y", "type": "bind", "source": "/does/not/exist"}
    bundle.write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0 and "/does/not/exist" in r.err and "No such file or directory" in r.err


def test_user_namespace(ocirun, runc, bundle, cid):
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    bundle.sh(
        "cat /proc/self/uid_map; stat -c '%n %F %t:%T' /dev/null /dev/tty; "
        "grep -E ' /(sys|proc/sys|dev) ' /proc/self/mountinfo | cut -d' ' -f5,6,9"
    ).write()
    a = run_ok(ocirun, bundle, cid)
    assert "/dev/null character special file 1:3" in a.out
    assert "/sys ro,nosuid,nodev,noexec,relatime sysfs" in a.out
    assert a.out == run_ok(runc, bundle, cid).out


def test_idmapped_bind_mount(ocirun, bundle, cid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    bundle.config["mounts"].append(
        {
            "destination": "/idm",
            "type": "bind",
            "source": str(src),
            "options": ["rbind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 10}],
        }
    )
    bundle.sh("stat -c '%u:%g' /idm/f").write()
    assert run_ok(ocirun, bundle, cid).out == "1000:2000\n"


def test_console_is_the_pty(ocirun, bundle, cid):
    bundle.process["terminal"] = True
    bundle.sh("stat -c '%F %t' /dev/console; tty; grep ' /dev/console ' /proc/self/mountinfo | cut -d' ' -f4,5").write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 0, r
    lines = r.out.replace("\r", "").splitlines()
    assert lines[0] == "character special file 88"  # 136 = pty slave major, hex
    # The pty comes from the container's own devpts instance, as with runc:
    # the slave is /dev/pts/0 inside, and that node is bound on /dev/console.
    assert lines[1] == "/dev/pts/0"
    assert lines[2] == "/0 /dev/console"


def test_proc_on_symlink_is_refused(ocirun, bundle, cid, tmp_path):
    root = own_rootfs(tmp_path)
    (root / "proc").rmdir()
    (root / "proc").symlink_to("/tmp")
    bundle.config["root"]["path"] = str(root)
    bundle.set_args("true").write()
    r = ocirun.run(bundle, cid)
    assert r.rc != 0
    assert "must be mounted on an ordinary directory" in r.err


@pytest.mark.parametrize("idmap,want", [(True, "0:0"), (False, "65534:65534")])
def test_idmapped_bind_mount_in_user_namespace(ocirun, bundle, cid, tmp_path, idmap, want):
    """In a user namespace the init cannot make an idmapped mount itself (no
    rights over the source filesystem): the runtime makes the tree on the
    host side. A host-root file then shows as the container's root."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    os.chmod(tmp_path, 0o755)
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.config["mounts"].append({"destination": "/idm", "type": "bind", "source": str(src),
                                    "options": ["rbind"] + (["idmap"] if idmap else [])})
    bundle.sh("stat -c '%u:%g' /idm/f").write()
    assert run_ok(ocirun, bundle, cid).out == want + "\n"
