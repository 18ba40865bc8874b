"""End-to-end fixtures: the e2e images built once per session, and private
instances of each engine (dockerd twice, containerd with its CRI plugin,
podman with a private store), each on its own sockets and data dirs, started
once per session and stopped and cleaned at the end.

Every test takes `rt` ("runc" or "ocirun"): the same operation runs with
Debian's runc as the control, so a failure only on ocirun is ours."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import images  # noqa: E402
from engines import (RUNTIMES, TAG, Containerd, Daemon, Docker, Podman, ocirun_binary, podman_conf,  # noqa: E402
                     remove_cgroup_tree, rmtree, runtime_binary, unique, unmount_under, wait_for)


def pytest_generate_tests(metafunc):
    if "rt" in metafunc.fixturenames:
        metafunc.parametrize("rt", RUNTIMES)


def _need(*bins):
    for b in bins:
        if not shutil.which(b, path="/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"):
            pytest.skip(f"{b} not installed (scripts/install-deps.sh installs it)")


def _containerd_run_dirs():
    base = Path("/run/containerd")
    return {str(base)} | {str(p) for p in base.glob("*") if p.is_dir()} if base.is_dir() else set()


def _stale_cgroup_parents():
    """The cgroup parents (/ocirun-e2e-PID and /ocirun-e2e-PID-ENGINE) of
    earlier runs whose pytest is gone: one killed before its teardown."""
    stale = set()
    root = Path("/sys/fs/cgroup")
    hiers = [root] if (root / "cgroup.controllers").exists() else [h for h in root.iterdir() if h.is_dir()]
    for hier in hiers:
        for d in hier.glob("ocirun-e2e-*"):
            pid = d.name.split("-")[2]
            if d.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
                stale.add("/" + d.name)
    return stale


@pytest.fixture(scope="session", autouse=True)
def stale_cgroups():
    """Removes what a killed run left (empty cgroups only: a cgroup with a
    process in it stays, and is no business of this run)."""
    for rel in sorted(_stale_cgroup_parents()):
        remove_cgroup_tree(rel)


@pytest.fixture(scope="session", autouse=True)
def fixed_run_dirs():
    """ctr keeps its stdio FIFOs and every shim its socket under the fixed
    /run/containerd: remove at the end what this session created there, if
    empty (torn down after all the daemons)."""
    before = _containerd_run_dirs()
    yield
    for p in sorted(_containerd_run_dirs() - before, key=len, reverse=True):
        try:
            os.rmdir(p)
        except OSError:
            pass


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def image_archive(e2e_dir):
    return images.build_archive(e2e_dir / "images.tar")


@pytest.fixture(scope="session")
def rootfs_dir(e2e_dir):
    return images.write_rootfs(e2e_dir / "rootfs")


# ------------------------------------------------------------------ Docker


def _start_dockerd(d, name, config):
    d.mkdir(parents=True, exist_ok=True)
    (d / "daemon.json").write_text(json.dumps(config, indent=2))
    sock = d / "docker.sock"
    argv = ["dockerd", "--data-root", d / "data", "--exec-root", d / "exec", "--pidfile", d / "docker.pid",
            "-H", f"unix://{sock}", "--config-file", d / "daemon.json"]
    daemon = Daemon(name, argv, d / "dockerd.log")
    cli = Docker(name, sock, d / "exec", config.get("cgroup-parent", "/docker"))
    try:
        daemon.wait_ready(lambda: sock.exists() and cli("version", check=False).rc == 0)
    except BaseException:
        daemon.stop()
        raise
    return daemon, cli


def _stop_dockerd(daemon, cli):
    ids = cli("ps", "-aq", check=False).out.split()
    if ids:
        cli("rm", "-f", *ids, check=False, timeout=120)
    # Every container is gone: so must be every runtime's state dir.
    state_left = [str(p) for p in cli.runtime_root.glob("*")] if cli.runtime_root.is_dir() else []
    left = daemon.stop() + [f"runtime state {p}" for p in state_left]
    cg = remove_cgroup_tree(cli.cgroup_parent)
    return left, cg


@pytest.fixture(scope="session")
def docker(e2e_dir, image_archive):
    """dockerd with ocirun registered under `runtimes` by absolute path
    (runc stays the default). It runs in its own network namespace, so the
    default bridge network (with iptables) works without touching the host."""
    _need("dockerd", "docker", "unshare")
    config = {
        "runtimes": {"ocirun": {"path": ocirun_binary()}},
        "cgroup-parent": f"/{TAG}-docker",
    }
    daemon, cli = _start_dockerd(e2e_dir / "docker", "docker", config)
    try:
        cli("load", "-i", image_archive, timeout=120)
        yield cli
    finally:
        left, cg = _stop_dockerd(daemon, cli)
        rmtree(e2e_dir / "docker")
    assert not left, f"left after dockerd stopped (processes in its namespace, runtime state): {left}"
    assert not cg, f"cgroups left under {cli.cgroup_parent}: {cg}"


@pytest.fixture(scope="session")
def docker_default(e2e_dir, image_archive):
    """A second dockerd whose daemon.json makes ocirun the default-runtime
    (no bridge: this one only checks which runtime runs)."""
    _need("dockerd", "docker", "unshare")
    config = {
        "runtimes": {"ocirun": {"path": ocirun_binary()}},
        "default-runtime": "ocirun",
        "cgroup-parent": f"/{TAG}-docker-default",
        "bridge": "none",
        "iptables": False,
    }
    daemon, cli = _start_dockerd(e2e_dir / "docker-default", "docker(default-runtime=ocirun)", config)
    try:
        cli("load", "-i", image_archive, timeout=120)
        yield cli
    finally:
        left, cg = _stop_dockerd(daemon, cli)
        rmtree(e2e_dir / "docker-default")
    assert not left, f"left after dockerd stopped (processes in its namespace, runtime state): {left}"
    assert not cg, f"cgroups left under {cli.cgroup_parent}: {cg}"


@pytest.fixture
def dnames(docker):
    """Container names for one test; removed at its end."""
    names = []

    def new():
        n = unique("d")
        names.append(n)
        return n

    yield new
    if names:
        docker("rm", "-f", *names, check=False)


# -------------------------------------------------------------- containerd

CONTAINERD_CONFIG = """\
version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # The CRI gives sandboxes oom_score_adj -998; lowering it needs
  # CAP_SYS_RESOURCE, which this host's root does not have.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{d}/runtime-root"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ocirun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.ocirun.options]
        BinaryName = "{ocirun}"
        Root = "{d}/runtime-root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
"""

CNI_CONFIG = {
    "cniVersion": "0.4.0",
    "name": "ocirun-e2e",
    "plugins": [
        {"type": "bridge", "bridge": "e2e0", "isGateway": True, "ipMasq": False,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.233.0.0/24"}]]}},
        {"type": "loopback"},
    ],
}


@pytest.fixture(scope="session")
def containerd(e2e_dir, image_archive):
    """A private containerd (ctr and, through its CRI plugin, Kubernetes):
    own root/state/socket, runtime handlers `runc` and `ocirun`
    (io.containerd.runc.v2 with BinaryName), a bridge CNI network, all in
    its own mount and network namespaces."""
    _need("containerd", "ctr", "unshare")
    d = e2e_dir / "containerd"
    (d / "cni").mkdir(parents=True)
    cni = json.loads(json.dumps(CNI_CONFIG))
    cni["plugins"][0]["ipam"]["dataDir"] = str(d / "ipam")
    (d / "cni" / "10-e2e.conflist").write_text(json.dumps(cni, indent=2))
    (d / "config.toml").write_text(CONTAINERD_CONFIG.format(d=d, pause=images.PAUSE, runc=runtime_binary("runc"),
                                                            ocirun=ocirun_binary()))
    sock = d / "containerd.sock"
    daemon = Daemon("containerd", ["containerd", "--config", d / "config.toml"], d / "containerd.log")
    c = Containerd(d, sock)
    try:
        daemon.wait_ready(lambda: sock.exists() and c("version", check=False).rc == 0)
        c("images", "import", image_archive, timeout=120)
        c("images", "import", image_archive, timeout=120, ns="k8s.io")
        c.daemon = daemon
        yield c
    finally:
        for ns in (c.namespace,):
            for tid in c("task", "ls", "-q", check=False, ns=ns).out.split():
                c("task", "kill", "-s", "SIGKILL", tid, check=False, ns=ns)
                wait_for(lambda: c("task", "delete", tid, check=False, ns=ns).rc == 0, timeout=10)
            for cid in c("container", "ls", "-q", check=False, ns=ns).out.split():
                c("container", "delete", cid, check=False, ns=ns)
        left = daemon.stop()
        cg = remove_cgroup_tree(f"/{TAG}") + remove_cgroup_tree(f"/{TAG}-cri")
        state_left = [str(p) for p in (d / "runtime-root").glob("*/*")]
        rmtree(d)
    assert not left, f"processes left in containerd's namespace after stop: {left}"
    assert not cg, f"cgroups left: {cg}"
    assert not state_left, f"runtime state left after every container was deleted: {state_left}"


# ------------------------------------------------------------------ podman


@pytest.fixture(scope="session")
def podman(e2e_dir, image_archive):
    _need("podman", "conmon")
    d = e2e_dir / "podman"
    d.mkdir()
    p = Podman(d, podman_conf(d / "containers.conf"))
    try:
        p("load", "-q", "-i", image_archive, timeout=120)
        yield p
    finally:
        ids = p("ps", "-aq", check=False).out.split()
        if ids:
            p("rm", "-f", "-t", "0", *ids, check=False, timeout=120)
        cg = remove_cgroup_tree(p.cgroup_parent)
        unmount_under(d)
        rmtree(d)
    assert not cg, f"cgroups left under {p.cgroup_parent}: {cg}"


@pytest.fixture
def pnames(podman):
    names = []

    def new():
        n = unique("p")
        names.append(n)
        return n

    yield new
    if names:
        podman("rm", "-f", "-t", "0", *names, check=False)


# -------------------------------------------------------------------- CRI


@pytest.fixture(scope="session")
def cri_stubs(e2e_dir):
    """Python stubs for tests/e2e/cri/cri_min.proto, generated now into a
    temp dir (generated code is not kept in the repository)."""
    try:
        import grpc  # noqa: F401
        from grpc_tools import protoc
    except ImportError:
        pytest.skip("python3-grpcio / python3-grpc-tools not installed")
    out = e2e_dir / "cri-gen"
    out.mkdir()
    src = Path(__file__).resolve().parent / "cri"
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{src}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                      str(src / "cri_min.proto")])
    assert rc == 0, "protoc failed on cri_min.proto"
    sys.path.insert(0, str(out))
    import cri_min_pb2
    import cri_min_pb2_grpc

    return cri_min_pb2, cri_min_pb2_grpc


@pytest.fixture(scope="session")
def cri(containerd, cri_stubs):
    import grpc

    for plugin in ("bridge", "host-local", "loopback"):
        if not Path("/usr/lib/cni", plugin).exists():
            pytest.skip(f"CNI plugin /usr/lib/cni/{plugin} missing (containernetworking-plugins)")

    pb, rpc = cri_stubs
    ch = grpc.insecure_channel(f"unix://{containerd.sock}")
    stub = rpc.RuntimeServiceStub(ch)
    stub.pb = pb
    stub.containerd = containerd
    stub.cgroup_root = f"/{TAG}-cri"
    yield stub
    ch.close()
