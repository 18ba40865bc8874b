"""Docker (dockerd 20.10 through containerd's runc v2 shim) with ocirun
registered in daemon.json, against runc as the control."""

import json
import time

import pytest

from engines import ocirun_binary, run, run_in_pty, wait_for
from images import BB

# The client sets the window size just after the process starts: wait for it.
TTY = 'tty; for i in $(seq 50); do s=$(stty size 2>/dev/null); [ -n "$s" ] && break; usleep 100000; done; echo "size=$s"; '
TRAP = 'echo started; trap "echo got-usr1" USR1; trap "echo got-term; exit 7" TERM; while :; do sleep 0.1; done'


def rt_args(rt):
    return ["--runtime", rt]


def test_run_rm_exit_code(docker, dnames, rt):
    n = dnames()
    r = docker("run", "--rm", "--name", n, "--network", "none", *rt_args(rt), BB, "sh", "-c", "echo hi; exit 3",
               rt=rt, op="run --rm", check=False)
    assert r.rc == 3, f"[docker run --rm runtime={rt}] exit code not passed through: {r}"
    assert r.out == "hi\n", f"[docker run --rm runtime={rt}] {r}"
    assert n not in docker("ps", "-a", "--format", "{{.Names}}").out, f"[docker run --rm runtime={rt}] not removed"


def test_create_error_reaches_client(docker, dnames, rt):
    r = docker("run", "--rm", "--name", dnames(), "--network", "none", *rt_args(rt), BB, "no-such-binary",
               rt=rt, op="run (failing create)", check=False)
    assert r.rc != 0
    assert 'exec: "no-such-binary": executable file not found in $PATH' in r.err, \
        f"[docker run runtime={rt}] the runtime's error did not reach the client: {r}"


def test_detached_logs_exec_kill_stop_rm(docker, dnames, rt):
    n = dnames()
    docker("run", "-d", "--name", n, "--network", "none", *rt_args(rt), BB, "sh", "-c", TRAP, rt=rt, op="run -d")
    assert wait_for(lambda: "started" in docker("logs", n).out), f"[docker logs runtime={rt}] no output"
    assert docker.inspect(n, "{{.State.Status}}") == "running"

    r = docker("exec", n, "sh", "-c", "echo in-exec; echo err-exec >&2; exit 4", rt=rt, op="exec", check=False)
    assert (r.rc, r.out, r.err) == (4, "in-exec\n", "err-exec\n"), f"[docker exec runtime={rt}] {r}"
    r = docker("exec", "-u", "1000", "-w", "/tmp", "-e", "FOO=bar", n, "sh", "-c", 'id -u; pwd; echo $FOO',
               rt=rt, op="exec -u -w -e")
    assert r.out.split() == ["1000", "/tmp", "bar"], f"[docker exec runtime={rt}] {r}"

    rc, out = run_in_pty(docker.cmd("exec", "-it", n, "sh", "-c", TTY + "exit 5"),
                         what=f"docker exec -it runtime={rt}", env=docker.env)
    assert rc == 5, f"[docker exec -it runtime={rt}] rc={rc} out={out!r}"
    assert "/dev/pts/" in out and "size=40 100" in out, f"[docker exec -it runtime={rt}] no terminal: {out!r}"

    top = docker("top", n, rt=rt, op="top").out
    assert "sleep" in top and "trap" in top, f"[docker top runtime={rt}] {top}"

    docker("kill", "-s", "USR1", n, rt=rt, op="kill -s USR1")
    assert wait_for(lambda: "got-usr1" in docker("logs", n).out), f"[docker kill -s USR1 runtime={rt}] not delivered"
    assert docker.inspect(n, "{{.State.Status}}") == "running"

    docker("stop", "-t", "10", n, rt=rt, op="stop")
    assert docker.inspect(n, "{{.State.Status}} {{.State.ExitCode}}") == "exited 7", f"[docker stop runtime={rt}]"
    assert "got-term" in docker("logs", n).out
    docker("rm", n, rt=rt, op="rm")
    assert n not in docker("ps", "-a", "--format", "{{.Names}}").out


def test_stop_kills_after_timeout(docker, dnames, rt):
    n = dnames()
    # PID 1 without a handler ignores SIGTERM: stop must SIGKILL after -t.
    docker("run", "-d", "--name", n, "--network", "none", *rt_args(rt), BB, "sleep", "1000", rt=rt, op="run -d")
    t = time.time()
    docker("stop", "-t", "1", n, rt=rt, op="stop -t 1")
    took = time.time() - t
    assert docker.inspect(n, "{{.State.ExitCode}}") == "137", f"[docker stop runtime={rt}] not SIGKILLed"
    assert 0.9 < took < 15, f"[docker stop -t 1 runtime={rt}] took {took:.1f}s"


def test_it_run_through_pty(docker, dnames, rt):
    rc, out = run_in_pty(docker.cmd("run", "--rm", "-it", "--name", dnames(), "--network", "none", *rt_args(rt), BB,
                                    "sh", "-c", TTY + "exit 6"), what=f"docker run -it runtime={rt}", env=docker.env)
    assert rc == 6 and "/dev/pts/0" in out and "size=40 100" in out, f"[docker run -it runtime={rt}] rc={rc} {out!r}"


def test_pause_unpause(docker, dnames, rt):
    n = dnames()
    docker("run", "-d", "--name", n, "--network", "none", *rt_args(rt), BB, "sh", "-c",
           "while :; do date +%s%N > /tmp/tick; usleep 20000; done", rt=rt, op="run -d")
    docker("pause", n, rt=rt, op="pause")
    assert docker.inspect(n, "{{.State.Status}}") == "paused"
    # Frozen: the ticker does not move. (exec is refused while paused, so read
    # the file through the init's root.)
    ns_pid = docker.inspect(n, "{{.State.Pid}}")
    tick = f"/proc/{ns_pid}/root/tmp/tick"
    a = open(tick).read()
    time.sleep(0.3)
    assert open(tick).read() == a, f"[docker pause runtime={rt}] processes still run"
    docker("unpause", n, rt=rt, op="unpause")
    assert docker.inspect(n, "{{.State.Status}}") == "running"
    assert wait_for(lambda: open(tick).read() != a, timeout=5), f"[docker unpause runtime={rt}] still frozen"


def test_stats_no_stream(docker, dnames, rt):
    n = dnames()
    docker("run", "-d", "--name", n, "--network", "none", "--memory", "64m", *rt_args(rt), BB, "sleep", "1000",
           rt=rt, op="run -d")
    r = docker("stats", "--no-stream", "--format", "{{json .}}", n, rt=rt, op="stats --no-stream")
    st = json.loads(r.out.strip().splitlines()[-1])
    assert st["PIDs"] == "1", f"[docker stats runtime={rt}] {st}"
    assert st["MemUsage"].endswith("/ 64MiB") and not st["MemUsage"].startswith("0B"), \
        f"[docker stats runtime={rt}] {st}"


def test_update_resources(docker, dnames, rt):
    n = dnames()
    docker("run", "-d", "--name", n, "--network", "none", *rt_args(rt), BB, "sleep", "1000", rt=rt, op="run -d")
    docker("update", "--memory", "100m", "--memory-swap", "200m", "--cpus", "0.5", "--pids-limit", "50", n,
           rt=rt, op="update")
    r = docker("exec", n, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
               "/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/pids/pids.max", rt=rt, op="exec after update")
    assert r.out.split() == [str(100 << 20), "50000", "100000", "50"], f"[docker update runtime={rt}] {r}"


def _seccomp_profile(tmp_path):
    # Default allow; mkdir/mkdirat fail with EPERM (errnoRet 1).
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    p = tmp_path / "seccomp.json"
    p.write_text(json.dumps(prof))
    return p


# (id, docker run options, command, substring expected in stdout)
OPTION_CASES = [
    ("read-only", ["--read-only"], "touch /x 2>&1; echo rc=$?", "Read-only file system"),
    ("read-only-tmpfs", ["--read-only", "--tmpfs", "/t:size=1m,mode=1777"],
     "touch /t/x && grep ' /t ' /proc/mounts", "tmpfs /t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k"),
    ("cap-drop-add", ["--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--cap-add", "CHOWN"],
     "grep -E 'Cap(Eff|Bnd)' /proc/self/status", "CapEff:\t0000000000001001\nCapBnd:\t0000000000001001"),
    ("user", ["--user", "1000:1000", "--group-add", "65534"], "id", "uid=1000(user) gid=1000(user) groups=1000(user),65534(nobody)"),
    ("memory", ["--memory", "64m"], "cat /sys/fs/cgroup/memory/memory.limit_in_bytes", str(64 << 20)),
    ("pids-limit", ["--pids-limit", "33"], "cat /sys/fs/cgroup/pids/pids.max", "33"),
    ("cpus", ["--cpus", "1.5"], "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us", "150000"),
    ("no-new-privileges", ["--security-opt", "no-new-privileges"], "grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t1"),
    ("seccomp-default", [], "grep Seccomp: /proc/self/status; unshare -U true 2>&1; echo rc=$?", "Seccomp:\t2"),
    ("seccomp-unconfined", ["--security-opt", "seccomp=unconfined"], "grep Seccomp: /proc/self/status", "Seccomp:\t0"),
    ("seccomp-profile", ["--security-opt", "seccomp=PROFILE"], "mkdir /m 2>&1; echo rc=$?",
     "Operation not permitted\nrc=1"),
    ("network-none", ["--network", "none"], "ls /sys/class/net", "lo\n"),
    ("hostname", ["--hostname", "e2e-host", "--network", "none"], "hostname; cat /etc/hostname", "e2e-host\ne2e-host"),
    ("sysctl", ["--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.msgmax=12345"],
     "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax", "1\n12345"),
    ("ulimit", ["--ulimit", "nofile=1000:2000", "--ulimit", "nproc=500:600"],
     "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu", "1000\n2000\n500\n600"),
    ("init", ["--init"], "ps -o pid,comm", "1 docker-init"),
    ("env-workdir", ["-e", "FOO=bar", "-w", "/tmp"], "echo $FOO; pwd", "bar\n/tmp"),
    ("oom-score-adj", ["--oom-score-adj", "500"], "cat /proc/self/oom_score_adj", "500"),
    ("shm-size", ["--shm-size", "8m"], "grep /dev/shm /proc/mounts", "size=8192k"),
    ("cgroupns-private", ["--cgroupns", "private"], "grep pids /proc/self/cgroup", ":pids:/\n"),
    ("device", ["--device", "/dev/null:/dev/mynull"], "echo x > /dev/mynull && stat -c '%F %t:%T' /dev/mynull",
     "character special file 1:3"),
    ("device-cgroup-rule", ["--device-cgroup-rule", "c 1:3 rwm"], "cat /sys/fs/cgroup/devices/devices.list", "c 1:3 rwm"),
    ("cpuset-shares", ["--cpuset-cpus", "0", "--cpu-shares", "512", "--memory-reservation", "32m"],
     "cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
     f"0\n512\n{32 << 20}"),
    ("mount-tmpfs", ["--mount", "type=tmpfs,destination=/tm,tmpfs-size=2m,tmpfs-mode=0700"], "grep ' /tm ' /proc/mounts",
     "size=2048k,mode=700"),
]


@pytest.mark.parametrize("case", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_run_option(docker, dnames, rt, case, tmp_path):
    cid, opts, script, expect = case
    opts = [f"seccomp={_seccomp_profile(tmp_path)}" if o == "seccomp=PROFILE" else o for o in opts]
    r = docker("run", "--rm", "--name", dnames(), *rt_args(rt), *opts, BB, "sh", "-c", script,
               rt=rt, op=f"run {' '.join(opts)}", check=False)
    assert r.rc == 0 and expect in r.out, f"[docker run {cid} runtime={rt}] expected {expect!r} in stdout: {r}"
    if cid == "seccomp-default":
        # Docker's default profile refuses unshare(CLONE_NEWUSER) here.
        assert "rc=0" not in r.out, f"[docker run seccomp default runtime={rt}] {r}"


def test_volumes_bind_and_named(docker, dnames, rt, tmp_path):
    host = tmp_path / "bind"
    host.mkdir()
    (host / "in").write_text("from-host\n")
    vol = f"e2evol-{rt}-{dnames()}"
    try:
        r = docker("run", "--rm", "--name", dnames(), "--network", "none", *rt_args(rt),
                   "-v", f"{host}:/b", "-v", f"{host}:/ro:ro", "-v", f"{vol}:/vol", BB, "sh", "-c",
                   "cat /b/in; echo out > /b/out; echo v > /vol/f; touch /ro/x 2>&1; grep -E ' /(b|ro|vol) ' /proc/mounts",
                   rt=rt, op="run -v")
        assert "from-host" in r.out and "Read-only file system" in r.out, f"[docker run -v runtime={rt}] {r}"
        assert (host / "out").read_text() == "out\n"
        r = docker("run", "--rm", "--name", dnames(), "--network", "none", *rt_args(rt), "-v", f"{vol}:/vol", BB,
                   "cat", "/vol/f", rt=rt, op="run -v named (second container)")
        assert r.out == "v\n", f"[docker named volume runtime={rt}] {r}"
    finally:
        docker("volume", "rm", "-f", vol, check=False)


def test_bridge_network(docker, dnames, rt):
    # This dockerd has its own network namespace, so the default bridge
    # (docker0 + veth + iptables) is real without touching the host.
    r = docker("run", "--rm", "--name", dnames(), *rt_args(rt), BB, "sh", "-c",
               "ip -4 addr show eth0 | grep -q 'inet 172.17.' && ping -c1 -W2 $(ip route | awk '/default/{print $3}')",
               rt=rt, op="run (bridge)", check=False)
    assert r.rc == 0 and "1 packets received" in r.out, f"[docker run bridge runtime={rt}] {r}"


def test_restart_on_failure(docker, dnames, rt):
    n = dnames()
    docker("run", "-d", "--name", n, "--network", "none", "--restart", "on-failure:2", *rt_args(rt), BB,
           "sh", "-c", "echo run; exit 3", rt=rt, op="run --restart on-failure:2")
    ok = wait_for(lambda: docker.inspect(n, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}") == "2 exited 3",
                  timeout=30)
    assert ok, f"[docker --restart runtime={rt}] {docker.inspect(n, '{{.RestartCount}} {{.State.Status}}')}"
    assert docker("logs", n).out.count("run") == 3


def test_healthcheck(docker, dnames, rt):
    n = dnames()
    docker("run", "-d", "--name", n, "--network", "none", *rt_args(rt), "--health-cmd", "test -e /tmp/ready",
           "--health-interval", "1s", "--health-retries", "1", BB, "sh", "-c", "sleep 1; touch /tmp/ready; sleep 1000",
           rt=rt, op="run --health-cmd")
    ok = wait_for(lambda: docker.inspect(n, "{{.State.Health.Status}}") == "healthy", timeout=30)
    assert ok, f"[docker healthcheck runtime={rt}] {docker.inspect(n, '{{json .State.Health}}')}"
    docker("exec", n, "rm", "/tmp/ready")
    ok = wait_for(lambda: docker.inspect(n, "{{.State.Health.Status}}") == "unhealthy", timeout=30)
    assert ok, f"[docker healthcheck runtime={rt}] did not turn unhealthy"


def test_state_dir_is_the_runtimes(docker, dnames, rt):
    """The shim hands --root to the runtime; the container state there is the
    selected runtime's, which `<runtime> state` reads back."""
    n = dnames()
    docker("run", "-d", "--name", n, "--network", "none", *rt_args(rt), BB, "sleep", "1000", rt=rt, op="run -d")
    cid = docker.inspect(n, "{{.Id}}")
    binary = ocirun_binary() if rt == "ocirun" else "runc"
    st = json.loads(run([binary, "--root", docker.runtime_root, "state", cid], what=f"{rt} state").out)
    assert st["status"] == "running" and st["pid"] == int(docker.inspect(n, "{{.State.Pid}}"))


def test_default_runtime(docker_default, rt):
    """With default-runtime ocirun in daemon.json, a plain `docker run` uses
    ocirun (and `--runtime runc` still selects runc)."""
    d = docker_default
    args = ["--runtime", "runc"] if rt == "runc" else []
    n = f"dd-{rt}"
    d("run", "-d", "--name", n, *args, BB, "sh", "-c", "echo up; sleep 1000", rt=rt, op="run (default-runtime)")
    try:
        assert d.inspect(n, "{{.HostConfig.Runtime}}") == rt
        cid = d.inspect(n, "{{.Id}}")
        binary = ocirun_binary() if rt == "ocirun" else "runc"
        st = json.loads(run([binary, "--root", d.runtime_root, "state", cid], what=f"{rt} state").out)
        assert st["status"] == "running"
        assert wait_for(lambda: d("logs", n).out == "up\n")
        r = d("exec", n, "sh", "-c", "exit 9", check=False)
        assert r.rc == 9
        r = d("run", "--rm", *args, BB, "sh", "-c", "exit 4", check=False, rt=rt, op="run --rm (default-runtime)")
        assert r.rc == 4, r
    finally:
        d("rm", "-f", n, check=False)


def test_stdin_passthrough(docker, dnames, rt):
    r = docker("run", "--rm", "-i", "--name", dnames(), "--network", "none", *rt_args(rt), BB, "sh", "-c",
               "cat; echo end", input="line1\nline2\n", rt=rt, op="run -i")
    assert r.out == "line1\nline2\nend\n", f"[docker run -i runtime={rt}] {r}"


def test_join_namespaces_of_another_container(docker, dnames, rt):
    """--network/--ipc/--pid container:X: the runtime joins X's namespaces by
    path; restart, exec -d and wait on the same container."""
    base = dnames()
    docker("run", "-d", "--name", base, "--ipc", "shareable", "--network", "none", *rt_args(rt), BB, "sleep", "1000",
           rt=rt, op="run -d")
    want = docker("exec", base, "sh", "-c", "for n in net ipc pid; do readlink /proc/1/ns/$n; done").out
    r = docker("run", "--rm", "--name", dnames(), *rt_args(rt), "--network", f"container:{base}", "--ipc",
               f"container:{base}", "--pid", f"container:{base}", BB, "sh", "-c",
               "for n in net ipc pid; do readlink /proc/self/ns/$n; done; tr '\\0' ' ' < /proc/1/cmdline",
               rt=rt, op="run --network/--ipc/--pid container:X")
    assert r.out == want + "sleep 1000 ", f"[docker run container:X runtime={rt}] {r.out!r} vs {want!r}"
    docker("restart", "-t", "1", base, rt=rt, op="restart")
    assert docker.inspect(base, "{{.State.Status}}") == "running"
    docker("exec", "-d", base, "sh", "-c", "echo detached > /tmp/d", rt=rt, op="exec -d")
    assert wait_for(lambda: docker("exec", base, "cat", "/tmp/d", check=False).out == "detached\n")
    docker("kill", base, rt=rt, op="kill")
    assert docker("wait", base, rt=rt, op="wait").out.strip() == "137"
