"""Namespaces joined by path (the Kubernetes pod shape), user namespaces
joined by path, time namespace offsets, the cgroup namespace, domainname,
linux.netDevices, and no host fd reaching the container."""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import assert_nothing_left, wait_for

USERNS_MAP = [{"containerID": 0, "hostID": 200000, "size": 65536}]


def sandbox(ocirun, bundle_factory, cid, userns=False):
    b = bundle_factory("sandbox")
    if userns:
        b.linux["namespaces"].append({"type": "user"})
        b.linux["uidMappings"] = USERNS_MAP
        b.linux["gidMappings"] = USERNS_MAP
    b.set_args("sleep", "100000").write()
    ocirun("run", "-d", "--bundle", b.path, cid + "-sb")
    return ocirun.state(cid + "-sb")["pid"]


@pytest.fixture
def bundle_factory(tmp_path, rootfs, base_config):
    from conftest import Bundle

    def make(name):
        return Bundle(tmp_path / name, rootfs, base_config)

    return make


def add_link(name, netns=None):
    """A veth pair (this kernel has no dummy driver); returns the peer name."""
    peer = name + "p"
    cmd = ["ip", "link", "add", name, "type", "veth", "peer", "name", peer]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    subprocess.run(cmd, check=True)
    return peer


def test_pod_shares_sandbox_namespaces(ocirun, bundle, cid, bundle_factory):
    """A second container joins the sandbox's pid, net, ipc and uts
    namespaces by path, keeps its own mount namespace, and is still the
    caller's child (CLONE_PARENT) so `run` gets its exit status."""
    sb = sandbox(ocirun, bundle_factory, cid)
    joined = ("pid", "network", "ipc", "uts")
    proc = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt"}
    bundle.linux["namespaces"] = [{"type": t, "path": f"/proc/{sb}/ns/{proc[t]}"} for t in joined] + \
        [{"type": "mount"}]
    bundle.config.pop("hostname", None)
    bundle.sh("for n in pid net ipc uts mnt; do readlink /proc/self/ns/$n; done; ps -o pid,comm | grep -c sleep; "
              "exit 3").write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 3, r
    lines = r.out.split()
    for n, got in zip(("pid", "net", "ipc", "uts"), lines[:4]):
        assert got == os.readlink(f"/proc/{sb}/ns/{n}"), n
    assert lines[4] != os.readlink(f"/proc/{sb}/ns/mnt")
    assert lines[5] == "1", "the sandbox's sleep is not visible in the shared pid namespace"
    ocirun("delete", "--force", cid + "-sb")


def test_join_user_namespace_by_path(ocirun, bundle, cid, bundle_factory):
    sb = sandbox(ocirun, bundle_factory, cid, userns=True)
    bundle.linux["namespaces"] = [{"type": "user", "path": f"/proc/{sb}/ns/user"}, {"type": "pid"},
                                  {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}]
    bundle.linux["uidMappings"] = USERNS_MAP
    bundle.linux["gidMappings"] = USERNS_MAP
    bundle.sh("readlink /proc/self/ns/user; cat /proc/self/uid_map; id -u; echo pid=$$").write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == os.readlink(f"/proc/{sb}/ns/user")
    assert lines[1].split() == ["0", "200000", "65536"]
    assert lines[2] == "0" and lines[3] == "pid=1"
    ocirun("delete", "--force", cid + "-sb")


def test_join_network_namespace_by_path(ocirun, bundle, cid):
    name = "ocirun-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        add_link("marker0", netns=name)
        bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "network"] + \
            [{"type": "network", "path": f"/run/netns/{name}"}]
        bundle.sh("ip -o link show | grep -c ' marker0@'").write()
        r = ocirun.run(bundle, cid)
        assert r.rc == 0, r
        assert r.out.strip() == "1"
    finally:
        subprocess.run(["ip", "netns", "del", name])


def test_bad_namespace_path(ocirun, bundle, cid, tmp_path):
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "network"] + \
        [{"type": "network", "path": str(tmp_path / "missing")}]
    bundle.set_args("true").write()
    r = ocirun("create", "--bundle", bundle.path, cid, check=False)
    assert r.rc == 1 and "missing" in r.err and "network" in r.err
    assert_nothing_left(ocirun, cid)


def test_duplicate_namespace_type(ocirun, bundle, cid):
    bundle.linux["namespaces"].append({"type": "pid"})
    bundle.set_args("true").write()
    r = ocirun("create", "--bundle", bundle.path, cid, check=False)
    assert r.rc == 1 and "pid" in r.err
    assert_nothing_left(ocirun, cid)


def test_time_namespace_offsets(ocirun, bundle, cid):
    bundle.linux["namespaces"].append({"type": "time"})
    bundle.linux["timeOffsets"] = {"monotonic": {"secs": 86400 * 3, "nanosecs": 0},
                                   "boottime": {"secs": 86400 * 5, "nanosecs": 0}}
    bundle.sh("cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime").write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    offsets = {l.split()[0]: int(l.split()[1]) for l in lines[:2]}
    assert offsets == {"monotonic": 86400 * 3, "boottime": 86400 * 5}
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert int(lines[2]) >= 86400 * 5 + int(host_uptime) - 5


def test_cgroup_namespace_root(ocirun, bundle, cid):
    """With a cgroup namespace the container's cgroup is its root in every
    hierarchy (v1 ones included: the namespace is made after the init is
    placed)."""
    bundle.linux["namespaces"].append({"type": "cgroup"})
    bundle.sh("cat /proc/self/cgroup").write()
    r = ocirun.run(bundle, cid)
    assert r.rc == 0, r
    for line in r.out.splitlines():
        assert line.split(":", 2)[2] == "/", line


def test_domainname(ocirun, bundle, cid):
    bundle.config["domainname"] = "example.test"
    bundle.set_args("cat", "/proc/sys/kernel/domainname").write()
    r = ocirun.run(bundle, cid)
    assert r.out.strip() == "example.test", r


def test_net_devices_moved_and_renamed(ocirun, bundle, cid):
    host = "ocid" + uuid.uuid4().hex[:6]
    add_link(host)
    try:
        bundle.linux["netDevices"] = {host: {"name": "ctr5"}}
        bundle.sh("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort").write()
        p = ocirun.popen("run", "--bundle", bundle.path, cid, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert out.split() == ["ctr5", "lo"]
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)


def test_net_devices_return_from_persistent_netns(ocirun, bundle, cid):
    host = "ocid" + uuid.uuid4().hex[:6]
    name = "ocirun-" + uuid.uuid4().hex[:8]
    add_link(host)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "network"] + \
            [{"type": "network", "path": f"/run/netns/{name}"}]
        bundle.linux["netDevices"] = {host: {"name": "inside0"}}
        bundle.set_args("ip", "link", "show", "inside0").write()
        r = ocirun.run(bundle, cid)
        assert r.rc == 0, r
        assert subprocess.run(["ip", "link", "show", host], capture_output=True).returncode == 0, \
            "device not moved back to the host on delete"
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", name])


def test_net_devices_need_a_network_namespace(ocirun, bundle, cid):
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "network"]
    bundle.linux["netDevices"] = {"lo": {}}
    bundle.set_args("true").write()
    r = ocirun("create", "--bundle", bundle.path, cid, check=False)
    assert r.rc == 1 and "netDevices" in r.err
    assert_nothing_left(ocirun, cid)


def test_no_host_fd_reaches_the_container(ocirun, bundle, cid, tmp_path):
    """CVE-2024-21626 class: only stdio (and --preserve-fds) get in, even
    when the caller leaks fds without O_CLOEXEC."""
    bundle.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '; readlink /proc/1/cwd").write()
    leak = os.open("/etc", os.O_RDONLY)  # inheritable on purpose
    try:
        cp = subprocess.run([ocirun.binary, "--root", ocirun.root, "run", "--bundle", str(bundle.path), cid],
                            capture_output=True, text=True, pass_fds=(leak,), timeout=30)
    finally:
        os.close(leak)
    assert cp.returncode == 0, cp.stderr
    fds, cwd = cp.stdout.rsplit(" ", 1) if " /" in cp.stdout else (cp.stdout, "")
    # ls itself opens /proc/self/fd as fd 3.
    assert fds.split() == ["0", "1", "2", "3"], cp.stdout
    assert cp.stdout.strip().endswith("/")


def test_preserve_fds(ocirun, bundle, cid, tmp_path):
    data = tmp_path / "data"
    data.write_text("through fd 3\n")
    bundle.sh("cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '").write()
    # The shell opens fd 3 and execs ocirun with it.
    cp = subprocess.run(["sh", "-c", 'exec 3<"$1"; shift; exec "$@"', "sh", str(data), ocirun.binary,
                         "--root", ocirun.root, "run", "--preserve-fds", "1", "--bundle", str(bundle.path), cid],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert lines[0] == "through fd 3"
    assert lines[1].split() == ["0", "1", "2", "3", "4"]


def test_listen_fds_pass_through(ocirun, bundle, cid, tmp_path):
    """Socket activation: LISTEN_FDS fds for this pid reach the container
    (first), with LISTEN_FDS/LISTEN_PID=1 in its environment."""
    data = tmp_path / "data"
    data.write_text("activated\n")
    bundle.sh('cat <&3; echo "$LISTEN_FDS $LISTEN_PID"; ls /proc/self/fd | sort -n | tr "\\n" " "').write()
    cp = subprocess.run(["sh", "-c", 'exec 3<"$1"; shift; LISTEN_FDS=1 LISTEN_PID=$$ exec "$@"', "sh", str(data),
                         ocirun.binary, "--root", ocirun.root, "run", "--bundle", str(bundle.path), cid],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines()[:2] == ["activated", "1 1"]
    # For another pid the fds are not ours and stay out.
    cp = subprocess.run(["sh", "-c", 'exec 3<"$1"; shift; LISTEN_FDS=1 LISTEN_PID=1 exec "$@"', "sh", str(data),
                         ocirun.binary, "--root", ocirun.root, "run", "--bundle", str(bundle.path), cid],
                        capture_output=True, text=True, timeout=30)
    assert cp.stdout.splitlines() == [" ", "0 1 2 3 "]  # fd 3 is ls's own
