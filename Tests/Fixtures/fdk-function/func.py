"""Test handlers for the real Python FDK (fdk on PyPI), one per behaviour the runner must handle."""
import io
import json
import os
import sys
import time

from fdk import response


def handler(ctx, data: io.BytesIO = None):
    body = data.getvalue() if data is not None else b""
    return "Hello {0}".format(body.decode("utf-8", "replace") if body else "World")


def introspect(ctx, data=None):
    info = {
        "call_id": ctx.CallID(),
        "app_id": ctx.AppID(),
        "fn_id": ctx.FnID(),
        "method": ctx.Method(),
        "request_url": ctx.RequestURL(),
        "http_headers": ctx.HTTPHeaders(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("FN_")},
        "uid": os.getuid(),
        "pid": os.getpid(),
    }
    return response.Response(ctx, response_data=json.dumps(info, sort_keys=True),
                             headers={"Content-Type": "application/json"}, status_code=201)


def boom(ctx, data=None):
    raise ValueError("boom from func")


def timeout(ctx, data=None):
    raise TimeoutError("function said it timed out")


def teapot(ctx, data=None):
    return response.Response(ctx, response_data="short and stout", headers={"Content-Type": "text/plain"},
                             status_code=418)


def slow(ctx, data=None):
    seconds = float((data.getvalue() if data else b"") or b"2")
    time.sleep(seconds)
    return "slept {0}".format(seconds)


def noisy(ctx, data=None):
    print("to stdout from noisy", flush=True)
    print("to stderr from noisy", file=sys.stderr, flush=True)
    return "noisy done"


def fetch(ctx, data=None):
    """GETs the URL in the body (names resolved as any Python program resolves them)."""
    import urllib.request
    url = (data.getvalue() if data else b"").decode().strip()
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.read().decode()


def rand(ctx, data=None):
    """What must differ between instances: `random`'s state, a uuid4, the pid. Sleeps first
    for the seconds in the body, so that concurrent calls need instances of their own."""
    import random
    import uuid
    seconds = float((data.getvalue() if data else b"") or b"0")
    time.sleep(seconds)
    info = {"random": random.getrandbits(64), "uuid": str(uuid.uuid4()), "pid": os.getpid()}
    return response.Response(ctx, response_data=json.dumps(info), headers={"Content-Type": "application/json"})


def hog(ctx, data=None):
    """Allocates (and touches) the MiB in the body, to be killed for the memory limit."""
    mib = int((data.getvalue() if data else b"") or b"512")
    blocks = [bytearray(1 << 20) for _ in range(mib)]
    return "held {0} MiB".format(len(blocks))
