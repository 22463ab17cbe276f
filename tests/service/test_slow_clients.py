"""Slow and hostile clients cannot take the service down: requests are read whole, without
a thread, before a worker thread sees them (service/gunicorn_worker.py).

Before, 4 connections sending their headers at 1 byte/s held every thread of the default
service (2 workers x 2 threads) and /healthz stopped answering."""
from __future__ import annotations

import importlib.util
import io
import socket
import sys
import threading
import time
import urllib.request
import uuid

import pytest
from PIL import Image

from service.http_buffer import BODY_TOO_LARGE, HEAD_TOO_LARGE, INCOMPLETE, WHOLE, request_state
from service.testing import logged
from tests.conftest import require

READ_TIMEOUT = 3


# --------------------------------------------------------------- when a request is whole
@pytest.mark.parametrize("data, state", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n", INCOMPLETE),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", WHOLE),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc", INCOMPLETE),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde", WHOLE),
    (b"POST / HTTP/1.1\r\ncontent-length:  5 \r\n\r\nabcdeGET / HTTP/1.1\r\n", WHOLE),  # pipelined
    (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", WHOLE),  # over the limit: the app's 413
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", WHOLE),  # malformed: gunicorn's 400
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", WHOLE),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", INCOMPLETE),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n", INCOMPLETE),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", WHOLE),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", WHOLE),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", WHOLE),  # malformed size: gunicorn's 400
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n", WHOLE),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000, WHOLE),  # a size line too long
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % 600 + b"a" * 600 + b"\r\n",
     BODY_TOO_LARGE),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, HEAD_TOO_LARGE),
])
def test_request_state(data, state):
    assert request_state(data, max_body=500) == state


def test_the_workers_body_limit_is_the_apps():
    from service.app import DEFAULTS
    from service.gunicorn_worker import DEFAULT_MAX_BYTES

    assert DEFAULT_MAX_BYTES == DEFAULTS["CVPIPE_MAX_BYTES"]


# --------------------------------------------------------------- the real service
@pytest.fixture(scope="module")
def server(models_source, tmp_path_factory):
    require(importlib.util.find_spec("gunicorn") is not None, "gunicorn is not installed")
    if sys.platform != "linux":
        pytest.skip("gunicorn: Linux only here")
    with logged(models_source, tmp_path_factory.mktemp("slow") / "gunicorn.log", workers=2, threads=2,
                read_timeout=READ_TIMEOUT, max_bytes=200_000, ready_timeout=120) as proc:
        proc.port = int(proc.base_url.rsplit(":", 1)[1])
        yield proc


@pytest.fixture(scope="module")
def png():
    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, format="PNG")
    return buf.getvalue()


def _multipart(png):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _exchange(port, data, timeout=10):
    """Send ``data`` at once; the whole answer (until the server closes or 1 s of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        sock.settimeout(timeout)
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            sock.settimeout(1)
        return b"".join(chunks)


class _Slow:
    """A client that sends ``head`` then the rest of ``data`` a byte a second, or stops
    (``stall``); records when the server closed the connection."""

    def __init__(self, port, data, stall=False):
        self.closed_after, self.answer = None, b""
        self.thread = threading.Thread(target=self._run, args=(port, data, stall), daemon=True)
        self.thread.start()

    def _run(self, port, data, stall):
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.settimeout(1.0)
                sent = 0
                while time.monotonic() - t0 < 30:
                    if not stall and sent < len(data):
                        sock.send(data[sent:sent + 1])
                        sent += 1
                    try:
                        chunk = sock.recv(4096)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    self.answer += chunk
        except OSError:
            pass
        self.closed_after = time.monotonic() - t0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_slow_and_stalled_clients_leave_the_service_answering_and_are_dropped(server, png):
    body, ctype = _multipart(png)
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    slow = ([_Slow(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100 + b"\r\n\r\n")
             for _ in range(48)]
            + [_Slow(server.port, head.encode() + body) for _ in range(48)]
            + [_Slow(server.port, head.encode() + body[: len(body) // 2], stall=True) for _ in range(32)]
            + [_Slow(server.port, b"", stall=True) for _ in range(32)])  # connect and say nothing
    time.sleep(0.5)
    latencies, failures = [], []
    deadline = time.monotonic() + 2 * READ_TIMEOUT + 2
    request = urllib.request.Request(f"{server.base_url}/predict", data=body, headers={"Content-Type": ctype})
    while time.monotonic() < deadline:
        for url in (f"{server.base_url}/healthz", request):
            t0 = time.monotonic()
            try:
                urllib.request.urlopen(url, timeout=5).read()
                latencies.append(time.monotonic() - t0)
            except OSError as exc:
                failures.append(repr(exc))
        time.sleep(0.05)
    within = sum(t < 1 for t in latencies) / (len(latencies) + len(failures))
    assert within >= 0.99 and not failures, (within, failures[:3], max(latencies))
    for client in slow:
        client.thread.join(15)
    closed = [c.closed_after for c in slow]
    assert all(t is not None and t < READ_TIMEOUT + 2.5 for t in closed), sorted(closed)[-5:]
    timed_out = [c for c in slow[48:] if c.answer]
    assert all(c.answer.startswith(b"HTTP/1.1 408") for c in timed_out), timed_out[0].answer[:200]


@pytest.mark.slow
def test_whole_requests_at_once_and_over_the_limits(server, png):
    body, ctype = _multipart(png)
    one = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
           ).encode() + body
    answer = _exchange(server.port, one + one.replace(b"Host: x", b"Host: x\r\nConnection: close"))
    assert answer.count(b"HTTP/1.1 200 OK") == 2, answer[:300]  # pipelined: both answered
    chunked = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n" % 50_000 + b"a" * 50_000 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n")
    answer = _exchange(server.port, chunked)
    assert answer.startswith(b"HTTP/1.1 413") and b"CVPIPE_MAX_BYTES" in answer, answer[:300]
    answer = _exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:300]
    bad_chunk = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"zz\r\n")
    answer = _exchange(server.port, bad_chunk)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
