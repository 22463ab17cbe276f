"""schemathesis, a tool nobody here wrote, checks the served API against its own OpenAPI
document: no 5xx, answers in the documented status codes, content types, schemas and
headers, Allow headers that match, bad data refused.

Bounded (a fixed seed and a few examples per operation). One check is left out:
``positive_data_acceptance`` expects any schema-valid body to be accepted, and a body of
random bytes is a valid ``image`` by the schema but not an image; the service's 400 for
it is right.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.testing import start, stop
from tests.conftest import require

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="gunicorn: Linux only here")]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("with_broken_model", [False, True], ids=["healthy", "with-a-broken-model"])
def test_the_served_api_conforms_to_its_document(models_source, tmp_path, with_broken_model):
    """With a broken model the service answers its documented 503 for it: a 5xx, so that run
    checks everything but "no 5xx"."""
    models = tmp_path / "models"
    shutil.copytree(models_source, models, ignore=None if with_broken_model else shutil.ignore_patterns("broken"))
    excluded = "positive_data_acceptance" + (",not_a_server_error" if with_broken_model else "")
    cli = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    require(Path(cli).exists(), "schemathesis is not installed (the dev extra brings it)")
    require(importlib.util.find_spec("gunicorn") is not None, "gunicorn is not installed")
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = start(models, workers=2, threads=2, stdout=log, stderr=subprocess.STDOUT, ready_timeout=120)
    try:
        done = subprocess.run([cli, "run", f"{proc.base_url}/openapi.json", "--checks", "all",
                               "--exclude-checks", excluded, "--max-examples", "25",
                               "--seed", "1", "--request-timeout", "10", "--no-color"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=500)
    finally:
        stop(proc)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:] + log_path.read_text()[-2000:]
    assert " passed" in done.stdout
