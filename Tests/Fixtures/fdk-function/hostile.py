"""A function whose import-time code attacks a zygote's control socket (the fork server sends
its answers with socket.send_fds), as FNRUNNER_TEST_HOSTILE says: `init` answers a fork with
the pidfd of the pid namespace's init, `self` with the template's own, `junk` with an oversized
message and a pile of descriptors, `silent` never answers, and in `crash` every fork dies as
the FDK starts listening (a normal start imports this module only at its first call, after
that). Its handler answers normally, after sleeping for the seconds in the body."""
import os
import socket
import time

import fdk

MODE = os.environ.get("FNRUNNER_TEST_HOSTILE", "")
_real_send_fds = socket.send_fds


def _send_fds(sock, buffers, fds, *args):
    if MODE == "init":
        return _real_send_fds(sock, buffers, [os.pidfd_open(1)])
    if MODE == "self":
        return _real_send_fds(sock, buffers, [os.pidfd_open(os.getpid())])
    if MODE == "junk":
        extra = [os.open("/dev/null", os.O_RDONLY) for _ in range(12)]
        return _real_send_fds(sock, [b"forked" * 700], list(fds) + extra)
    if MODE == "silent":
        return 0
    return _real_send_fds(sock, buffers, fds, *args)


socket.send_fds = _send_fds
if MODE == "crash":
    fdk.start = lambda *args, **kwargs: os._exit(7)


def handler(ctx, data=None):
    time.sleep(float((data.getvalue() if data else b"") or b"0"))
    return "still served ({0})".format(MODE)
