#!/usr/bin/python3
"""Boots Debian's kernel under qemu (TCG) to test ocirun where this host
cannot: on pure cgroup v2, and under a real systemd as PID 1.

The guest sees the host's / read-only over 9p (made writable with a tmpfs
overlay), so the tree under test, its build, python3, pytest, runc and crun
are all at the same paths as on the host. A second 9p share (`results`) is a
fresh host directory: the host writes run.sh there, the guest runs it and
leaves its results there, then powers off.

Two modes:
  v2       the busybox initramfs chroots into the overlay (cgroup2 mounted on
           /sys/fs/cgroup) and runs `sh /results/run.sh`.
  systemd  the overlay's lower layer is a debootstrap'd Debian 12 (see
           build-systemd-rootfs.sh); the initramfs switches root to it with
           systemd as PID 1, which runs run.sh from a oneshot unit; the host's
           / is at /host in that guest.

The initramfs is built once per kernel and cached in the cache directory
($OCIRUN_VM_CACHE, default /var/cache/ocirun-vm), as is the Debian rootfs.

Command line (for use by hand; the pytest modules import this file):
  vm.py v2 SCRIPT          run SCRIPT (a shell script) in the v2 guest
  vm.py systemd SCRIPT     the same in the systemd guest
  OCIRUN_VM_SWITCH_ROOT=1 vm.py v2 SCRIPT
                           v2 with the overlay switch_root'ed onto / instead
                           of chroot'ed into
Results land in a temporary directory whose path is printed.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("OCIRUN_VM_CACHE", "/var/cache/ocirun-vm"))
QEMU = "qemu-system-x86_64"

# insmod order matters: each module after the ones it needs.
MODULES = [
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci",
    "fs/netfs/netfs",
    "fs/fscache/fscache",
    "net/9p/9pnet",
    "net/9p/9pnet_virtio",
    "fs/9p/9p",
    "fs/overlayfs/overlay",
]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do
  insmod "/modules/$m.ko" || echo "ocirun-vm: insmod $m failed"
done
mode=v2
rootfs=
root=chroot
keep=
for a in $(cat /proc/cmdline); do
  case "$a" in
    ocirun.mode=*) mode=${a#ocirun.mode=} ;;
    ocirun.root=*) root=${a#ocirun.root=} ;;
    ocirun.rootfs=*) rootfs=${a#ocirun.rootfs=} ;;
    ocirun.keep=*) keep=${a#ocirun.keep=} ;;
  esac
done
fail() { echo "ocirun-vm: FATAL: $*"; poweroff -f; }
opts=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /host /results /ovl /root2
mount -t 9p -o $opts,ro,cache=loose host /host || fail "mount host share"
mount -t 9p -o $opts,rw results /results || fail "mount results share"
mount -t tmpfs -o size=75% tmpfs /ovl
mkdir -p /ovl/upper /ovl/work
lower=/host$rootfs
mount -t overlay overlay -o lowerdir=$lower,upperdir=/ovl/upper,workdir=/ovl/work /root2 || fail "overlay"
mkdir -p /root2/results
mount --bind /results /root2/results

if [ "$mode" = systemd ]; then
  mkdir -p /root2/host /root2/etc/systemd/system/multi-user.target.wants
  mount --bind /host /root2/host
  cat > /root2/etc/systemd/system/ocirun-vm-tests.service <<EOF
[Unit]
Description=ocirun VM tests
Wants=dbus.service
After=dbus.service multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/bin/sh /results/run.sh; echo "ocirun-vm: run.sh exited \$\$?"; sync; echo o > /proc/sysrq-trigger'
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
EOF
  ln -sf ../ocirun-vm-tests.service /root2/etc/systemd/system/multi-user.target.wants/ocirun-vm-tests.service
  # Nothing here wants a terminal on the console.
  ln -sf /dev/null /root2/etc/systemd/system/serial-getty@ttyS0.service
  ln -sf /dev/null /root2/etc/systemd/system/getty@tty1.service
  umount /proc /sys 2>/dev/null
  mount --move /dev /root2/dev
  exec switch_root /root2 /lib/systemd/systemd
fi

mount -t proc proc /root2/proc
mount -t sysfs sysfs /root2/sys
mount -t cgroup2 -o nsdelegate cgroup2 /root2/sys/fs/cgroup || fail "mount cgroup2"
mount -t devtmpfs devtmpfs /root2/dev
mkdir -p /root2/dev/pts /root2/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /root2/dev/pts
mount -t tmpfs tmpfs /root2/dev/shm
mount -t tmpfs tmpfs /root2/run
# /tmp must be a real tmpfs (containerd's overlay snapshotter cannot stack on
# the overlay), but the tree under test may live in the host's /tmp (a fresh
# clone often does): those paths (ocirun.keep) are carried into the tmpfs.
mkdir -p /kept
i=0
for p in $(echo "$keep" | tr , ' '); do
  i=$((i + 1)); mkdir -p /kept/$i; mount --bind "/root2$p" /kept/$i || fail "keep $p"
done
mount -t tmpfs tmpfs /root2/tmp
i=0
for p in $(echo "$keep" | tr , ' '); do
  i=$((i + 1)); mkdir -p "/root2$p"; mount --move /kept/$i "/root2$p" || fail "keep $p"
done
hostname ocirun-vm
if [ "$root" = switch ]; then
  # The overlay becomes the mount namespace's root (as after a real boot):
  # setns() into a container's mount namespace then lands in its rootfs.
  # Under the chroot below it lands in this initramfs instead.
  exec switch_root /root2 /bin/sh -c 'cd / && /bin/sh /results/run.sh </dev/console >/dev/console 2>&1
    echo "ocirun-vm: run.sh exited $?" >/dev/console; sync; /bin/busybox poweroff -f'
fi
chroot /root2 /bin/sh -c 'cd / && exec /bin/sh /results/run.sh' </dev/console >/dev/console 2>&1
echo "ocirun-vm: run.sh exited $?"
sync
poweroff -f
"""


# The start of every inner script: output to /results/inner.log, and `step
# NAME CMD...` leaving NAME's output and exit status in /results/steps.
INNER_PRELUDE = r"""
exec >/results/inner.log 2>&1
mkdir -p /results/steps
step() {
  name=$1; shift
  echo "=== $name: $*"
  start=$(date +%s)
  "$@" >/results/steps/$name.out 2>&1
  echo $? >/results/steps/$name.rc
  echo "=== $name: rc $(cat /results/steps/$name.rc) in $(( $(date +%s) - start ))s"
}
"""


class Skip(Exception):
    """The host cannot run the VM (no qemu, no kernel)."""


def kernel():
    """(version, vmlinuz) of the newest Debian kernel in /boot with modules."""
    override = os.environ.get("OCIRUN_VM_KERNEL")
    cands = [override] if override else sorted(glob.glob("/boot/vmlinuz-*"))
    for vmlinuz in reversed(cands):
        ver = os.path.basename(vmlinuz)[len("vmlinuz-"):]
        if os.path.isdir(f"/lib/modules/{ver}/kernel") and os.access(vmlinuz, os.R_OK):
            return ver, vmlinuz
    raise Skip("no kernel in /boot with modules in /lib/modules (install linux-image-amd64)")


def check_host():
    if shutil.which(QEMU) is None:
        raise Skip(f"{QEMU} not found (install qemu-system-x86)")
    if os.geteuid() != 0:
        raise Skip("the VM tests need root (the 9p share maps guest root to host root)")
    return kernel()


def _decompress(src, dst):
    if src.endswith(".xz"):
        subprocess.run(["xz", "-dc", src], stdout=open(dst, "wb"), check=True)
    elif src.endswith(".zst"):
        subprocess.run(["zstd", "-dcq", src], stdout=open(dst, "wb"), check=True)
    else:
        shutil.copyfile(src, dst)


def initramfs(ver):
    """The cached initramfs for kernel ver (built when missing or stale)."""
    key = hashlib.sha256((INIT + "\n".join(MODULES)).encode()).hexdigest()[:12]
    out = CACHE / f"initramfs-{ver}-{key}.cpio.gz"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"initramfs-{ver}-*.cpio.gz"):
        old.unlink()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = Path(tmp) / "root"
        for d in ("bin", "proc", "sys", "dev", "modules"):
            (root / d).mkdir(parents=True)
        shutil.copy2("/bin/busybox", root / "bin/busybox")
        names = []
        for m in MODULES:
            found = glob.glob(f"/lib/modules/{ver}/kernel/{m}.ko*")
            if not found:
                raise Skip(f"module {m} missing from /lib/modules/{ver}")
            name = os.path.basename(m)
            _decompress(found[0], str(root / "modules" / f"{name}.ko"))
            names.append(name)
        (root / "modules.list").write_text("\n".join(names) + "\n")
        (root / "init").write_text(INIT)
        os.chmod(root / "init", 0o755)
        files = subprocess.run(["find", ".", "-print0"], cwd=root, check=True, capture_output=True).stdout
        cpio = subprocess.run(["cpio", "--null", "-o", "-H", "newc", "--quiet"], cwd=root, input=files,
                              check=True, capture_output=True).stdout
        part = Path(tmp) / "out.gz"
        subprocess.run(["gzip", "-9"], input=cpio, stdout=open(part, "wb"), check=True)
        os.rename(part, out)
    return out


def systemd_rootfs():
    """The cached Debian 12 + systemd root filesystem (built when missing)."""
    cp = subprocess.run([str(HERE / "build-systemd-rootfs.sh"), str(CACHE)], capture_output=True, text=True)
    if cp.returncode != 0:
        raise RuntimeError(f"building the systemd rootfs failed:\n{cp.stderr[-4000:]}")
    return cp.stdout.strip().splitlines()[-1]


class Run:
    def __init__(self, results, console, rc, seconds, timed_out, stalled=None):
        self.results = Path(results)
        self.console = console
        self.rc = rc
        self.seconds = seconds
        self.timed_out = timed_out
        # The guest kernel's first CPU-stall or lockup report, when it made
        # one (the guest was then stopped early): see watch().
        self.stalled = stalled

    def file(self, name, default=None):
        p = self.results / name
        return p.read_text(errors="replace") if p.exists() else default


def running_step(run):
    """(name, output so far) of the step the guest was in when it stopped
    without finishing it; None when every started step finished."""
    started = re.findall(r"^=== ([^:\s]+): ", run.file("inner.log") or "", re.M)
    if not started or run.file(f"steps/{started[-1]}.rc") is not None:
        return None
    return started[-1], run.file(f"steps/{started[-1]}.out", "")


def context(run, timeout=None):
    """What to show when a guest-side step failed or did not run."""
    head = f"qemu rc {run.rc}, {run.seconds:.0f}s{' (timed out)' if run.timed_out else ''}\n"
    if run.stalled:
        head += f"the guest kernel reported a stalled CPU and was stopped: {run.stalled}\n"
    cur = running_step(run)
    if cur:
        head += f"--- step {cur[0]}, unfinished (output so far, tail) ---\n{cur[1][-3000:]}\n"
    return (head + f"--- inner log (tail) ---\n{(run.file('inner.log') or '')[-3000:]}\n"
            f"--- console (tail) ---\n{run.console[-3000:]}")


def step(run, name):
    """(rc, output) of an inner step; None when it did not run."""
    rc = run.file(f"steps/{name}.rc")
    if rc is None:
        return None
    return int(rc.strip() or "1"), run.file(f"steps/{name}.out", "")


def guest_timeout(default):
    """A guest's time limit in seconds: $OCIRUN_VM_TIMEOUT, else default."""
    return int(os.environ.get("OCIRUN_VM_TIMEOUT", str(default)))


def module_marks(timeout):
    """pytestmark of a VM test module. pytest-timeout (tests/pytest.ini) ends
    the whole session: its limit must be above the guest's own, so that a
    stuck guest is killed by boot() and fails its module alone."""
    import pytest  # only the test modules call this

    return [pytest.mark.skipif(os.geteuid() != 0, reason="needs root"), pytest.mark.timeout(timeout + 300)]


def require_host():
    """Skips the calling test module where this host cannot boot a guest."""
    import pytest  # only the test modules call this

    try:
        check_host()
    except Skip as e:
        pytest.skip(str(e))


class GuestStall(UserWarning):
    """A guest's kernel stalled a CPU, and the guest was booted again."""


def stall_report(run, limit=4000):
    """The console from the guest kernel's first stall report on: what it
    printed about the stuck CPU (backtraces included)."""
    at = run.console.find(run.stalled) if run.stalled else -1
    return run.console[at:at + limit] if at >= 0 else ""


def module_guest(script, label, **boot_kw):
    """The body of a module-scoped guest fixture: boots, yields the Run,
    then removes its results (kept with OCIRUN_VM_KEEP=1).

    A guest whose kernel stalls a CPU is booted once more. A stalled CPU is a
    fault of the emulated machine or its kernel, which no process can cause
    with the kernel working: CI saw one once, a vCPU stuck with interrupts
    off in the middle of the systemd guest's run, and it never came back in
    dozens of boots here. The stall is not hidden: the kernel's report,
    with the step that was running, becomes a GuestStall warning in
    pytest's summary, and a second stall fails the module."""
    run = boot(script, **boot_kw)
    print(f"{label}: qemu rc {run.rc} in {run.seconds:.1f}s")
    if run.stalled:
        cur = running_step(run)
        warnings.warn(GuestStall(f"{label}: the guest kernel stalled a CPU after {run.seconds:.0f}s, during step "
                                 f"{cur[0] if cur else '(none)'}; booted it again. Its report:\n{stall_report(run)}"))
        if not os.environ.get("OCIRUN_VM_KEEP"):
            shutil.rmtree(run.results, ignore_errors=True)
        run = boot(script, **boot_kw)
        print(f"{label}, booted again: qemu rc {run.rc} in {run.seconds:.1f}s")
    yield run
    if not os.environ.get("OCIRUN_VM_KEEP"):
        shutil.rmtree(run.results, ignore_errors=True)


def assert_finished(run, timeout, what="the guest"):
    """The guest ran its script to the end within timeout seconds."""
    assert not run.stalled, f"{what} stalled a CPU (twice) and was stopped\n{context(run)}\n{stall_report(run)}"
    assert not run.timed_out, f"{what} did not finish in {timeout}s\n{context(run)}"
    assert run.file("done") is not None, f"{what} stopped before the end\n{context(run)}"


def must_step(run, name):
    """(rc, output) of an inner step; an AssertionError (a test failure)
    naming the step, with the guest's logs, when it did not run."""
    r = step(run, name)
    if r is None:
        raise AssertionError(f"step {name} did not run in the guest\n{context(run)}")
    return r


def assert_inner_pytest(run, name="pytest", xml="pytest.xml", where="in the guest", ok_rc=(0,), no_skips=False):
    """The pytest run of step name passed: it wrote its report (xml), no
    test failed, its exit status is in ok_rc and it ran something; with
    no_skips, nothing skipped either. Returns (test class names, output)."""
    rc, out = must_step(run, name)
    report = run.file(xml)
    assert report is not None, f"inner pytest wrote no report (rc {rc}):\n{out[-6000:]}"
    ran, failures, names = junit(report)
    assert not failures, f"{len(failures)} of {ran} inner tests failed {where}:\n\n" + "\n\n".join(failures)
    assert rc in ok_rc and ran > 0, f"inner pytest rc {rc}, {ran} tests:\n{out[-6000:]}"
    if no_skips:
        assert "SKIPPED" not in out and " skipped" not in out, f"inner tests skipped {where}:\n{out[-3000:]}"
    return names, out


def junit(xml):
    """(number of tests, ["class::name (failure): message\ntext", ...])."""
    import xml.etree.ElementTree as ET
    root = ET.fromstring(xml)
    failures, ran = [], 0
    for tc in root.iter("testcase"):
        ran += 1
        for kind in ("failure", "error"):
            for el in tc.findall(kind):
                failures.append(f"{tc.get('classname')}::{tc.get('name')} ({kind}): {el.get('message', '')}\n"
                                f"{(el.text or '')[-2500:]}")
    return ran, failures, {tc.get("classname", "") for tc in root.iter("testcase")}


def _die_with_parent():
    # qemu must not outlive a test run that was killed (pytest-timeout, ^C).
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)


def boot(script, mode="v2", timeout=600, results=None, memory=2048, smp=2, switch_root=False, append_extra=""):
    """Runs script (shell text) in the guest; returns a Run once it is off.
    v2 mode chroots into the overlay unless switch_root: then the overlay is
    moved onto / (busybox switch_root), so that setns() into a container's
    mount namespace reaches the container's root, as on a booted system.
    append_extra goes to the kernel command line (e.g.
    "systemd.unified_cgroup_hierarchy=0" for a hybrid systemd guest)."""
    ver, vmlinuz = check_host()
    initrd = initramfs(ver)
    append = f"console=ttyS0 panic=-1 ocirun.mode={mode}"
    if mode == "systemd":
        append += f" ocirun.rootfs={systemd_rootfs()} systemd.show_status=0 loglevel=5"
        append += " systemd.journald.forward_to_console=0"
    else:
        append += " loglevel=5"
        if switch_root:
            append += " ocirun.root=switch"
    # Trees under the host's /tmp (the repo, the binary under test) stay
    # visible over the guest's own /tmp.
    keep = set()
    here = Path(__file__).resolve().parents[2]
    for p in (str(here), os.path.dirname(os.path.abspath(os.environ.get("OCIRUN", str(here))))):
        if p.startswith("/tmp/"):
            keep.add("/".join(p.split("/")[:3]))  # its top directory under /tmp
    if keep:
        append += " ocirun.keep=" + ",".join(sorted(keep))
    if append_extra:
        append += " " + append_extra
    results = Path(results or tempfile.mkdtemp(prefix="ocirun-vm-"))
    (results / "run.sh").write_text(script)
    console_path = results / "console.log"
    cmd = [QEMU, "-accel", "tcg", "-cpu", "max", "-m", str(memory), "-smp", str(smp),
           "-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio", "-nodefaults",
           "-kernel", vmlinuz, "-initrd", str(initrd), "-append", append,
           "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
           "-virtfs", f"local,path={results},mount_tag=results,security_model=none,multidevs=remap"]
    start = time.monotonic()
    with open(console_path, "wb") as console:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                             preexec_fn=_die_with_parent)
        try:
            rc, timed_out, stalled = watch(p, console_path, timeout)
        except BaseException:
            p.kill()
            p.wait()
            raise
    secs = time.monotonic() - start
    return Run(results, console_path.read_text(errors="replace"), rc, secs, timed_out, stalled)


# What a guest kernel prints when a CPU stopped making progress: RCU's stall
# detector (21 s, Debian's default) and the soft-lockup watchdog. Such a
# guest does not recover; it gets STALL_GRACE seconds to print its
# backtraces (loglevel=5 lets them onto the console), then is stopped.
STALL = re.compile(rb"rcu: INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stall[^\n]*|watchdog: BUG: soft lockup[^\n]*")
STALL_GRACE = 30


def watch(p, console_path, timeout, grace=STALL_GRACE, poll=1.0):
    """Waits for the qemu process p, whose console goes to console_path:
    (rc, timed_out, the first stall line or None). p is killed timeout
    seconds after the start, or grace seconds after a stall report."""
    start = time.monotonic()
    stalled, stalled_at, pos = None, None, 0
    while True:
        try:
            return p.wait(timeout=poll), False, stalled
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if stalled is None:
            with open(console_path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
            # Whole lines only: one still being written is read again.
            chunk = chunk[:chunk.rfind(b"\n") + 1]
            pos += len(chunk)
            m = STALL.search(chunk)
            if m:
                stalled, stalled_at = m.group(0).decode(errors="replace").strip(), now
        if now - start >= timeout or (stalled_at is not None and now - stalled_at >= grace):
            p.kill()
            return p.wait(), stalled_at is None, stalled


def main(argv):
    if len(argv) != 3 or argv[1] not in ("v2", "systemd"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        r = boot(Path(argv[2]).read_text(), mode=argv[1], timeout=int(os.environ.get("OCIRUN_VM_TIMEOUT", "600")),
                 switch_root=os.environ.get("OCIRUN_VM_SWITCH_ROOT") == "1")
    except Skip as e:
        print(f"skip: {e}", file=sys.stderr)
        return 77
    sys.stdout.write(r.console)
    print(f"\nqemu rc={r.rc} in {r.seconds:.1f}s{' (timed out)' if r.timed_out else ''}; results in {r.results}")
    return 0 if r.rc == 0 and not r.timed_out else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
