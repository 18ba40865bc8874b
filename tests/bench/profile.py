#!/usr/bin/env python3
"""Where the time of one `run` goes, for ocirun next to runc and crun.

For each runtime, on the same busybox bundle as bench.py (run /bin/true),
in the same private mount namespace (see bench.py):
  strace -c -f            syscall counts and kernel time per syscall
  strace -f -tt -T -y     a timeline, summarised by category (cgroup files,
                          /proc, state dir, mounts, processes, ...)
  perf stat -r N          task-clock, context switches, page faults (if perf works)
  valgrind callgrind      user-space instructions of `ocirun state` and
                          `ocirun spec` (JSON parse/serialise), if valgrind is there

Writes everything under --out (default ./bench-profile) and prints a summary.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

DEVNULL = subprocess.DEVNULL

LINE = re.compile(r"^(\d+)\s+(\d+:\d+:\d+\.\d+)\s+(.*)$")
CALL = re.compile(r"^([a-z0-9_]+)\((.*)\)\s+=\s+(-?\w+)(.*?)(?:<(\d+\.\d+)>)?$")


def category(name, args, root, rootfs):
    if name in ("clone", "clone3", "fork", "vfork", "execve", "wait4", "waitid", "exit_group", "pidfd_open",
                "pidfd_send_signal", "kill", "tgkill"):
        return "process (fork/exec/wait/signal)"
    if name in ("mount", "umount2", "pivot_root", "mount_setattr", "open_tree", "move_mount", "fsopen", "fsmount",
                "fsconfig", "chroot", "unshare", "setns"):
        return "mounts + namespaces"
    if "/sys/fs/cgroup" in args:
        return "cgroup files"
    if root and root in args:
        return "state dir"
    if "/proc" in args:
        return "/proc and /sys"
    if "/sys/" in args:
        return "/proc and /sys"
    if rootfs and rootfs in args:
        return "rootfs"
    if name in ("mmap", "munmap", "mprotect", "brk", "madvise", "mremap"):
        return "memory (mmap/brk)"
    if "/lib/" in args or "/etc/ld.so" in args or "ld.so" in args:
        return "dynamic loader"
    if name in ("read", "write", "poll", "ppoll", "epoll_wait", "epoll_pwait", "recvmsg", "sendmsg", "futex",
                "nanosleep", "clock_nanosleep", "select", "pselect6"):
        return "ipc / waiting (pipes, sockets, futex)"
    if name in ("close", "close_range"):
        return "close"
    return "other"


def summarise_timeline(path, root, rootfs):
    """Per category: count and summed syscall time (-T); per process: span."""
    cats = collections.defaultdict(lambda: [0, 0.0])
    spans = {}
    first = last = None
    pending = {}
    names = collections.Counter()
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, ts, rest = m.group(1), m.group(2), m.group(3)
            h, mi, s = ts.split(":")
            t = int(h) * 3600 + int(mi) * 60 + float(s)
            first = t if first is None else first
            last = t
            sp = spans.setdefault(pid, [t, t])
            sp[1] = t
            if rest.endswith("<unfinished ...>"):
                pending[pid] = rest[: -len("<unfinished ...>")].strip()
                continue
            if rest.startswith("<..."):
                # "<... read resumed>...) = 3 <0.0001>": join with the pending start
                start = pending.pop(pid, "")
                mm = re.match(r"<\.\.\. ([a-z0-9_]+) resumed>(.*)$", rest)
                if not mm:
                    continue
                rest = start + mm.group(2)
            c = CALL.match(rest)
            if not c:
                continue
            name, args, dur = c.group(1), c.group(2), float(c.group(5) or 0)
            names[name] += 1
            k = category(name, args, root, rootfs)
            cats[k][0] += 1
            cats[k][1] += dur
    return cats, spans, (last - first) if first is not None else 0.0, names


def run_quiet(cmd, **kw):
    return subprocess.run(cmd, stdin=DEVNULL, stdout=DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def strace_c(rt, out, what, cmd, created_id=None):
    """strace -c -f of one command; returns ({syscall: calls}, errors)."""
    path = os.path.join(out, f"strace-c-{what}-{rt.name}.txt")
    if created_id:
        # strace -f follows the init, which waits for `start`: start it
        # once it is created so that strace (and the init) can finish.
        p = subprocess.Popen(["strace", "-c", "-f", "-o", path] + cmd, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
        rt.wait_status(created_id, "created", timeout=30)
        rt.quiet("start", created_id)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    else:
        run_quiet(["strace", "-c", "-f", "-o", path] + cmd, timeout=60)
    calls, errors = {}, 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0].replace(".", "").isdigit() and parts[-1] not in ("total",):
                try:
                    n = int(parts[3])
                except ValueError:
                    continue
                errs = parts[4] if len(parts) == 6 else "0"
                calls[parts[-1]] = n
                errors += int(errs) if errs.isdigit() else 0
    return calls, errors


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ocirun", required=True)
    p.add_argument("--runc", default="/usr/sbin/runc")
    p.add_argument("--crun", default="/usr/bin/crun")
    p.add_argument("--out", default="bench-profile")
    p.add_argument("--perf-reps", type=int, default=20)
    p.add_argument("--no-unshare", action="store_true")
    opts = p.parse_args(argv)
    if os.geteuid() != 0:
        print("profile.py: must run as root", file=sys.stderr)
        return 2
    if not opts.no_unshare and not os.environ.get(bench.INNER_ENV) and bench.UNIFIED in bench.mountpoints():
        env = dict(os.environ, **{bench.INNER_ENV: "1"})
        argv2 = ["unshare", "-m", "--propagation", "private", "sh", "-c", f'umount {bench.UNIFIED} && exec "$@"', "sh",
                 sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
        os.execvpe("unshare", argv2, env)
    if not shutil.which("strace"):
        print("profile.py: strace is not installed", file=sys.stderr)
        return 2
    out = os.path.abspath(opts.out)
    os.makedirs(out, exist_ok=True)
    ocirun = os.path.abspath(opts.ocirun)
    workdir = tempfile.mkdtemp(prefix="ocirun-profile-")
    busybox = shutil.which("busybox", path="/bin:/usr/bin") or "/bin/busybox"
    rts = []
    try:
        for name, binary in (("ocirun", ocirun), ("runc", opts.runc), ("crun", opts.crun)):
            if binary and os.access(binary, os.X_OK):
                rts.append(bench.Runtime(name, binary, workdir, f"pf{os.getpid()}"))
        bundle = bench.make_bundle(workdir, ocirun, busybox)
        rootfs = os.path.join(workdir, "rootfs")
        bundle_sleep = bench.make_bundle(workdir, ocirun, busybox, "bundle-sleep", ("/bin/sleep", "1000000"))

        print("== strace -c -f: syscalls per command (all processes of the runtime, container payload included)")
        table = {}
        for r in rts:
            row = {}
            for what in ("run", "create"):
                cid = r.id("sc" + what, 0)
                calls, errors = strace_c(r, out, what, r.cmd(what, "--bundle", bundle, cid),
                                         cid if what == "create" else None)
                row[what] = (sum(calls.values()), errors, calls)
                r.quiet("delete", "--force", cid)
            ids = bench.start_sleepers([r], bundle_sleep, "scexec")
            if r.name in ids:
                calls, errors = strace_c(r, out, "exec", r.cmd("exec", ids[r.name], "/bin/true"))
                row["exec"] = (sum(calls.values()), errors, calls)
            bench.stop_sleepers([r], ids)
            table[r.name] = row
        keys = ("clone", "clone3", "fork", "vfork", "execve", "openat", "read", "write", "mount", "close", "mmap",
                "newfstatat", "statx", "fstatfs", "statfs", "ioctl", "readlinkat", "getdents64", "prctl", "wait4")
        for what in ("run", "create", "exec"):
            print(f"-- {what}")
            for name, row in table.items():
                if what not in row:
                    continue
                total, errors, calls = row[what]
                top = ", ".join(f"{k} {calls[k]}" for k in keys if calls.get(k))
                print(f"   {name:7s} total {total:5d} (errors {errors}): {top}")

        print("\n== strace -f -tt -T -y of `run`: syscall time by category (strace inflates every syscall)")
        for r in rts:
            path = os.path.join(out, f"strace-tt-run-{r.name}.txt")
            run_quiet(["strace", "-f", "-tt", "-T", "-y", "-s", "128", "-o", path]
                      + r.cmd("run", "--bundle", bundle, r.id("tt", 0)))
            cats, spans, wall, names = summarise_timeline(path, r.root, rootfs)
            print(f"-- {r.name}: {len(spans)} processes/threads, wall under strace {wall * 1e3:.1f} ms")
            for k, (n, t) in sorted(cats.items(), key=lambda kv: -kv[1][1]):
                print(f"   {k:40s} {n:5d} calls {t * 1e3:8.2f} ms")

        if shutil.which("perf"):
            print(f"\n== perf stat -r {opts.perf_reps} of `run` (software events)")
            for r in rts:
                path = os.path.join(out, f"perf-stat-run-{r.name}.txt")
                cid = r.id("perf", 0)
                res = run_quiet(["perf", "stat", "-r", str(opts.perf_reps), "-o", path, "-e",
                                 "task-clock,context-switches,cpu-migrations,page-faults"]
                                + r.cmd("run", "--bundle", bundle, cid))
                r.quiet("delete", "--force", cid)
                if res.returncode != 0 or not os.path.exists(path):
                    print(f"   {r.name}: perf stat failed: {res.stderr.strip()[:200]}")
                    continue
                with open(path) as f:
                    for line in f:
                        line = line.strip()
                        if any(w in line for w in ("task-clock", "context-switches", "migrations", "page-faults",
                                                   "elapsed")):
                            print(f"   {r.name:7s} {line}")

        if shutil.which("valgrind"):
            print("\n== callgrind: user-space instructions (Ir) of ocirun commands")
            r = rts[0]
            cid = r.id("cg", 0)
            r.quiet("create", "--bundle", bundle, cid)
            for what, cmd in (("state", r.cmd("state", cid)), ("spec", [ocirun, "spec", "--bundle", workdir + "/cgs"]),
                              ("create", r.cmd("create", "--bundle", bundle, r.id("cg", 1)))):
                if what == "spec":
                    os.makedirs(workdir + "/cgs", exist_ok=True)
                cgout = os.path.join(out, f"callgrind.{what}.out")
                res = run_quiet(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cgout}"] + cmd)
                ann = ""
                if os.path.exists(cgout):
                    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", cgout], capture_output=True,
                                         text=True).stdout
                    with open(cgout + ".annotate.txt", "w") as f:
                        f.write(ann)
                m = re.search(r"([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", ann)
                status = "ok" if res.returncode == 0 else f"exit {res.returncode}: {res.stderr.strip()[-160:]}"
                print(f"   ocirun {what}: {m.group(1) if m else '?'} instructions ({status})")
                for line in ann.splitlines():
                    if re.search(r"(yajl|ocispec|json|parse|gen_|state|cgroup_layout|read_file)", line) and "%" in line:
                        print("      " + line.strip()[:150])
                        break
            r.quiet("delete", "--force", cid)
            r.quiet("delete", "--force", r.id("cg", 1))
    finally:
        for r in rts:
            left = r.cleanup()
            if left:
                print(f"{r.name}: could not delete {left}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nraw output in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
