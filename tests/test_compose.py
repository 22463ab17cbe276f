"""docker-compose.yml publishes the API alone: a Dask scheduler runs any code it is sent."""
from pathlib import Path

import yaml

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
