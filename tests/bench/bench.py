#!/usr/bin/env python3
"""Side-by-side benchmark of ocirun against runc and crun (issue 7).

Every case runs the runtimes interleaved (A B C A B C ...) on the same
busybox bundle, each runtime with its own fresh --root and its own container
ids, and prints per case the median, min and max and the ratios
ocirun/runc and ocirun/crun taken from the same run.

crun 1.8.1 refuses a hybrid cgroup host (v1 controllers plus a cgroup2 mount
at /sys/fs/cgroup/unified), so when that mount exists the whole benchmark
re-executes itself inside `unshare -m --propagation private` with the
unified mount hidden: all runtimes then see the same pure cgroup v1 layout.

Cases (select with --cases):
  run         `run` of /bin/true, sequential: create+start+wait+delete
  lifecycle   `create`, `state`, `start`, `delete` timed separately
  exec        `exec` of /bin/true into a running container
  throughput  N `run`s with P in flight at once (containers/s)
  scale       `state`, `list` and a new `create` with 1/100/1000 containers existing
  footprint   peak RSS (wait4 ru_maxrss) of create/exec/run, binary size,
              smallest linux.resources.memory.limit under which `echo` runs
  vm          (not in the default list) run, lifecycle and exec again inside
              the pure cgroup v2 VM of tests/vm/vm.py (qemu TCG: absolute
              times are emulated and slow, only the ratios mean something)

Only the python3 standard library is used. Timings are wall-clock
time.perf_counter_ns() around the whole runtime process (fork+exec of the
runtime included: the same for every runtime), stdio to /dev/null.
"""

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

INNER_ENV = "OCIRUN_BENCH_INNER"
UNIFIED = "/sys/fs/cgroup/unified"
ALL_CASES = ["run", "lifecycle", "exec", "throughput", "scale", "footprint"]
VM_CASES = ["run", "lifecycle", "exec"]  # case 7: these again in the cgroup v2 VM (--cases vm)
DEVNULL = subprocess.DEVNULL
KIB = 1024
MIB = 1024 * 1024
TIME = "/usr/bin/time"  # GNU time, for ru_maxrss


# ---------------------------------------------------------------- utilities


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def mountpoints():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def spawn_wait(cmd, stdout=DEVNULL, stderr=DEVNULL, timeout=120):
    """Runs cmd and returns its exit code (-999 when it was killed after
    timeout seconds). Waits with a blocking waitpid: subprocess's own
    timeout= polls with exponentially growing sleeps (0.5 ms, 1, 2, 4 ...)
    and would round every measurement up to the next step."""
    p = subprocess.Popen(cmd, stdin=DEVNULL, stdout=stdout, stderr=stderr)
    fired = []

    def kill():
        fired.append(True)
        p.kill()

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        rc = p.wait()
    finally:
        timer.cancel()
    return -999 if fired else rc


def find_binary(explicit, name, fallbacks):
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for cand in fallbacks:
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which(name)


def version_line(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        return " ".join(out.split("\n")[0:2]).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def summary(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


class Runtime:
    """One runtime binary with a private --root and a stderr log file."""

    def __init__(self, name, binary, workdir, prefix):
        self.name = name
        self.binary = binary
        self.root = os.path.join(workdir, "root-" + name)
        os.makedirs(self.root)
        self.logpath = os.path.join(workdir, name + ".stderr")
        self.log = open(self.logpath, "ab")
        self.prefix = f"{prefix}-{name[:2]}"
        self.failures = []
        self.calls = 0
        self.version = version_line(binary)

    def cmd(self, *args):
        return [self.binary, "--root", self.root] + [str(a) for a in args]

    def id(self, case, i):
        return f"{self.prefix}-{case}-{i}"

    def call(self, *args, timeout=120):
        """Runs one command; returns (elapsed microseconds, exit code)."""
        cmd = self.cmd(*args)
        self.calls += 1
        pos = os.fstat(self.log.fileno()).st_size
        t0 = time.perf_counter_ns()
        rc = spawn_wait(cmd, stderr=self.log, timeout=timeout)
        t1 = time.perf_counter_ns()
        if rc != 0:
            with open(self.logpath, "rb") as f:
                f.seek(pos)
                msg = f.read(400).decode(errors="replace").strip().replace("\n", " | ")
            self.failures.append(f"`{' '.join(cmd[3:])}`: exit {rc}: {msg}")
        return (t1 - t0) / 1000.0, rc

    def quiet(self, *args, timeout=120):
        """Runs an untimed helper command (setup, cleanup); returns exit code."""
        return spawn_wait(self.cmd(*args), stderr=self.log, timeout=timeout)

    def status(self, cid):
        try:
            out = subprocess.run(self.cmd("state", cid), stdin=DEVNULL, capture_output=True, text=True, timeout=30)
            return json.loads(out.stdout).get("status") if out.returncode == 0 else None
        except (ValueError, subprocess.SubprocessError):
            return None

    def wait_status(self, cid, want, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.status(cid) == want:
                return True
            time.sleep(0.002)
        return False

    def existing(self):
        try:
            return sorted(os.listdir(self.root))
        except OSError:
            return []

    def cleanup(self, parallel=8):
        ids = self.existing()
        if ids:
            with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
                list(ex.map(lambda c: self.quiet("delete", "--force", c), ids))
        left = self.existing()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
        return left


# ------------------------------------------------------------------ bundle


def make_bundle(workdir, ocirun, busybox, name="bundle", args=("/bin/true",), memory_limit=None):
    bundle = os.path.join(workdir, name)
    rootfs = os.path.join(workdir, "rootfs")
    if not os.path.isdir(rootfs):
        for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy2(busybox, os.path.join(rootfs, "bin", "busybox"))
        for a in ("sh", "true", "echo", "sleep", "cat"):
            os.symlink("busybox", os.path.join(rootfs, "bin", a))
        with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
    os.makedirs(bundle)
    subprocess.run([ocirun, "spec", "--bundle", bundle], check=True, stdin=DEVNULL, capture_output=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    # crun 1.8.1 rejects ociVersion 1.3.0 ("unknown version specified");
    # nothing in this config needs more than 1.0.2.
    config["ociVersion"] = "1.0.2"
    config["root"] = {"path": rootfs, "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args)
    if memory_limit is not None:
        config["linux"].setdefault("resources", {})["memory"] = {"limit": int(memory_limit)}
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    return bundle


# ------------------------------------------------------------------ results


class Results:
    def __init__(self, runtimes):
        self.names = [r.name for r in runtimes]
        self.rows = []  # dicts: case, metric, unit, better, stats{name: summary}
        self.notes = []
        self.extra = {}
        self.failed = False

    def add(self, case, metric, unit, per_rt, better="lower", scale=1.0):
        stats = {n: summary([v * scale for v in per_rt.get(n, [])]) for n in self.names}
        row = {"case": case, "metric": metric, "unit": unit, "better": better, "stats": stats}
        self.rows.append(row)
        print_row(row, self.names)
        return row

    def find(self, case, metric):
        for r in self.rows:
            if r["case"] == case and r["metric"] == metric:
                return r
        return None

    def ratio(self, case, metric, other):
        r = self.find(case, metric)
        if not r:
            return None
        a, b = r["stats"].get("ocirun"), r["stats"].get(other)
        if not a or not b or not b["median"]:
            return None
        return a["median"] / b["median"]


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(s):
    if not s:
        return "-"
    if s["n"] == 1:
        return fmt(s["median"])
    return f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])})"


def ratio_of(row, other):
    a, b = row["stats"].get("ocirun"), row["stats"].get(other)
    if not a or not b or not b["median"]:
        return None
    return a["median"] / b["median"]


def print_row(row, names):
    cells = "  ".join(f"{n}={cell(row['stats'][n])}" for n in names)
    ratios = "  ".join(
        f"ocirun/{o}={fmt(ratio_of(row, o))}" for o in names if o != "ocirun" and "ocirun" in names
    )
    print(f"[{row['case']}] {row['metric']} ({row['unit']}, {row['better']} is better, median (min-max))", flush=True)
    print(f"    {cells}", flush=True)
    if ratios:
        print(f"    {ratios}", flush=True)


def markdown(results):
    names = results.names
    others = [o for o in names if o != "ocirun"] if "ocirun" in names else []
    head = ["case", "metric", "unit"] + names + [f"ocirun/{o}" for o in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results.rows:
        cols = [r["case"], r["metric"], r["unit"]] + [cell(r["stats"][n]) for n in names]
        cols += [fmt(ratio_of(r, o)) for o in others]
        lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- cases


def case_run(rts, bundle, opts, res):
    per = {r.name: [] for r in rts}
    for i in range(opts.n):
        for r in rts:
            us, rc = r.call("run", "--bundle", bundle, r.id("run", i))
            if rc == 0:
                per[r.name].append(us)
    res.add("1 run", "run /bin/true, sequential", "ms", per, scale=1e-3)
    # The first cgroup v1 move after a quiet spell waits for an RCU grace
    # period in the kernel (cgroup_threadgroup_rwsem); back-to-back runs
    # share one. A lone `run`, as a client usually does it, pays it.
    per = {r.name: [] for r in rts}
    for i in range(max(1, opts.n // 4)):
        for r in rts:
            time.sleep(opts.cold_pause)
            us, rc = r.call("run", "--bundle", bundle, r.id("runcold", i))
            if rc == 0:
                per[r.name].append(us)
    res.add("1 run", f"run /bin/true, cold ({opts.cold_pause * 1000:.0f} ms idle before each)", "ms", per, scale=1e-3)


def case_lifecycle(rts, bundle, opts, res):
    ops = ["create", "state", "start", "delete"]
    per = {op: {r.name: [] for r in rts} for op in ops}
    for i in range(opts.n):
        for r in rts:
            cid = r.id("lc", i)
            us, rc = r.call("create", "--bundle", bundle, cid)
            if rc != 0:
                r.quiet("delete", "--force", cid)
                continue
            per["create"][r.name].append(us)
            us, rc = r.call("state", cid)
            if rc == 0:
                per["state"][r.name].append(us)
            us, rc = r.call("start", cid)
            if rc == 0:
                per["start"][r.name].append(us)
            # /bin/true exits at once; delete is timed on the stopped container
            r.wait_status(cid, "stopped")
            us, rc = r.call("delete", cid)
            if rc == 0:
                per["delete"][r.name].append(us)
            else:
                r.quiet("delete", "--force", cid)
    for op in ops:
        what = {"state": "state (created container)", "delete": "delete (stopped container)"}.get(op, op)
        res.add("2 lifecycle", what, "ms", per[op], scale=1e-3)


def start_sleepers(rts, bundle_sleep, tag):
    ids = {}
    for r in rts:
        cid = r.id(tag, 0)
        if r.quiet("create", "--bundle", bundle_sleep, cid) != 0 or r.quiet("start", cid) != 0:
            r.failures.append(f"could not start the {tag} container")
            r.quiet("delete", "--force", cid)
            continue
        ids[r.name] = cid
    return ids


def stop_sleepers(rts, ids):
    for r in rts:
        if r.name in ids:
            r.quiet("delete", "--force", ids[r.name])


def case_exec(rts, bundle_sleep, opts, res):
    ids = start_sleepers(rts, bundle_sleep, "exec")
    per = {r.name: [] for r in rts}
    try:
        for _ in range(opts.n):
            for r in rts:
                if r.name in ids:
                    us, rc = r.call("exec", ids[r.name], "/bin/true")
                    if rc == 0:
                        per[r.name].append(us)
    finally:
        stop_sleepers(rts, ids)
    res.add("3 exec", "exec /bin/true into a running container", "ms", per, scale=1e-3)


def case_throughput(rts, bundle, opts, res):
    per = {r.name: [] for r in rts}
    for rep in range(opts.throughput_reps):
        for r in rts:
            cids = [r.id(f"tp{rep}", i) for i in range(opts.throughput_n)]
            t0 = time.perf_counter_ns()
            with concurrent.futures.ThreadPoolExecutor(opts.parallel) as ex:
                rcs = list(ex.map(lambda c: r.call("run", "--bundle", bundle, c)[1], cids))
            secs = (time.perf_counter_ns() - t0) / 1e9
            ok = sum(1 for rc in rcs if rc == 0)
            if ok >= 0.98 * len(cids):  # a sporadic failure is reported, not fatal
                per[r.name].append(ok / secs)
            for c in r.existing():
                r.quiet("delete", "--force", c)
    res.add(
        "4 throughput",
        f"{opts.throughput_n} x run /bin/true, {opts.parallel} in flight",
        "containers/s",
        per,
        better="higher",
    )


def populate(r, bundle, start, stop, parallel):
    cids = [r.id("sc", j) for j in range(start, stop)]
    with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
        rcs = list(ex.map(lambda c: r.quiet("create", "--bundle", bundle, c), cids))
    bad = sum(1 for rc in rcs if rc != 0)
    if bad:
        r.failures.append(f"scale: {bad} of {len(cids)} creates failed")
    return len(cids) - bad


def case_scale(rts, bundle, opts, res):
    """Case 5. By default each runtime is measured with only its own
    containers existing (populated, measured, removed, then the next
    runtime): 1000 of runc's waiting Go inits hold ~10 GiB and would slow
    every runtime's create alike. --scale-together keeps all three
    populations at once and interleaves the runtimes' calls."""
    levels = sorted(set(opts.scale_levels))
    per = {lv: {m: {r.name: [] for r in rts} for m in ("state", "list", "create")} for lv in levels}
    groups = [rts] if opts.scale_together else [[r] for r in rts]
    for group in groups:
        if not scale_group(group, bundle, opts, res, levels, per):
            break
    for lv in levels:
        if not any(per[lv]["state"][r.name] for r in rts):
            continue
        for m in ("state", "list", "create"):
            what = f"{m} with {lv} existing" + (" (cold)" if m == "create" else "")
            res.add("5 scale", what, "ms", per[lv][m], scale=1e-3)
    if not opts.scale_together:
        res.notes.append("scale: each runtime measured with only its own containers existing (--scale-together: all)")


def scale_group(rts, bundle, opts, res, levels, per):
    """Populates rts level by level and measures state/list/create at each;
    False when memory ran short."""
    have = {r.name: 0 for r in rts}
    per_container_kib = None
    try:
        for level in levels:
            need = sum(max(0, level - have[r.name]) for r in rts)
            if per_container_kib is not None:
                avail = mem_available_kib()
                reserve = 2 * MIB // KIB
                if need * per_container_kib > avail - reserve:
                    note = (
                        f"scale: level {level} needs ~{need * per_container_kib // 1024} MiB more, "
                        f"only {avail // 1024} MiB available; stopped at {max(have.values())}"
                    )
                    log(note)
                    res.notes.append(note)
                    return False
            before = mem_available_kib()
            for r in rts:
                if level > have[r.name]:
                    have[r.name] += populate(r, bundle, have[r.name], level, opts.parallel)
            if need and opts.scale_settle > 0:
                # A burst of creates leaves the kernel busy for seconds after
                # (measured: a lone create took 10.4 ms right after 1000
                # creates, 6.3 ms 40 s later, 5.0 ms with none); the
                # measurement is of the population, not of that burst.
                os.sync()
                time.sleep(opts.scale_settle)
            if need >= 50:
                per_container_kib = max(64, (before - mem_available_kib()) // need)
                key = "scale_kib_per_created_container_" + ("all_runtimes" if len(rts) > 1 else rts[0].name)
                res.extra[key] = per_container_kib
            for k in range(opts.scale_rounds):
                for r in rts:
                    us, rc = r.call("state", r.id("sc", 0))
                    if rc == 0:
                        per[level]["state"][r.name].append(us)
                    us, rc = r.call("list")
                    if rc == 0:
                        per[level]["list"][r.name].append(us)
                    cid = r.id(f"scn{level}", k)
                    time.sleep(opts.cold_pause)  # cold, as in case 1: comparable at every level
                    us, rc = r.call("create", "--bundle", bundle, cid)
                    if rc == 0:
                        per[level]["create"][r.name].append(us)
                    r.quiet("delete", "--force", cid)
        return True
    finally:
        for r in rts:
            ids = [c for c in r.existing() if "-sc" in c]
            with concurrent.futures.ThreadPoolExecutor(opts.parallel) as ex:
                list(ex.map(lambda c: r.quiet("delete", "--force", c), ids))


def wait4_maxrss(cmd, timeout=60):
    """Runs cmd; returns (exit code, peak RSS in KiB).

    The peak comes from wait4's ru_maxrss, which is the larger of the
    process's own peak and that of the children it reaped itself (the
    runtime's helper processes). ru_maxrss also counts the RSS of the
    process that forked it (kept across exec), so python must not be the
    direct parent: GNU time (about 1.1 MiB itself) is put in between and
    reports ru_maxrss of the runtime."""
    fd, out = tempfile.mkstemp(prefix="maxrss-")
    os.close(fd)
    try:
        rc = spawn_wait([TIME, "-q", "-f", "%M", "-o", out] + cmd, timeout=timeout)
        if rc == -999:
            return rc, None
        with open(out) as f:
            lines = [line for line in f.read().split() if line.isdigit()]
        return rc, int(lines[-1]) if lines else None
    finally:
        os.unlink(out)


def mem_probe(r, workdir, opts, limit, tries, counter):
    """True when `echo hi` runs under memory.limit = limit bytes, `tries` times in a row."""
    bundle = make_bundle(workdir, opts.ocirun, opts.busybox, f"mem-{r.name}-{counter[0]}", ("/bin/echo", "hi"), limit)
    counter[0] += 1
    ok = True
    for t in range(tries):
        cid = r.id("mem", f"{counter[0]}-{t}")
        outpath = os.path.join(workdir, "mem.out")
        with open(outpath, "w+b") as out:
            rc = spawn_wait(r.cmd("run", "--bundle", bundle, cid), stdout=out, stderr=r.log, timeout=60)
            out.seek(0)
            text = out.read()
        r.quiet("delete", "--force", cid)
        if rc != 0 or text != b"hi\n":
            ok = False
            break
    shutil.rmtree(bundle, ignore_errors=True)
    return ok


def min_memory_limit(r, workdir, opts):
    """Binary search, in 4 KiB pages, of the smallest memory limit that works."""
    lo_kib, hi_kib = opts.mem_low_kib, opts.mem_high_kib
    counter = [0]
    tries = opts.mem_tries
    if not mem_probe(r, workdir, opts, hi_kib * KIB, tries, counter):
        return None, f"> {hi_kib} KiB"
    if opts.mem_steps == 0:
        return hi_kib, f"<= {hi_kib} KiB (not searched)"
    if mem_probe(r, workdir, opts, lo_kib * KIB, tries, counter):
        return lo_kib, f"<= {lo_kib} KiB"
    steps = 0
    while hi_kib - lo_kib > 4 and steps < opts.mem_steps:
        mid = (lo_kib + hi_kib) // 2 // 4 * 4
        if mid <= lo_kib:
            break
        if mem_probe(r, workdir, opts, mid * KIB, tries, counter):
            hi_kib = mid
        else:
            lo_kib = mid
        steps += 1
    return hi_kib, f"{hi_kib} KiB (fails at {lo_kib} KiB)"


def stripped_size(binary, workdir):
    strip = shutil.which("strip")
    if not strip:
        return None
    out = os.path.join(workdir, "stripped")
    try:
        subprocess.run([strip, "-o", out, binary], check=True, capture_output=True)
        size = os.stat(out).st_size
    except (OSError, subprocess.CalledProcessError):
        return None
    finally:
        if os.path.exists(out):
            os.unlink(out)
    return size


def case_footprint(rts, bundle, bundle_sleep, workdir, opts, res):
    rss = {m: {r.name: [] for r in rts} for m in ("create", "exec", "run")}
    reps = opts.footprint_reps
    if not os.access(TIME, os.X_OK):
        res.notes.append(f"footprint: {TIME} (GNU time) missing: peak RSS not measured")
        reps = 0
    else:
        floor = wait4_maxrss(["/bin/true"])[1]
        res.notes.append(f"footprint: peak RSS floor (GNU time running /bin/true) is {floor} KiB")
    for i in range(reps):
        for r in rts:
            cid = r.id("fp", i)
            rc, kib = wait4_maxrss(r.cmd("create", "--bundle", bundle, cid))
            if rc == 0:
                rss["create"][r.name].append(kib)
            else:
                r.failures.append(f"footprint create: exit {rc}")
            r.quiet("delete", "--force", cid)
            rc, kib = wait4_maxrss(r.cmd("run", "--bundle", bundle, r.id("fpr", i)))
            if rc == 0:
                rss["run"][r.name].append(kib)
            else:
                r.failures.append(f"footprint run: exit {rc}")
    ids = start_sleepers(rts, bundle_sleep, "fpexec")
    try:
        for _ in range(reps):
            for r in rts:
                if r.name in ids:
                    rc, kib = wait4_maxrss(r.cmd("exec", ids[r.name], "/bin/true"))
                    if rc == 0:
                        rss["exec"][r.name].append(kib)
                    else:
                        r.failures.append(f"footprint exec: exit {rc}")
    finally:
        stop_sleepers(rts, ids)
    for m in ("create", "exec", "run"):
        res.add("6 footprint", f"peak RSS of `{m}` (wait4 ru_maxrss)", "KiB", rss[m])
    size = {r.name: [os.stat(r.binary).st_size / KIB] for r in rts}
    res.add("6 footprint", "binary size on disk", "KiB", size)
    ss = {r.name: [s / KIB] for r in rts for s in [stripped_size(r.binary, workdir)] if s}
    res.add("6 footprint", "binary size stripped", "KiB", ss)
    if opts.mem_search:
        res.extra["mem_searched"] = opts.mem_steps > 0
        found = {}
        for r in rts:
            kib, text = min_memory_limit(r, workdir, opts)
            res.extra.setdefault("min_memory_limit", {})[r.name] = text
            log(f"  {r.name}: smallest memory limit for `echo hi`: {text}")
            if kib is not None:
                found[r.name] = [kib]
        res.add("6 footprint", "smallest memory.limit running `echo`", "KiB", found)


def case_vm(opts, res):
    """Case 7: bench.py itself, cases run/lifecycle/exec, in the v2 guest."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "vm"))
    try:
        import vm  # tests/vm/vm.py (the VM room's harness)
    except ImportError as e:
        res.notes.append(f"vm: tests/vm/vm.py not available ({e}): case 7 skipped")
        return
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    args = [python, os.path.abspath(__file__), "--no-unshare", "--cases", ",".join(VM_CASES), "-n", str(opts.vm_n),
            "--ocirun", opts.ocirun, "--runtimes", ",".join(opts.runtime_names), "--json", "/results/bench.json",
            "--id-prefix", opts.id_prefix + "vm"]
    for name in ("runc", "crun"):
        if getattr(opts, name):
            args += [f"--{name}", getattr(opts, name)]
    script = "cd /\n" + " ".join(f"'{a}'" for a in args) + " > /results/bench.log 2>&1\necho $? > /results/bench.rc\n"
    try:
        run = vm.boot(script, mode="v2", timeout=opts.vm_timeout)
    except Exception as e:  # vm.Skip or a missing kernel/qemu
        res.notes.append(f"vm: cannot boot the v2 guest ({e}): case 7 skipped")
        return
    try:
        log(run.file("bench.log", "(no bench.log from the guest)"))
        data = run.file("bench.json")
        guest_rc = (run.file("bench.rc", "") or "").strip()
        if run.timed_out or data is None:
            res.notes.append(f"vm: guest run failed (qemu rc {run.rc}, timed out {run.timed_out})")
            res.failed = True
            return
        if guest_rc != "0":
            res.notes.append(f"vm: the benchmark in the guest exited {guest_rc or '?'} (see its output above)")
            res.failed = True
        for row in json.loads(data)["rows"]:
            per = {n: [s["median"]] if s else [] for n, s in row["stats"].items()}
            r = res.add("7 vm v2 " + row["case"], row["metric"], row["unit"], per, row["better"])
            # keep the guest's own min/max/n
            r["stats"] = {n: row["stats"].get(n) for n in res.names}
        res.notes.append(f"vm: case 7 ran in the cgroup v2 guest in {run.seconds:.0f} s (qemu TCG, -n {opts.vm_n})")
    finally:
        shutil.rmtree(run.results, ignore_errors=True)


# ------------------------------------------------------------------ targets


def targets(res):
    """Issue 7's targets; returns lines 'met/not met/n.a.: text'."""
    out = []

    def judge(ok, text):
        out.append(("n/a" if ok is None else "met" if ok else "NOT met") + ": " + text)

    def le(v, lim):
        return None if v is None else v <= lim

    r = res.ratio("1 run", "run /bin/true, sequential", "runc")
    judge(le(r, 0.40), f"case 1 run <= 0.40 x runc (is {fmt(r)})")
    r = res.ratio("1 run", "run /bin/true, sequential", "crun")
    judge(le(r, 0.90), f"case 1 run <= 0.90 x crun (is {fmt(r)})")
    for other, lim in (("runc", 0.40), ("crun", 0.90)):
        cold = [x for x in res.rows if x["case"] == "1 run" and x["metric"].startswith("run /bin/true, cold")]
        r = ratio_of(cold[0], other) if cold else None
        judge(le(r, lim), f"case 1 cold run (lone container) <= {lim:.2f} x {other} (is {fmt(r)}; informational)")
    r = res.ratio("3 exec", "exec /bin/true into a running container", "runc")
    judge(le(r, 0.40), f"case 3 exec <= 0.40 x runc (is {fmt(r)})")
    tp = [x for x in res.rows if x["case"] == "4 throughput"]
    r = ratio_of(tp[0], "runc") if tp else None
    judge(None if r is None else r >= 2.5, f"case 4 throughput >= 2.5 x runc (is {fmt(r)})")
    sc = [x for x in res.rows if x["case"] == "5 scale"]
    for m in ("state", "create", "list"):
        rows = [x for x in sc if x["metric"].startswith(m + " ") and x["stats"].get("ocirun")]
        if len(rows) >= 2:
            first, last = rows[0]["stats"]["ocirun"]["median"], rows[-1]["stats"]["ocirun"]["median"]
            growth = last / first if first else None
            lim = 1.5
            judge(le(growth, lim), f"case 5 {rows[-1]['metric']} / {rows[0]['metric']} <= {lim} (flat; is {fmt(growth)})")
        else:
            judge(None, f"case 5 {m} flat (not measured)")
    for m in ("create", "exec"):
        row = res.find("6 footprint", f"peak RSS of `{m}` (wait4 ru_maxrss)")
        s = row["stats"].get("ocirun") if row else None
        v = s["max"] if s else None
        judge(le(v, 2048), f"case 6 peak RSS of ocirun {m} <= 2048 KiB (max is {fmt(v)} KiB)")
    row = res.find("6 footprint", "smallest memory.limit running `echo`")
    s = row["stats"].get("ocirun") if row and res.extra.get("mem_searched") else None
    judge(le(s["median"] if s else None, 512), f"case 6 a 512 KiB container runs `echo` (smallest: {fmt(s['median']) if s else '-'} KiB)")
    return out


# -------------------------------------------------------------------- main


def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ocirun", help="ocirun binary (default: ./ocirun, then <repo>/build/ocirun)")
    p.add_argument("--runc", help="runc binary (default /usr/sbin/runc)")
    p.add_argument("--crun", help="crun binary (default /usr/bin/crun)")
    p.add_argument("--runtimes", default="ocirun,runc,crun", help="comma list, in interleaving order")
    p.add_argument("--cases", default=",".join(ALL_CASES), help="comma list of " + ",".join(ALL_CASES))
    p.add_argument("-n", "--iterations", dest="n", type=int, default=200, help="iterations of run/lifecycle/exec")
    p.add_argument("--parallel", type=int, default=8, help="containers in flight for throughput (and setup)")
    p.add_argument("--throughput-n", type=int, default=200)
    p.add_argument("--throughput-reps", type=int, default=3)
    p.add_argument("--scale-levels", default="1,100,1000")
    p.add_argument("--scale-rounds", type=int, default=20)
    p.add_argument("--scale-settle", type=float, default=5.0,
                   help="seconds of quiet (after a sync) between populating a level and measuring it")
    p.add_argument("--scale-together", action="store_true",
                   help="case 5 with every runtime's containers existing at once (default: each runtime alone)")
    p.add_argument("--cold-pause", type=float, default=0.05, help="seconds idle before a cold run/create")
    p.add_argument("--footprint-reps", type=int, default=10)
    p.add_argument("--no-mem-search", dest="mem_search", action="store_false")
    p.add_argument("--mem-low-kib", type=int, default=256)
    p.add_argument("--mem-high-kib", type=int, default=64 * 1024)
    p.add_argument("--mem-steps", type=int, default=16, help="bisection steps (0: only check the upper bound)")
    p.add_argument("--mem-tries", type=int, default=2, help="runs that must all succeed at one limit")
    p.add_argument("--vm-n", type=int, default=20, help="iterations of the cases run in the VM")
    p.add_argument("--vm-timeout", type=int, default=1800, help="seconds the VM may take")
    p.add_argument("--smoke", action="store_true", help="1 iteration of every case (for the test suite); implies --strict")
    p.add_argument("--strict", action="store_true", help="any failed runtime call fails the benchmark")
    p.add_argument("--json", help="write results as JSON here")
    p.add_argument("--markdown", help="write the results table as Markdown here")
    p.add_argument("--workdir", help="parent of the temporary work dir (default $TMPDIR)")
    p.add_argument("--id-prefix", default=f"ob{os.getpid()}", help="prefix of every container id")
    p.add_argument("--busybox", default=shutil.which("busybox", path="/bin:/usr/bin") or "/bin/busybox")
    p.add_argument("--no-unshare", action="store_true", help="do not hide " + UNIFIED + " in a private mount ns")
    opts = p.parse_args(argv)
    if opts.smoke:
        opts.n = 1
        opts.throughput_n = opts.parallel
        opts.throughput_reps = 1
        opts.scale_levels = "1,2"
        opts.scale_rounds = 1
        opts.scale_settle = 0.0
        opts.footprint_reps = 1
        opts.mem_steps = 0
        opts.mem_tries = 1
        opts.strict = True
        opts.cold_pause = 0.0
    opts.scale_levels = [int(x) for x in str(opts.scale_levels).split(",") if x]
    opts.cases = [c for c in opts.cases.split(",") if c]
    for c in opts.cases:
        if c not in ALL_CASES + ["vm"]:
            p.error(f"unknown case {c}")
    opts.ocirun = find_binary(
        opts.ocirun, "ocirun", [os.path.abspath("ocirun"), os.path.join(here, "..", "..", "build", "ocirun")]
    )
    if not opts.ocirun:
        p.error("ocirun binary not found: pass --ocirun")
    opts.ocirun = os.path.abspath(opts.ocirun)
    return opts


def reexec_in_private_ns():
    """crun refuses the hybrid layout: hide the cgroup2 mount for everyone."""
    if os.environ.get(INNER_ENV) or UNIFIED not in mountpoints():
        return
    env = dict(os.environ)
    env[INNER_ENV] = "1"
    script = f'umount {UNIFIED} && exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", sys.executable]
    argv += [os.path.abspath(__file__)] + sys.argv[1:]
    sys.stdout.flush()
    os.execvpe("unshare", argv, env)


def main(argv):
    opts = parse_args(argv)
    if os.geteuid() != 0:
        log("bench.py: must run as root")
        return 2
    if not opts.no_unshare:
        reexec_in_private_ns()
    binaries = {
        "ocirun": opts.ocirun,
        "runc": find_binary(opts.runc, "runc", ["/usr/sbin/runc"]),
        "crun": find_binary(opts.crun, "crun", ["/usr/bin/crun"]),
    }
    names = [n for n in opts.runtimes.split(",") if n]
    opts.runtime_names = [n for n in names if binaries.get(n)]
    opts.runc, opts.crun = binaries["runc"], binaries["crun"]
    workdir = tempfile.mkdtemp(prefix="ocirun-bench-", dir=opts.workdir)
    rts = []
    res = None
    rc = 0
    try:
        for n in names:
            if not binaries.get(n):
                log(f"{n}: not installed, skipped")
                continue
            rts.append(Runtime(n, binaries[n], workdir, opts.id_prefix))
        res = Results(rts)
        hidden = os.environ.get(INNER_ENV) and UNIFIED not in mountpoints()
        env_lines = [
            f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
            f"host: {platform.node()} kernel {platform.release()}, {os.cpu_count()} cpus, "
            f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            "cgroups: "
            + (
                f"all runtimes run in a private mount namespace with {UNIFIED} unmounted "
                "(crun refuses the hybrid layout), i.e. pure cgroup v1"
                if hidden
                else "as found on the host (no private mount namespace)"
            ),
            "timing: wall clock around each runtime process (perf_counter_ns), stdio /dev/null, "
            "runtimes interleaved; the machine is shared and noisy: compare ratios from the same run",
        ]
        env_lines += [f"{r.name}: {r.binary} ({r.version})" for r in rts]
        for line in env_lines:
            print(line, flush=True)
        res.extra["environment"] = env_lines
        bundle = make_bundle(workdir, opts.ocirun, opts.busybox)
        bundle_sleep = make_bundle(workdir, opts.ocirun, opts.busybox, "bundle-sleep", ("/bin/sleep", "1000000"))
        for case in opts.cases:
            t0 = time.monotonic()
            log(f"== {case}")
            if case == "run":
                case_run(rts, bundle, opts, res)
            elif case == "lifecycle":
                case_lifecycle(rts, bundle, opts, res)
            elif case == "exec":
                case_exec(rts, bundle_sleep, opts, res)
            elif case == "throughput":
                case_throughput(rts, bundle, opts, res)
            elif case == "scale":
                case_scale(rts, bundle, opts, res)
            elif case == "footprint":
                case_footprint(rts, bundle, bundle_sleep, workdir, opts, res)
            elif case == "vm":
                case_vm(opts, res)
            log(f"   ({time.monotonic() - t0:.1f} s)")
        print("\nTargets (issue 7):")
        for line in targets(res):
            print("  " + line)
        for n in res.notes:
            print("note: " + n)
    finally:
        for r in rts:
            left = r.cleanup(opts.parallel)
            if left:
                log(f"{r.name}: could not delete {left}")
                rc = 1
        if res is not None:
            if res.failed:
                rc = 1
            for r in rts:
                if not r.failures:
                    continue
                # A shared machine: other test suites kill, OOM and fill
                # things now and then. A few failures are reported; more
                # than 2% of the timed calls (or any, with --strict) fail.
                bad = opts.strict or len(r.failures) > 0.02 * max(1, r.calls)
                rc = 1 if bad else rc
                print(f"{'FAILURES' if bad else 'warning: sporadic failures'} for {r.name}: "
                      f"{len(r.failures)} of {r.calls} timed calls (failed runs are left out of the numbers):")
                for line in r.failures[:5]:
                    print("  " + line[:300])
            if opts.json:
                with open(opts.json, "w") as f:
                    json.dump({"rows": res.rows, "notes": res.notes, "extra": res.extra,
                               "targets": targets(res)}, f, indent=1)
            if opts.markdown:
                with open(opts.markdown, "w") as f:
                    f.write(markdown(res))
        shutil.rmtree(workdir, ignore_errors=True)
    print("bench: " + ("ok" if rc == 0 else "FAILED"), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
