#!/usr/bin/python3
"""Runs one busybox bundle with resource limits under ocirun, runc and crun
(inside the VM, where all three work) and prints what each container saw in
its own /sys/fs/cgroup as JSON: {"ocirun": {"memory.max": "...", ...}, ...}.
A runtime that fails gets {"error": "..."} instead.

usage: compare.py OCIRUN WORKDIR
"""

import json
import os
import shutil
import subprocess
import sys

KNOBS = ["memory.max", "memory.low", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max", "io.weight",
         "cpuset.cpus"]

RESOURCES = {
    "memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
    "pids": {"limit": 64},
    "blockIO": {"weight": 300},
}


def bundle(work):
    root = os.path.join(work, "rootfs")
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    for d in ("proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(root, "bin", "busybox"))
    for c in ("sh", "cat", "echo"):
        p = os.path.join(root, "bin", c)
        if not os.path.lexists(p):
            os.symlink("busybox", p)
    script = "cat /proc/self/cgroup; for f in %s; do printf '%%s=' $f; cat /sys/fs/cgroup/$f 2>/dev/null || echo MISSING; done" % " ".join(KNOBS)
    cfg = {
        # crun 1.8.1 accepts only 1.0.x
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", script],
                    "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": True},
        "root": {"path": "rootfs"},
        "hostname": "cmp",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": RESOURCES,
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")],
        },
    }
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(cfg, f)
    return work


def run(rt, work, name):
    root = os.path.join(work, "state-" + name)
    cid = "cmp-" + name
    cp = subprocess.run([rt, "--root", root, "run", "--bundle", work, cid], capture_output=True, text=True,
                        timeout=120)
    subprocess.run([rt, "--root", root, "delete", "--force", cid], capture_output=True)
    if cp.returncode != 0:
        return {"error": f"rc {cp.returncode}: {cp.stderr.strip()[-500:]}"}
    out = {}
    for line in cp.stdout.splitlines():
        if "=" in line and line.split("=", 1)[0] in KNOBS:
            k, v = line.split("=", 1)
            out[k] = v.strip()
        elif line.startswith("0::"):
            out["/proc/self/cgroup"] = line
    return out


def main():
    ocirun, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    bundle(work)
    res = {}
    for name, rt in (("ocirun", ocirun), ("runc", shutil.which("runc") or "/usr/sbin/runc"),
                     ("crun", shutil.which("crun") or "/usr/bin/crun")):
        res[name] = run(rt, work, name)
    print(json.dumps(res, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
