"""The systemd cgroup driver on cgroup v1 hosts: the systemd guest of
test_vm_systemd.py booted hybrid (systemd.unified_cgroup_hierarchy=0: v1
controllers, systemd's own tree in cgroup2 at /sys/fs/cgroup/unified), as
many hosts still are, and pure legacy (also
systemd.legacy_systemd_cgroup_controller=1: no cgroup2 at all). The same
inner run: tests/integration/test_systemd.py reads the v1 knobs there
(memory.limit_in_bytes, devices.list, ...) and expects rootless to be
refused (a user manager cannot delegate v1 controllers; runc refuses it
too)."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import vm  # noqa: E402
from test_vm_systemd import (TIMEOUT, boot_guest, test_guest_finished, test_no_units_left,  # noqa: E402,F401
                             test_systemd_driver_in_guest, test_systemd_is_pid1, test_unit_in_guest,
                             test_user_session)

# The tests are those of test_vm_systemd.py, run against this module's guest.

pytestmark = vm.module_marks(TIMEOUT)


@pytest.fixture(scope="module", params=["hybrid", "legacy"])
def guest(request):
    yield from boot_guest(request.param)

