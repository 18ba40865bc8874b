"""checkpoint and restore through criu, ocirun next to runc: the restored
process goes on from where it was (a token and a counter it keeps only in
memory), in the cgroup and limits of the bundle, with its stdio pipes handed
to the restorer; checkpoint removes the container (unless --leave-running);
restore without -d waits and returns the exit status; failures name what
went wrong and leave nothing behind. Images restore under the other runtime
(runc's under ocirun and ocirun's under runc).

criu 3.17 does not work on this CI host's kernel (6.18): the module skips
where `criu check` fails, and tests/vm/test_vm_criu.py runs it in the v2
guest (Debian's 6.1 kernel), where nothing may skip."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import _cgroup_dirs_named, assert_nothing_left, wait_for

CRIU = shutil.which("criu") or shutil.which("criu", path="/usr/sbin:/sbin") or "/usr/sbin/criu"


def _criu_problem():
    if not os.path.exists(CRIU):
        return "criu is not installed"
    cp = subprocess.run([CRIU, "check"], capture_output=True, text=True)
    if cp.returncode != 0:
        last = (cp.stderr or cp.stdout).strip().splitlines()[-1:] or ["?"]
        return f"`criu check` fails on this kernel ({last[0]}); tests/vm/test_vm_criu.py runs these in a guest"
    return None


PROBLEM = _criu_problem() if os.geteuid() == 0 else "needs root"
# Set by tests/vm/test_vm_systemd.py: the same tests with the systemd cgroup
# driver (a scope unit per container), in its systemd guest.
SYSTEMD = os.environ.get("OCIRUN_CR_SYSTEMD") == "1"
GLOBAL_ARGS = ["--criu", CRIU] + (["--systemd-cgroup"] if SYSTEMD else [])
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=PROBLEM or "")

# Keeps a token and a counter in memory only, and writes both to a tmpfs
# file and to stdout every 0.1 s: a restored process goes on with the same
# token and a higher count, a restarted one would start again at 1.
LOOP = ('tok=$(cat /proc/sys/kernel/random/uuid); i=0; '
        'while :; do i=$((i+1)); echo "$tok $i" > /run/state; echo "$tok $i"; sleep 0.1; done')
MEMORY_LIMIT = 64 << 20


@pytest.fixture(params=["ocirun", "runc"])
def rt(request):
    r = request.getfixturevalue(request.param)
    r.global_args = GLOBAL_ARGS
    return r


def prepare(bundle, script=LOOP):
    bundle.sh(script)
    if SYSTEMD:
        bundle.linux["cgroupsPath"] = f"system.slice:cr:{bundle.path.parent.name}"
        # criu's dump of a network namespace fails in the systemd guest's
        # Debian userspace, for runc as for ocirun (netlink EINVAL after
        # "Dumping netns links"); the cgroup driver is what is tested there.
        bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "network"]
    bundle.config["mounts"].append({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["nosuid", "nodev", "mode=755"]})
    bundle.linux.setdefault("resources", {})["memory"] = {"limit": MEMORY_LIMIT}
    return bundle.write()


def create(rt, bundle, cid, stdout=subprocess.DEVNULL):
    """create with stdio an engine would give (no host files: criu cannot
    dump a descriptor of a mount outside the container)."""
    cp = subprocess.run([rt.binary, "--root", rt.root, *rt.global_args, "create", "--bundle", str(bundle.path), cid],
                        stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL, timeout=60)
    assert cp.returncode == 0, f"{rt.name} create failed (rc {cp.returncode})"


def create_started(rt, bundle, cid, stdout=subprocess.DEVNULL):
    create(rt, bundle, cid, stdout)
    rt("start", cid)


def read_state(rt, cid):
    """(token, count) the container's process last wrote."""
    out = wait_for(lambda: rt("exec", cid, "cat", "/run/state", check=False).out.strip(), timeout=20)
    tok, n = out.split()
    return tok, int(n)


def cgroup_of_init(rt, cid):
    """The container's cgroup v2 path as its pid 1 sees it."""
    lines = rt("exec", cid, "cat", "/proc/1/cgroup").out.splitlines()
    return next(x.split(":", 2)[2] for x in lines if x.startswith("0::"))


def restore(rt, bundle, cid, image, *extra, stdout=subprocess.DEVNULL, timeout=180):
    cmd = [rt.binary, "--root", rt.root, *rt.global_args, "restore", "--bundle", str(bundle.path),
           "--image-path", str(image), "--work-path", str(image.parent / f"work-{cid}"), *extra, cid]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        r.stderr += criu_errors(image.parent / f"work-{cid}")
    return r


def criu_errors(work):
    """The error lines of criu's logs in work, for a failure message."""
    lines = []
    for log in Path(work).glob("*.log"):
        lines += [f"{log.name}: {x}" for x in log.read_text(errors="replace").splitlines() if "Error" in x]
    return "\n".join(lines[:20])


def checkpoint(rt, cid, image, *extra):
    work = image.parent / f"work-{cid}-dump"
    r = rt("checkpoint", "--image-path", image, "--work-path", work, *extra, cid, timeout=180, check=False)
    assert r.rc == 0, f"{rt.name} checkpoint failed: {r.err}\n{criu_errors(work)}"
    return r


def test_checkpoint_then_restore_goes_on(rt, bundle, cid, tmp_path):
    prepare(bundle)
    create_started(rt, bundle, cid)
    tok, n1 = read_state(rt, cid)
    old_pid = rt.state(cid)["pid"]
    cg = cgroup_of_init(rt, cid)
    image = tmp_path / "image"

    checkpoint(rt, cid, image)
    # The container is gone: state, processes, cgroup.
    assert rt("state", cid, check=False).rc != 0
    assert not Path(f"/proc/{old_pid}").exists() or wait_for(lambda: not Path(f"/proc/{old_pid}").exists())
    assert _cgroup_dirs_named(cid) == [], f"{rt.name}: cgroup left after checkpoint"
    assert (image / "inventory.img").exists()

    r = restore(rt, bundle, cid, image, "--detach")
    assert r.returncode == 0, f"{rt.name} restore: {r.stderr}"
    st = rt.state(cid)
    assert st["status"] == "running"
    tok2, n2 = read_state(rt, cid)
    assert tok2 == tok, f"{rt.name}: a new token: the process was restarted, not restored"
    assert n2 > n1, f"{rt.name}: count {n1} at checkpoint, {n2} after restore"
    # Its pid namespace came back with it: the loop is still pid 1 there.
    assert "i=$((i+1))" in rt("exec", cid, "cat", "/proc/1/cmdline").out.replace("\0", " ")
    # Restored into the bundle's cgroup (the one it had), with its limit.
    assert cgroup_of_init(rt, cid) == cg
    knob = f"/sys/fs/cgroup{cg.rstrip('/')}/memory.max"
    assert rt("exec", cid, "cat", knob).out.strip() == str(MEMORY_LIMIT)
    assert st["pid"] in json.loads(rt("ps", "--format", "json", cid).out)

    rt("kill", cid, "KILL")
    wait_for(lambda: rt.state(cid)["status"] == "stopped")
    rt("delete", cid)
    assert_nothing_left(rt, cid)


def test_stdio_pipe_handed_to_the_restorer(rt, bundle, cid, tmp_path):
    """What an engine does: the container's stdout is a pipe; after restore
    it writes to the restorer's stdout (criu --inherit-fd), not to a pipe
    nobody reads."""
    prepare(bundle)
    r_fd, w_fd = os.pipe()
    with os.fdopen(r_fd, "rb", buffering=0) as first:
        create_started(rt, bundle, cid, stdout=w_fd)
        os.close(w_fd)
        tok, _ = first.readline().decode().split()
        image = tmp_path / "image"
        checkpoint(rt, cid, image)
    r_fd, w_fd = os.pipe()
    with os.fdopen(r_fd, "rb", buffering=0) as second:
        r = restore(rt, bundle, cid, image, "--detach", stdout=w_fd)
        os.close(w_fd)
        assert r.returncode == 0, f"{rt.name} restore: {r.stderr}"
        line = second.readline().decode().split()
        assert line and line[0] == tok, f"{rt.name}: restored process wrote {line!r} to the new pipe"
    rt("delete", "--force", cid)
    assert_nothing_left(rt, cid)


def test_leave_running(rt, bundle, cid, tmp_path):
    prepare(bundle)
    create_started(rt, bundle, cid)
    _, n1 = read_state(rt, cid)
    image = tmp_path / "image"
    checkpoint(rt, cid, image, "--leave-running")
    assert rt.state(cid)["status"] == "running"
    assert wait_for(lambda: read_state(rt, cid)[1] > n1 + 5, timeout=20), "the process stopped counting"
    assert (image / "inventory.img").exists()
    rt("delete", "--force", cid)
    assert_nothing_left(rt, cid)


def test_restore_in_foreground_returns_exit_status(rt, bundle, cid, tmp_path):
    # It exits only once told to, after the restore: no race with criu's speed.
    prepare(bundle, 'i=0; while [ ! -e /run/go ]; do i=$((i+1)); echo "x $i" > /run/state; sleep 0.1; done; exit 7')
    create_started(rt, bundle, cid)
    read_state(rt, cid)
    image = tmp_path / "image"
    checkpoint(rt, cid, image)
    cmd = [rt.binary, "--root", rt.root, *rt.global_args, "restore", "--bundle", str(bundle.path),
           "--image-path", str(image), "--work-path", str(tmp_path / "work"), cid]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: rt("state", cid, check=False).rc == 0 or p.poll() is not None, timeout=120)
        assert p.poll() is None, f"{rt.name} restore (foreground) ended early: rc {p.returncode}: {p.stderr.read()}"
        assert rt.state(cid)["status"] == "running"
        rt("exec", cid, "touch", "/run/go")
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 7, f"{rt.name} restore (foreground): rc {rc}: {p.stderr.read()}"
    assert rt("state", cid, check=False).rc != 0, f"{rt.name}: container kept after a foreground restore"
    assert_nothing_left(rt, cid)


@pytest.mark.parametrize("dumper,restorer", [("runc", "ocirun"), ("ocirun", "runc")])
def test_images_restore_under_the_other_runtime(dumper, restorer, request, bundle, cid, tmp_path):
    d, r = request.getfixturevalue(dumper), request.getfixturevalue(restorer)
    for rt in (d, r):
        rt.global_args = GLOBAL_ARGS
    prepare(bundle)
    create_started(d, bundle, cid)
    tok, n1 = read_state(d, cid)
    image = tmp_path / "image"
    checkpoint(d, cid, image)
    res = restore(r, bundle, cid, image, "--detach")
    assert res.returncode == 0, f"{restorer} restoring {dumper}'s image: {res.stderr}"
    tok2, n2 = read_state(r, cid)
    assert (tok2, n2 > n1) == (tok, True)
    r("delete", "--force", cid)
    assert_nothing_left(r, cid)


def test_errors_name_the_problem_and_leave_nothing(ocirun, bundle, cid, tmp_path):
    ocirun.global_args = GLOBAL_ARGS
    prepare(bundle)
    image = tmp_path / "image"

    # Nothing to restore from.
    r = restore(ocirun, bundle, cid, image, "--detach")
    assert r.returncode != 0 and "inventory.img" in r.stderr, r.stderr
    assert_nothing_left(ocirun, cid)

    # Only a running container can be checkpointed.
    create(ocirun, bundle, cid)
    r = ocirun("checkpoint", "--image-path", image, cid, check=False)
    assert r.rc != 0 and "created" in r.err and "not running" in r.err, r
    assert ocirun.state(cid)["status"] == "created"
    ocirun("start", cid)
    checkpoint(ocirun, cid, image)

    # A damaged image: criu fails, its error and log are named, and the
    # state dir and cgroup made for the restore are gone again.
    damaged = tmp_path / "damaged"
    shutil.copytree(image, damaged)
    (damaged / "pstree.img").write_bytes(b"\0" * 8)
    r = restore(ocirun, bundle, cid, damaged, "--detach")
    assert r.returncode != 0, r.stderr
    assert "criu restore failed" in r.stderr and "restore.log" in r.stderr, r.stderr
    assert_nothing_left(ocirun, cid)

    # The id is taken: refused, and the running container is untouched.
    assert restore(ocirun, bundle, cid, image, "--detach").returncode == 0
    pid = ocirun.state(cid)["pid"]
    r = restore(ocirun, bundle, cid, image, "--detach")
    assert r.returncode != 0 and "already exists" in r.stderr, r.stderr
    assert ocirun.state(cid)["pid"] == pid and ocirun.state(cid)["status"] == "running"
    ocirun("delete", "--force", cid)

    # A terminal's master comes back only over criu's RPC channel.
    bundle.process["terminal"] = True
    bundle.write()
    r = restore(ocirun, bundle, cid, image, "--detach")
    assert r.returncode != 0 and "terminal" in r.stderr, r.stderr
    assert_nothing_left(ocirun, cid)
