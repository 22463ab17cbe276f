"""Two gunicorn workers behave as one service: a reload reaches both, metrics add up.

Each test starts its own `cvpipe serve`-shaped gunicorn (2 workers) on a copy of the
models, and makes sure both workers take part: requests go over two keep-alive
connections that /proc shows held by different workers.
"""
from __future__ import annotations

import http.client
import importlib.util
import io
import json
import re
import sys
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from pipeline._io import replace_folder
from pipeline.data.datasets import load_dataset
from pipeline.model import load, save
from service.testing import connections_per_worker, logged, stop
from tests.conftest import require

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="gunicorn and /proc: Linux only")]


@pytest.fixture(autouse=True, scope="module")
def _gunicorn_installed():
    require(importlib.util.find_spec("gunicorn") is not None, "gunicorn is not installed")


@pytest.fixture
def server(models_dir, tmp_path):
    with logged(models_dir, tmp_path / "gunicorn.log", workers=2, threads=2, graceful_timeout=5,
                ready_timeout=120) as proc:
        proc.models = models_dir
        yield proc


@pytest.fixture(scope="module")
def digit():
    buf = io.BytesIO()
    Image.fromarray(load_dataset("digits", "test").images[0]).save(buf, format="PNG")
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _connections_on_both_workers(server):
    """Two keep-alive connections, held by different workers (opened until they are)."""
    port = int(server.base_url.rsplit(":", 1)[1])
    for _ in range(50):
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(2)]
        for c in conns:
            c.request("GET", "/healthz")
            c.getresponse().read()
        holders = connections_per_worker(server.pid, port)
        if len(holders) == 2 and all(n == 1 for n in holders.values()):
            return conns
        for c in conns:
            c.close()
        time.sleep(0.1)
    raise AssertionError(f"could not get one connection on each worker: {holders}")


def _ask(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    raw = response.read()
    return response.status, (json.loads(raw) if response.getheader("Content-Type", "").startswith(
        "application/json") else raw.decode())


def _new_version(models, name="default"):
    """Save ``name`` again with other metrics (a new manifest, a new version) and swap the
    folder in atomically; returns nothing, the new version is read from the answers."""
    model = load(models / name)
    model.metrics_ = {**(model.metrics_ or {}), "note": uuid.uuid4().hex}
    staged = models / f".{name}.new"
    save(model, staged)
    replace_folder(staged, models / name)


def test_one_reload_brings_every_worker_to_the_new_version(server, digit):
    conns = _connections_on_both_workers(server)
    old = {_ask(c, "POST", "/predict", *digit)[1]["version"] for c in conns}
    assert len(old) == 1
    _new_version(server.models)
    status, answer = _ask(conns[0], "POST", "/v1/models/reload")  # asks one worker
    assert status == 200 and answer["updated"] == ["default"]
    new = next(m["version"] for m in answer["models"] if m["name"] == "default")
    assert new not in old
    seen = [_ask(conns[i % 2], "POST", "/predict", *digit)[1]["version"] for i in range(100)]
    assert seen == [new] * 100, f"{sum(v != new for v in seen)} of 100 answers from the old version"
    listed = [next(m["version"] for m in _ask(c, "GET", "/v1/models")[1]["models"] if m["name"] == "default")
              for c in conns]
    assert listed == [new, new]
    for c in conns:
        c.close()


def _counter(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{name}(?:\{{(.*)\}})? ([0-9.e+]+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_metrics_add_up_across_workers(server, digit):
    conns = _connections_on_both_workers(server)
    for i in range(20):
        assert _ask(conns[i % 2], "POST", "/predict", *digit)[0] == 200  # 10 on each worker
    scrapes = [_ask(conns[i % 2], "GET", "/metrics")[1] for i in range(10)]
    images = [_counter(text, "cvpipe_images_predicted_total", model="default") for text in scrapes]
    requests = [_counter(text, "cvpipe_requests_total", endpoint="api.predict", status="200") for text in scrapes]
    assert images == [20.0] * 10 and requests == [20.0] * 10, (images, requests)
    for c in conns:
        c.close()


def test_the_shared_folder_is_removed_when_the_server_stops(server):
    log = Path(server.log_path)
    deadline = time.monotonic() + 30
    while "workers share" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    run_dir = Path(re.search(r"workers share (\S+)", log.read_text()).group(1))
    assert (run_dir / "metrics").is_dir()
    stop(server)
    assert not run_dir.exists()
