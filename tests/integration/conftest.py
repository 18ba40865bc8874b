"""The integration harness: a busybox rootfs, bundles made from `ocirun spec`,
a Runtime wrapper that runs ocirun (or runc) with a private --root, and a
check after every test that nothing was left behind (state dirs, mounts,
processes, cgroups)."""

import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUSYBOX = shutil.which("busybox", path="/bin:/usr/bin") or "/bin/busybox"


def ocirun_binary():
    b = os.environ.get("OCIRUN")
    if b:
        return b
    for cand in (REPO / "build" / "ocirun", REPO / "ocirun"):
        if cand.exists():
            return str(cand)
    raise RuntimeError("ocirun binary not found: build it or set OCIRUN")


def elf_is_static(path):
    """True when the ELF file at path has no program interpreter (PT_INTERP):
    a static binary, which the kernel starts without ld.so."""
    import struct
    with open(path, "rb") as f:
        hdr = f.read(64)
        assert hdr[:4] == b"\x7fELF" and hdr[4] == 2, f"{path}: not a 64-bit ELF file"
        phoff, = struct.unpack_from("<Q", hdr, 32)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def pty_read(fd, until=None, timeout=10):
    """What a pty master gives until EOF (the other side closed), until the
    bytes `until` have arrived, or timeout seconds."""
    import select
    out = b""
    end = time.monotonic() + timeout
    while (until is None or until not in out) and time.monotonic() < end:
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def run_captured(cmd, timeout=60, **kw):
    """subprocess.run with stdout and stderr through files, not pipes: a
    created container's init inherits the caller's stdio, and a pipe would
    then never reach EOF."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        cp = subprocess.run(cmd, stdout=out, stderr=err, text=True, timeout=timeout, **kw)
        out.seek(0)
        err.seek(0)
        cp.stdout, cp.stderr = out.read(), err.read()
    return cp


class Result:
    def __init__(self, cp):
        self.rc = cp.returncode
        self.out = cp.stdout
        self.err = cp.stderr

    def __repr__(self):
        return f"Result(rc={self.rc}, out={self.out!r}, err={self.err!r})"


class Runtime:
    """One runtime binary with its own state root."""

    def __init__(self, binary, root, name):
        self.binary = binary
        self.root = str(root)
        self.name = name
        self.global_args = []
        self.preexec_fn = None  # runs in the child before exec (e.g. a seccomp filter)

    def __call__(self, *args, check=True, input=None, timeout=60, env=None, cwd=None, global_args=None):
        cmd = [self.binary, "--root", self.root] + list(global_args or self.global_args) + [str(a) for a in args]
        cp = run_captured(cmd, input=input, timeout=timeout, env=env, cwd=cwd,
                          stdin=None if input is not None else subprocess.DEVNULL, preexec_fn=self.preexec_fn)
        r = Result(cp)
        if check and r.rc != 0:
            raise AssertionError(f"{' '.join(cmd)} failed: {r}")
        return r

    def popen(self, *args, **kw):
        cmd = [self.binary, "--root", self.root] + self.global_args + [str(a) for a in args]
        return subprocess.Popen(cmd, **kw)

    def run(self, bundle, cid, *extra, check=False, timeout=60, input=None):
        """`run` a container to completion; returns Result (rc = container's exit code)."""
        return self(
            "run", "--bundle", bundle.path, *extra, cid, check=check, timeout=timeout, input=input or ""
        )

    def state(self, cid):
        return json.loads(self("state", cid).out)

    def ids(self):
        return [c["id"] for c in json.loads(self("list", "--format", "json").out or "[]") or []]


class Bundle:
    """A bundle dir whose config starts as `ocirun spec` output, with the
    shared busybox rootfs, terminal off; tests edit .config then call write()."""

    def __init__(self, path, rootfs, base_config):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.config = json.loads(json.dumps(base_config))
        self.config["root"] = {"path": str(rootfs), "readonly": True}
        self.config["process"]["terminal"] = False

    @property
    def process(self):
        return self.config["process"]

    @property
    def linux(self):
        return self.config["linux"]

    def set_args(self, *args):
        self.config["process"]["args"] = list(args)
        return self

    def sh(self, script):
        return self.set_args("/bin/sh", "-c", script)

    def write(self):
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2))
        return self


def _make_rootfs(dest):
    dest = Path(dest)
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "var", "run"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        link = dest / "bin" / a
        if not link.exists():
            link.symlink_to("busybox")
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nuser:x:1000:\nnobody:x:65534:\n")
    os.chmod(dest / "tmp", 0o1777)
    return dest


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    # pytest makes its temp dirs 0700: a container root mapped to another
    # host uid (user namespaces) must still be able to reach the rootfs.
    base = tmp_path_factory.getbasetemp()
    for d in (base.parent, base):
        os.chmod(d, 0o755)
    w = tmp_path_factory.mktemp("ocirun-it")
    os.chmod(w, 0o755)
    return w


@pytest.fixture(scope="session")
def rootfs(workdir):
    return _make_rootfs(workdir / "rootfs")


@pytest.fixture(scope="session")
def base_config(workdir):
    d = workdir / "spec"
    d.mkdir()
    subprocess.run([ocirun_binary(), "spec", "--bundle", str(d)], check=True, capture_output=True)
    return json.loads((d / "config.json").read_text())


_ids = itertools.count()


@pytest.fixture
def cid():
    """A container id unique to this test run."""
    return f"it{os.getpid()}-{next(_ids)}"


@pytest.fixture
def bundle(tmp_path, rootfs, base_config):
    return Bundle(tmp_path / "bundle", rootfs, base_config)


def _mounts_under(prefix):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp.startswith(prefix):
                out.append(mp)
    return out


def _cgroup_dirs_named(name):
    found = []
    base = Path("/sys/fs/cgroup")
    for hier in base.iterdir():
        try:
            for p in hier.rglob(name + "*"):
                if p.is_dir():
                    found.append(str(p))
        except OSError:
            pass
    return found


@pytest.fixture
def ocirun(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("root")
    rt = Runtime(ocirun_binary(), root, "ocirun")
    yield rt
    _teardown(rt, request, tmp_path_factory.getbasetemp())


@pytest.fixture
def runc(tmp_path_factory, request):
    if not shutil.which("runc"):
        pytest.skip("runc not installed")
    root = tmp_path_factory.mktemp("runc-root")
    rt = Runtime(shutil.which("runc"), root, "runc")
    yield rt
    _teardown(rt, request, tmp_path_factory.getbasetemp())


def _teardown(rt, request, basetemp):
    """Deletes what a test left and fails the test if ocirun left anything a
    well-behaved run must not (checked only when the test itself passed)."""
    leftovers = []
    try:
        ids = rt.ids()
    except Exception:
        ids = [p.name for p in Path(rt.root).iterdir()] if Path(rt.root).exists() else []
    for i in ids:
        rt("delete", "--force", i, check=False)
    if Path(rt.root).exists():
        leftovers += [f"state dir {p}" for p in Path(rt.root).iterdir()]
    if rt.name == "ocirun":
        leftovers += [f"mount {m}" for m in _mounts_under(str(basetemp))]
    shutil.rmtree(rt.root, ignore_errors=True)
    rep = getattr(request.node, "rep_call", None)
    if leftovers and rep is not None and rep.passed:
        pytest.fail(f"{rt.name} left behind: {leftovers}")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def assert_nothing_left(rt, cid):
    """After a failing command: no state dir, no process, no cgroup for cid."""
    assert not (Path(rt.root) / cid).exists(), f"state dir for {cid} left behind"
    assert _cgroup_dirs_named(cid) == [], f"cgroups left: {_cgroup_dirs_named(cid)}"
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert cid not in out, f"process mentioning {cid} left"


def wait_for(pred, timeout=10.0, interval=0.02):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()
