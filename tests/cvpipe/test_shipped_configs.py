"""Every training config shipped in configs/ is one ``cvpipe train --config`` accepts: the
schema's validation builds its features and classifier with the parameters it names (a
renamed parameter fails here, not in a user's first command)."""
from pathlib import Path

import pytest

from cvpipe.config import TrainConfig, read_document, validate

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_shipped_config_is_valid(path):
    values = validate(TrainConfig, read_document(path), str(path), required=("dataset",))
    assert values["dataset"] == "fashion-mnist"
