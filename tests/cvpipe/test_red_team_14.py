"""Issue 14's red-team pass over the CLI: hostile configs, model cards and paths that
must end in one line and exit status 2, never a traceback or a silently unsafe setting."""
from __future__ import annotations

import re

import pytest

from cvpipe.cli import main


def _write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, text", [
    ("deep.yaml", "features: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("deep_mapping.yaml", "classifier: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"),
    ("deep.json", '{"features": ' + "[" * 5000 + "]" * 5000 + "}\n"),
])
def test_a_config_nested_too_deep_names_the_file(tmp_path, capsys, name, text):
    config = _write(tmp_path, text, name)
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    kind = "JSON" if name.endswith(".json") else "YAML"
    assert re.fullmatch(rf"cvpipe: error: .*{re.escape(name)}: not valid {kind}: values nested deeper than a "
                        r"config needs \(Python's recursion limit\)\n", err)


@pytest.mark.parametrize("text, match", [
    ("read_timeout: .inf\n", r"read_timeout: expected a number of seconds > 0, got inf"),
    ("reload_interval: .inf\n", r"reload_interval: expected a number of seconds >= 0, got inf"),
    ("read_timeout: .nan\n", r"read_timeout: expected a number of seconds > 0, got nan"),
    ("access_log: /nonexistent-red-team/dir/access.log\n",
     r"access_log: expected '-' \(stdout\) or a file path in an existing folder, got "
     r"'/nonexistent-red-team/dir/access.log'"),
])
def test_serve_config_values_that_would_disable_a_limit_or_fail_after_the_start(tmp_path, capsys, monkeypatch,
                                                                               text, match):
    import cvpipe.cli as cli

    # an infinite read_timeout turned the slow-client timeout off; a log in a missing folder
    # got gunicorn's two lines and exit status 1 once the server had started
    monkeypatch.setattr(cli, "serve", lambda *a, **kw: pytest.fail("serve started with a bad config"))
    config = _write(tmp_path, text, "service.yaml")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(match, err), err


def test_serve_config_access_log_in_an_existing_folder_is_taken(tmp_path, monkeypatch):
    import cvpipe.cli as cli

    calls = []
    monkeypatch.setattr(cli, "serve", lambda models, **kw: calls.append(kw))
    (tmp_path / "models").mkdir()
    config = _write(tmp_path, f"models: {tmp_path / 'models'}\naccess_log: {tmp_path / 'access.log'}\n"
                              "read_timeout: 2.5\n", "service.yaml")
    assert main(["serve", "--config", str(config)]) == 0
    assert calls[-1]["access_log"] == str(tmp_path / "access.log") and calls[-1]["read_timeout"] == 2.5


def test_info_writes_a_hand_edited_manifests_control_characters_as_escapes(tmp_path, capsys):
    # class names and provenance strings reach the terminal: an ANSI/OSC sequence could set the
    # title or the clipboard, a newline or a bidi override rewrite what the card shows
    import json

    import numpy as np

    from pipeline.model import ImagePipeline, save

    rng = np.random.default_rng(0)  # a small model of its own: models/default is not in a clone
    X, y = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8), np.repeat(np.arange(4), 10)
    folder = save(ImagePipeline("raw", "knn:n_neighbors=1").fit(X, y), tmp_path / "m")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["class_names"][:3] = ["\x1b]52;c;cHduZWQ=\x07bag", "two\nlines", "evil\u202egnp.exe"]
    manifest["provenance"] = {"dataset": {"train": {"name": "\x1b[2Jdigits", "split": "train"}},
                              "command": ["cvpipe", "train\rfake"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out and "\x07" not in out
    assert r"\x1b]52;c;cHduZWQ=\x07bag, two\nlines, evil\u202egnp.exe" in out
    assert r"\x1b[2Jdigits (train split)" in out
    assert main(["info", str(folder), "--json"]) == 0  # JSON escapes them itself, and keeps the values
    card = json.loads(capsys.readouterr().out)
    assert card["classes"][1]["label"] == "two\nlines"
