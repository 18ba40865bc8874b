"""Builds the e2e images locally, without a registry: one busybox layer and
a docker-archive tar (the `docker save` format, which `docker load`,
`ctr images import` and `podman load` all read) holding two images:

  localhost/ocirun-e2e/bb:latest     busybox, PATH set, Cmd ["sh"]
  localhost/ocirun-e2e/pause:latest  the same layer, Entrypoint sleep infinity
                                     (the CRI sandbox image)
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = shutil.which("busybox", path="/bin:/usr/bin") or "/bin/busybox"
BB = "localhost/ocirun-e2e/bb:latest"
PAUSE = "localhost/ocirun-e2e/pause:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _layer_tar():
    """The busybox rootfs as an uncompressed tar, built in memory with
    fixed metadata so the digest is the same on every run."""
    buf = io.BytesIO()
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()

    def info(name, kind=tarfile.DIRTYPE, mode=0o755, size=0, linkname=""):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.size = size
        ti.linkname = linkname
        ti.mtime = 0
        ti.uid = ti.gid = 0
        return ti

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ("bin", "etc", "proc", "sys", "dev", "root", "home", "home/user", "var", "run", "data"):
            t.addfile(info(d))
        t.addfile(info("tmp", mode=0o1777))
        data = Path(BUSYBOX).read_bytes()
        t.addfile(info("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), io.BytesIO(data))
        for a in sorted(set(applets)):
            if a != "busybox" and "/" not in a:
                t.addfile(info("bin/" + a, tarfile.SYMTYPE, 0o777, linkname="busybox"))
        files = {
            "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/:/bin/false\n",
            "etc/group": "root:x:0:\nuser:x:1000:\nnobody:x:65534:\n",
            "data/marker": "from-image\n",
        }
        for name, text in files.items():
            b = text.encode()
            t.addfile(info(name, tarfile.REGTYPE, 0o644, len(b)), io.BytesIO(b))
    return buf.getvalue()


def _config(diff_id, entrypoint, cmd):
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Env": [PATH_ENV], "Entrypoint": entrypoint, "Cmd": cmd, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "ocirun e2e"}],
        },
        sort_keys=True,
    ).encode()


def build_archive(dest):
    """Writes the docker-archive tar to `dest`; returns its path."""
    layer = _layer_tar()
    layer_hex = hashlib.sha256(layer).hexdigest()
    diff_id = "sha256:" + layer_hex
    members = {f"{layer_hex}/layer.tar": layer}
    manifest = []
    for tag, ep, cmd in ((BB, None, ["sh"]), (PAUSE, ["/bin/sleep"], ["infinity"])):
        cfg = _config(diff_id, ep, cmd)
        cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
        members[cfg_name] = cfg
        manifest.append({"Config": cfg_name, "RepoTags": [tag], "Layers": [f"{layer_hex}/layer.tar"]})
    members["manifest.json"] = json.dumps(manifest).encode()
    dest = Path(dest)
    with tarfile.open(dest, "w") as t:
        ti = tarfile.TarInfo(layer_hex)
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        t.addfile(ti)
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return dest


def write_rootfs(dest):
    """Unpacks the busybox layer into the directory `dest` (a plain rootfs,
    for `podman --rootfs`)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(_layer_tar())) as t:
        t.extractall(dest)
    return dest


if __name__ == "__main__":
    import sys

    print(build_archive(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.getcwd(), "e2e-images.tar")))
