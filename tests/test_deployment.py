"""What deployment installs and exposes: docker-compose.yml publishes the API alone (a Dask
scheduler runs any code it is sent); the images install pinned dependencies, the API's
without Dask."""
import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def test_only_the_api_publishes_a_port():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api"}, f"services with published ports: {sorted(published)}"
    assert [str(p).rsplit(":", 1)[-1] for p in services["api"]["ports"]] == ["8000"]


def test_the_api_runs_the_servers_own_configuration():
    """The api's gunicorn reads the config that shares reloads and metrics across its workers."""
    api = yaml.safe_load(COMPOSE.read_text())["services"]["api"]
    assert api["command"][:3] == ["gunicorn", "--config", "/etc/cvpipe/gunicorn.conf.py"]


# ------------------------------------------------------------------ the images' dependencies
ROOT = COMPOSE.parent


def _pins(name):
    pins = {}
    for line in (ROOT / "constraints" / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", package).lower()] = version
    return pins


def _requirement_names(requirements):
    return {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", r).group()).lower() for r in requirements}


def test_the_constraints_pin_every_runtime_dependency_and_gunicorn():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _requirement_names(project["dependencies"])
    api, jobs = _pins("api.txt"), _pins("jobs.txt")
    assert runtime <= set(api), sorted(runtime - set(api))
    assert runtime | _requirement_names(project["optional-dependencies"]["dist"]) <= set(jobs)
    assert api["gunicorn"] and api["gunicorn"] == jobs["gunicorn"]


def test_the_api_image_carries_no_dask():
    assert not {"dask", "distributed"} & set(_pins("api.txt"))
    stages = re.split(r"(?m)^FROM ", (ROOT / "Dockerfile").read_text())
    api = next(stage for stage in stages if stage.startswith("base AS api"))
    assert "pip install -c constraints/api.txt ." in api and "[dist]" not in api
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["api"]["build"]["target"] == "api"
    assert {services[name]["build"]["target"] for name in ("scheduler", "worker", "extract")} == {"jobs"}
