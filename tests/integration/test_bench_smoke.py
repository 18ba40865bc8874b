"""The benchmark (tests/bench/bench.py, `make bench`) still works: every case
runs once for every installed runtime and cleans up after itself. No timing
is asserted: the machine is shared and the numbers mean nothing at n=1."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import REPO, _cgroup_dirs_named, _mounts_under, ocirun_binary

BENCH = REPO / "tests" / "bench" / "bench.py"
CASES = {"1 run", "2 lifecycle", "3 exec", "4 throughput", "5 scale", "6 footprint"}


def test_bench_every_case_once(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the benchmark creates containers: needs root")
    prefix = f"bsm{os.getpid()}"
    out = tmp_path / "bench.json"
    work = tmp_path / "work"
    work.mkdir()
    cmd = [sys.executable, str(BENCH), "--smoke", "--ocirun", ocirun_binary(), "--json", str(out),
           "--id-prefix", prefix, "--workdir", str(work)]
    with tempfile.TemporaryFile("w+") as so:
        cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=so, stderr=subprocess.STDOUT, text=True,
                            timeout=600)
        so.seek(0)
        text = so.read()
    assert cp.returncode == 0, text
    assert "bench: ok" in text

    data = json.loads(out.read_text())
    rows = data["rows"]
    assert {r["case"] for r in rows} == CASES, text
    runtimes = ["ocirun"] + [n for n, b in (("runc", "/usr/sbin/runc"), ("crun", "/usr/bin/crun"))
                             if os.access(b, os.X_OK) or shutil.which(n)]
    have_time = os.access("/usr/bin/time", os.X_OK)  # GNU time, for peak RSS
    for row in rows:
        if "peak RSS" in row["metric"] and not have_time:
            continue
        for rt in runtimes:
            s = row["stats"].get(rt)
            assert s is not None and s["n"] >= 1, f"{rt} has no result for {row['case']} {row['metric']}: {text}"
            assert s["median"] > 0
    # the scale case ran at two population sizes, three measurements each
    assert len([r for r in rows if r["case"] == "5 scale"]) == 6
    assert len(data["targets"]) >= 10

    # nothing left: work dir removed, no cgroup, mount or process with our ids
    assert list(work.iterdir()) == []
    assert _cgroup_dirs_named(prefix) == []
    assert _mounts_under(str(work)) == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert prefix not in ps
