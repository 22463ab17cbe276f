"""The service under a real gunicorn on 127.0.0.1: answers, survives a killed worker,
reloads gracefully on HUP, and refuses a corrupted model while the others serve."""
from __future__ import annotations

import base64
import http.client
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from pipeline.data.datasets import load_dataset
from service.server import gunicorn_command, serve
from service.testing import connections_per_worker, free_port, logged, wait_until_ready
from service.testing import worker_pids as _workers
from tests.conftest import require

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="gunicorn and /proc: Linux only")]

N_CLIENTS = 3  # client threads under load: at most this many requests are in flight at any time


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture(autouse=True, scope="module")
def _gunicorn_installed():
    require(importlib.util.find_spec("gunicorn") is not None,
            "gunicorn is not installed (a dependency of cvpipe on Linux: pip install gunicorn)")


@pytest.fixture(scope="module")
def server(models_source, tmp_path_factory):
    """gunicorn with 2 gthread workers (2 threads each), its log in a file shown on failure."""
    with logged(models_source, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", workers=2, threads=2,
                timeout=30, graceful_timeout=10, ready_timeout=120) as proc:
        yield proc


@pytest.fixture(scope="module")
def digits_png():
    """A test digit as PNG bytes (24x24: the service resizes it to the model's 8x8) and its label."""
    test = load_dataset("digits", "test")
    buf = io.BytesIO()
    Image.fromarray(test.images[0]).resize((24, 24), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue(), int(test.labels[0])


def _request(base_url, method, path, body=None, headers=None, timeout=30):
    """``(status, parsed JSON or text)`` on a fresh connection."""
    host, port = base_url.split("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, json.loads(raw)
    return response.status, raw.decode("utf-8", "replace")


def _multipart(*files):
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
                    f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n" for name, ctype, data in files)
    return body + f"--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _two_workers(master, without=()):
    """The 2 worker PIDs of ``master`` when it has exactly 2 and none of ``without``, else None."""
    workers = _workers(master)
    return workers if len(workers) == 2 and not workers & set(without) else None


def _wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _is_dead(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


class _Load:
    """``N_CLIENTS`` threads posting an image on fresh connections until stopped (60 s at most)."""

    def __init__(self, base_url, body, headers):
        self.records = []  # (started, finished, ok, detail)
        self._stop = threading.Event()
        self._args = base_url, body, headers
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(N_CLIENTS)]

    def _client(self):
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                status, answer = _request(*self._args[:1], "POST", "/predict?top_k=1", *self._args[1:], timeout=20)
                ok, detail = status == 200 and len(answer["predictions"]) == 1, status
            except (OSError, http.client.HTTPException) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            self.records.append((t0, time.monotonic(), ok, detail))

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def count_after(self, t):
        return sum(1 for r in list(self.records) if r[0] > t)


# ------------------------------------------------------------------ tests
def test_answers_real_http_requests(server, digits_png):
    png, label = digits_png
    assert _request(server.base_url, "GET", "/healthz") == (200, {"status": "ok"})
    status, ready = _request(server.base_url, "GET", "/readyz")
    assert status == 200 and ready["default"] == "default"
    status, page = _request(server.base_url, "GET", "/")
    assert status == 200 and "Classify an image" in page

    body, headers = _multipart(("digit.png", "image/png", png))
    status, answer = _request(server.base_url, "POST", "/predict?top_k=3", body, headers)
    assert status == 200, answer
    assert answer["model"] == "default" and len(answer["version"]) == 12
    (pred,) = answer["predictions"]
    assert pred["label"] == str(label) and len(pred["top_k"]) == 3
    assert pred["top_k"][0]["label"] == pred["label"] and 0 < pred["score"] <= 1

    status, raw = _request(server.base_url, "POST", "/predict", png, {"Content-Type": "image/png"})
    assert status == 200 and raw["predictions"][0]["label"] == pred["label"]
    doc = json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}] * 2}).encode()
    status, two = _request(server.base_url, "POST", "/predict", doc, {"Content-Type": "application/json"})
    assert status == 200 and [p["label"] for p in two["predictions"]] == [pred["label"]] * 2

    body, headers = _multipart(("notes.txt", "text/plain", b"not an image"))
    status, error = _request(server.base_url, "POST", "/predict", body, headers)
    assert status == 400 and "image" in error["error"]["message"]


def test_corrupted_model_is_refused_while_the_other_serves(server, digits_png):
    status, listing = _request(server.base_url, "GET", "/v1/models")
    assert status == 200
    models = {m["name"]: m for m in listing["models"]}
    assert models["default"]["status"] == "ready" and listing["default"] == "default"
    broken = models["broken"]
    assert broken["status"] == "error"
    assert "arrays.npz" in broken["error"] and "sha256" in broken["error"], broken["error"]

    body, headers = _multipart(("digit.png", "image/png", digits_png[0]))
    status, error = _request(server.base_url, "POST", "/v1/models/broken/predict", body, headers)
    assert status == 503 and "failed to load" in error["error"]["message"]
    status, answer = _request(server.base_url, "POST", "/v1/models/default/predict", body, headers)
    assert status == 200 and answer["model"] == "default"
    assert _request(server.base_url, "GET", "/readyz")[0] == 200
    log = server.log_path.read_text()
    assert "broken" in log and "failed to load" in log  # each worker said so in gunicorn's log


def test_killed_workers_are_replaced_under_load(server, digits_png):
    """SIGKILL one worker, then the other: the master forks replacements and only requests
    in flight on a killed worker fail; every request started after a death succeeds."""
    master = server.pid
    originals = _wait_for(lambda: _two_workers(master), 60, "2 workers")
    body, headers = _multipart(("digit.png", "image/png", digits_png[0]))
    deaths = []
    with _Load(server.base_url, body, headers) as load:
        _wait_for(lambda: len(load.records) >= 20, 60, "20 answered requests before the kill")
        for victim in sorted(originals):
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            _wait_for(lambda v=victim: _is_dead(v), 10, f"worker {victim} to die")
            deaths.append((killed, time.monotonic()))
            _wait_for(lambda v=victim: _two_workers(master, without=[v]), 60, f"a replacement for worker {victim}")
            _wait_for(lambda: load.count_after(deaths[-1][1]) >= 20, 60, "20 requests after the replacement")
    records = load.records
    replacements = _workers(master)
    assert not replacements & originals and len(replacements) == 2
    failed = [r for r in records if not r[2]]
    assert len(failed) <= N_CLIENTS * len(deaths), f"{len(failed)} of {len(records)} failed: {failed[:5]}"
    for started, finished, _, detail in failed:  # each was in flight when a worker died
        assert any(started < dead and finished >= killed for killed, dead in deaths), \
            f"a request from {started:.3f} to {finished:.3f} s failed, not in flight at a kill {deaths}: {detail}"
    after_last = [r for r in records if r[0] > deaths[-1][1]]
    assert len(after_last) >= 20 and all(r[2] for r in after_last)  # answered by replacements only
    print(f"{len(records)} requests, {len(failed)} failed (in flight on a killed worker)")


def test_hup_reloads_workers_without_dropping_requests(server, digits_png):
    master = server.pid
    before = _wait_for(lambda: _two_workers(master), 60, "2 workers")
    body, headers = _multipart(("digit.png", "image/png", digits_png[0]))
    with _Load(server.base_url, body, headers) as load:
        _wait_for(lambda: len(load.records) >= 10, 60, "10 answered requests")
        os.kill(master, signal.SIGHUP)
        hup = time.monotonic()
        _wait_for(lambda: _two_workers(master, without=before), 60, "the old workers to be replaced")
        _wait_for(lambda: load.count_after(hup) >= 20, 60, "20 requests after the reload")
    failed = [r for r in load.records if not r[2]]
    assert not failed, f"{len(failed)} of {len(load.records)} requests failed during a graceful reload: {failed[:3]}"


def test_serve_execs_gunicorn_and_stops_on_term(models_source):
    """``serve`` (what ``cvpipe serve`` calls) turns its process into the gunicorn master."""
    port = free_port()
    code = (f"from service.server import serve; serve({str(models_source)!r}, host='127.0.0.1', port={port}, "
            f"workers=1, threads=1)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", 120, proc=proc)
        assert len(_workers(proc.pid)) == 1  # the python process is now the master, with one worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Shutting down: Master" in proc.stderr.read().decode()


def test_command_checks_its_arguments(tmp_path):
    argv, env = gunicorn_command(tmp_path, port=8123, workers=3, worker_class="sync", api_token="s3cret")
    assert argv[1:3] == ["-m", "gunicorn"] and argv[-1] == "service.wsgi:app"
    assert "127.0.0.1:8123" in argv and "sync" in argv
    assert env["CVPIPE_MODELS"] == str(tmp_path.resolve()) and env["CVPIPE_API_TOKEN"] == "s3cret"
    with pytest.raises(ValueError, match="worker_class must be one of"):
        gunicorn_command(tmp_path, worker_class="gevent")
    with pytest.raises(ValueError, match="workers and threads must be >= 1"):
        gunicorn_command(tmp_path, workers=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        serve(tmp_path / "missing")


def test_master_never_loads_numpy(server):
    """No --preload: the models (numpy, numba, OpenBLAS and their thread pools) are loaded in
    each worker after the fork; the master has none of them to hand down."""
    maps = Path(f"/proc/{server.pid}/maps").read_text()
    assert "numpy" not in maps and "numba" not in maps and "openblas" not in maps.lower()
    worker = min(_workers(server.pid))
    assert "numpy" in Path(f"/proc/{worker}/maps").read_text()


def _workers_serving(master, log_path):
    """The worker PIDs of ``master`` when both have built the app (their "serving" log line)."""
    workers, log = _two_workers(master), Path(log_path).read_text()
    return workers if workers and all(f"[{pid}] [INFO] serving" in log for pid in workers) else None


def test_keep_alive_connections_spread_over_the_workers(server, digits_png):
    """Sixteen clients connect at once and keep their connections, twice: with the balanced
    worker (the default) the two workers serve about half each (6 to 8 of 16 for the one
    with fewer on an idle machine; once 4 of 16 on a loaded one, hence two bursts against
    the same share, 10 of 32). gunicorn's stock gthread worker split the same burst 5/11
    to 11/5, and wrk's 32 connections up to 32/0."""
    port, n_clients = int(server.base_url.rsplit(":", 1)[1]), 16
    _wait_for(lambda: _workers_serving(server.pid, server.log_path), 60, "both workers serving")
    body, headers = _multipart(("digit.png", "image/png", digits_png[0]))
    statuses = []

    def burst(hold_until_counted):
        start_together, hold = threading.Barrier(n_clients), threading.Event()

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            start_together.wait()
            for _ in range(3):
                conn.request("POST", "/predict", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
            hold.wait(30)  # keep the connection open until it is counted
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(n_clients)]
        for t in threads:
            t.start()
        try:
            if hold_until_counted:
                return _wait_for(lambda: (lambda c: c if sum(c.values()) == n_clients else None)(
                    connections_per_worker(server.pid, port)), 30, "all connections")
        finally:
            hold.set()
            for t in threads:
                t.join()

    burst(False)  # first predictions of freshly started workers are slower: warm both up first
    bursts = [burst(True), burst(True)]
    counts = {pid: sum(b.get(pid, 0) for b in bursts) for b in bursts for pid in b}
    assert statuses == [200] * (9 * n_clients)
    assert len(counts) == 2 and min(counts.values()) >= 10, bursts
