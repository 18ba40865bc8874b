"""linux.seccomp.listenerPath: the notify fd and the container process
state reach the listener socket (runtime-spec config-linux.md)."""

import array
import json
import os
import socket
import threading

import pytest


def _listener(path, got):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 4)
        got["state"] = json.loads(msg.decode())
        got["fds"] = fds
        # Closing the listener makes notified syscalls fail (ENOSYS)
        # instead of waiting for an answer.
        for fd in fds:
            os.close(fd)
        conn.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("nnp", [False, True])
def test_listener_gets_fd_and_state(ocirun, bundle, cid, tmp_path, nnp):
    sock = str(tmp_path / "listener.sock")
    got = {}
    t = _listener(sock, got)
    bundle.process["noNewPrivileges"] = nnp
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": 'meta "data"\n',
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    bundle.config["root"]["readonly"] = False
    bundle.sh("mkdir /tmp/notified 2>/dev/null; echo rc=$?").write()
    r = ocirun.run(bundle, cid, timeout=30)
    t.join(timeout=10)
    assert r.rc == 0, r
    assert r.out.strip() == "rc=1"
    st = got["state"]
    assert len(got["fds"]) == 1
    assert st["fds"] == ["seccompFd"]
    assert st["metadata"] == 'meta "data"\n'
    assert st["state"]["id"] == cid and st["state"]["pid"] == st["pid"] > 0
    assert st["state"]["bundle"] == str(bundle.path)
