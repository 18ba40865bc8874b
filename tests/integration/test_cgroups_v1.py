"""The cgroup tests again on a pure cgroup v1 host, emulated on a hybrid one:
every ocirun call runs in a private mount namespace where the cgroup2 tree
at /sys/fs/cgroup/unified is unmounted, so ocirun sees only the v1
hierarchies (as on a host booted with systemd.legacy_systemd_cgroup_controller
or without systemd). runc, the reference, runs as usual: its v1 values are
the same on both layouts."""

import os
import shutil
from pathlib import Path

import pytest

from conftest import Runtime, _teardown, ocirun_binary
import test_cgroups
from test_cgroups import (  # noqa: F401  (collected here again, under pure v1)
    test_events_stats_shape,
    test_events_stream_oom_and_exit,
    test_exec_cgroup,
    test_kill_all_forked_children,
    test_limits_seen_inside,
    test_pause_created_container,
    test_pause_resume,
    test_resources_match_runc,
    test_update_errors_match_runc,
    test_update_flags_and_stored_config,
    test_update_resources_file,
    test_update_stopped_container,
)
from test_cgroups_devices import (  # noqa: F401
    test_update_never_denies_allowed_devices,
    test_update_to_blacklist_and_back,
)


def _hybrid():
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == "/sys/fs/cgroup/unified" and " - cgroup2 " in line for line in f)


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare(1)"),
    pytest.mark.skipif(not _hybrid() or test_cgroups.V2_ONLY,
                       reason="pure v1 is emulated by hiding the cgroup2 tree of a hybrid host"),
]


@pytest.fixture(scope="session")
def pure_v1_ocirun(workdir):
    """A wrapper that runs ocirun where /sys/fs/cgroup/unified is not mounted."""
    w = workdir / "ocirun-pure-v1"
    w.write_text("#!/bin/sh\n"
                 "exec unshare -m --propagation private sh -c "
                 "'umount /sys/fs/cgroup/unified && exec \"$0\" \"$@\"' " f"'{os.path.abspath(ocirun_binary())}' \"$@\"\n")
    w.chmod(0o755)
    return str(w)


@pytest.fixture
def ocirun(tmp_path_factory, request, pure_v1_ocirun):
    root = tmp_path_factory.mktemp("root")
    rt = Runtime(pure_v1_ocirun, root, "ocirun")
    yield rt
    _teardown(rt, request, tmp_path_factory.getbasetemp())


def _unified_path(pid):
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def test_pure_v1_has_no_unified_cgroup(ocirun, bundle, cid):
    """The emulation holds: ocirun makes no cgroup2 directory (there is none
    to be seen), the container's init stays in its parent's cgroup2 cgroup,
    and the v1 hierarchies hold the container."""
    bundle.set_args("sleep", "1000").write()
    ocirun("--debug", "run", "-d", "--bundle", bundle.path, cid)
    pid = ocirun.state(cid)["pid"]
    assert _unified_path(pid) == _unified_path(os.getpid())
    assert not [p for p in Path("/sys/fs/cgroup/unified").rglob(cid)]
    d = test_cgroups.cgdir(pid, "memory")
    assert d.name == cid
    ocirun("delete", "--force", cid)
    assert not d.exists()
