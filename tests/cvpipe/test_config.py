"""The schema of training and service configs: one line per mistake, naming the key."""
import json
import re

import pytest

from cvpipe.cli import main
from cvpipe.commands import read_config
from cvpipe.config import ConfigError, ServiceConfig, TrainConfig, read_document, service_options, validate


def _write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, match", [
    ("limit: abc\n", r"config.yaml: limit: expected an integer >= 1, got 'abc'$"),
    ("limit: 0\n", r"limit: expected an integer >= 1, got 0$"),
    ("limit: 10.5\n", r"limit: expected an integer >= 1, got 10.5$"),
    ("limit: true\n", r"limit: expected an integer >= 1, got True$"),
    ("seed: -1\n", r"seed: expected an integer >= 0, got -1$"),
    ("lmit: 5\n", r"lmit: unknown key; expected one of dataset, features, classifier, out, limit, seed, search"),
    ("dataset: 5\n", r"dataset: expected a dataset name or path .*, got 5$"),
    ("out: [a, b]\n", r"out: expected a model folder .*, got \['a', 'b'\]$"),
    ("classifier: forest\n", r"classifier: unknown classifier 'forest'; expected one of"),
    ("classifier: knn:n_neighbors=0\n", r"classifier: n_neighbors must be an integer >= 1, got 0$"),
    ("classifier: {name: softmax, params: {n_epochs: x}}\n", r"classifier: n_epochs must be an integer >= 1, got 'x'"),
    ("classifier: {name: softmax, parms: {n_epochs: 3}}\n", r"classifier: .*unknown key\(s\) \['parms'\]"),
    ("classifier: 3\n", r"classifier: expected a classifier spec string or a mapping \{name, params\}, got 3"),
    ("features: [{name: hog, params: {orientations: 0}}]\n", r"features: orientations must be an integer >= 1"),
    ("features: sift\n", r"features: unknown extractor 'sift'"),
    ("search: {space: 'x=log:1:0'}\n", r"search.space: x: expected 0 < LOW < HIGH"),
    ("search: {space: 'reg=log:1e-6:1e-2', trials: 0}\n", r"search.trials: expected an integer >= 1 .*, got 0$"),
    ("search: {space: 'reg=log:1e-6:1e-2', folds: 1}\n", r"search.folds: expected 0 .* or an integer >= 2, got 1"),
    ("search: {space: 'reg=log:1e-6:1e-2', trails: 3}\n", r"search.trails: unknown key; expected one of space, "
                                                          r"trials, stages, folds"),
    ("scaler: maybe\n", r"scaler: expected true \(standardize .* or false .*, got 'maybe'$"),
    ("- dataset: digits\n", r"expected a mapping of keys to values, got list"),
    ("limit: [\n", r"not valid YAML: "),
])
def test_a_bad_training_config_is_one_line_naming_the_key(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        read_config(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(str(path))


def test_several_mistakes_are_said_together_on_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"limit: expected .*; seed: expected .*; extra: unknown key") as info:
        read_config(_write(tmp_path, "limit: x\nseed: y\nextra: 1\n"))
    assert "\n" not in str(info.value)


def test_a_config_that_is_missing_or_a_folder_is_said_so(tmp_path):
    with pytest.raises(ConfigError, match="config file .*nope.yaml does not exist"):
        read_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        read_config(tmp_path)


def test_the_classifier_may_be_a_mapping_in_the_feature_files_grammar(tmp_path):
    doc = read_config(_write(tmp_path, "dataset: digits\nfeatures: [{name: raw}]\n"
                                       "classifier: {name: softmax, params: {n_epochs: 3, batch_size: 32}}\n"))
    resolved = validate(TrainConfig, doc, required=("dataset", "features", "classifier"))
    assert resolved["classifier"] == {"name": "softmax", "params": {"n_epochs": 3, "batch_size": 32}}
    assert resolved["seed"] == 0 and resolved["limit"] is None and resolved["test_split"] == "test"
    assert validate(TrainConfig, {"classifier": {"net": {"hidden_sizes": 64}}})["classifier"] == {
        "net": {"hidden_sizes": 64}}


def test_a_json_config_is_read_too(tmp_path):
    path = _write(tmp_path, json.dumps({"dataset": "digits", "limit": "5"}), "config.json")
    with pytest.raises(ConfigError, match=r"config.json: limit: expected an integer >= 1, got '5'"):
        read_config(path)
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_config(_write(tmp_path, "{", "broken.json"))


def test_required_keys_are_named_when_missing():
    with pytest.raises(ConfigError, match=r"^train: missing dataset, out; expected dataset: a dataset name"):
        validate(TrainConfig, {"features": "raw", "classifier": "softmax"}, "train",
                 required=("dataset", "features", "classifier", "out"))


def test_train_from_a_config_with_a_mapped_classifier_and_its_out(tmp_path, capsys):
    out = tmp_path / "m"
    config = _write(tmp_path, f"dataset: digits\nfeatures: raw\nlimit: 200\nout: {out}\n"
                              "classifier: {name: softmax, params: {n_epochs: 2, batch_size: 32}}\n")
    assert main(["-q", "train", "--config", str(config)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == str(out) and summary["n_train"] == 200
    from pipeline.model import load

    model = load(out)
    assert type(model.classifier_).__name__ == "Softmax" and model.classifier_.n_epochs == 2


def test_a_config_without_the_scaler_trains_on_the_features_as_they_are(tmp_path, capsys):
    from cvpipe.commands import read_model

    out = tmp_path / "m"
    config = _write(tmp_path, f"dataset: digits\nfeatures: raw\nlimit: 200\nout: {out}\nscaler: false\n"
                              "classifier: {name: softmax, params: {n_epochs: 2, batch_size: 32}}\n")
    assert main(["-q", "train", "--config", str(config)]) == 0
    model, manifest, _ = read_model(out)
    assert model.scaler_ is None and model.get_params()["scaler"] is False
    assert manifest["provenance"]["config"]["scaler"] is False
    capsys.readouterr()
    assert main(["-q", "train", "--config", str(config), "--out", str(tmp_path / "s"), "--limit", "100"]) == 0
    assert read_model(tmp_path / "s")[0].scaler_ is None  # the file's scaler: false, other keys from flags


def test_a_flag_overrides_the_config_file(tmp_path, capsys, monkeypatch):
    import cvpipe.cli as cli

    seen = {}
    monkeypatch.setattr(cli, "train", lambda **kw: seen.update(kw) or {"ok": True, "metrics": {}})
    config = _write(tmp_path, "dataset: digits\nfeatures: raw\nclassifier: softmax\nlimit: 100\nseed: 3\n"
                              f"out: {tmp_path / 'from-file'}\n")
    assert main(["-q", "train", "--config", str(config), "--limit", "50", "--out", str(tmp_path / "flag")]) == 0
    assert seen["limit"] == 50 and seen["out"] == str(tmp_path / "flag") and seen["seed"] == 3
    # train() receives the resolved config: every key of the schema, defaults filled in
    assert set(TrainConfig.model_fields) <= set(seen) and seen["test_split"] == "test" and seen["search"] is None
    assert main(["-q", "train", "--config", str(config), "--seed", "7"]) == 0 and seen["seed"] == 7
    assert seen["scaler"] is True  # the default
    assert main(["-q", "train", "--config", str(config), "--no-scaler"]) == 0 and seen["scaler"] is False


# ------------------------------------------------------------------------------ service
@pytest.mark.parametrize("text, match", [
    ("port: 70000\n", r"port: expected a port number in 0..65535, got 70000$"),
    ("port: '8000'\n", r"port: expected a port number in 0..65535, got '8000'$"),
    ("workers: 0\n", r"workers: expected an integer >= 1 .*, got 0$"),
    ("device: tpu\n", r"device: expected cpu or gpu, got 'tpu'$"),
    ("worker_class: eventlet\n", r"worker_class: expected one of balanced, gthread, sync, got 'eventlet'$"),
    ("read_timeout: 0\n", r"read_timeout: expected a number of seconds > 0, got 0.0$"),
    ("max_bytes: 10MB\n", r"max_bytes: expected an integer >= 1 .*, got '10MB'$"),
    ("max_imgs: 3\n", r"max_imgs: unknown key; expected one of models, host, port"),
])
def test_a_bad_service_config_is_one_line_naming_the_key(tmp_path, text, match):
    path = _write(tmp_path, text, "service.yaml")
    with pytest.raises(ConfigError, match=match):
        validate(ServiceConfig, read_document(path), str(path))


def test_service_options_pass_every_setting_on(tmp_path):
    config = validate(ServiceConfig, {"threads": 4, "max_images": 8, "device": "cpu", "reload_interval": 2,
                                      "max_bytes": 1000})
    options = service_options(config, environ={"CVPIPE_MAX_IMAGES": "64", "PATH": "/bin"})
    assert options["threads"] == 4 and options["max_bytes"] == 1000
    assert options["env"]["CVPIPE_MAX_IMAGES"] == "8" and options["env"]["CVPIPE_DEVICE"] == "cpu"
    assert options["env"]["CVPIPE_RELOAD_INTERVAL"] == "2.0" and options["env"]["PATH"] == "/bin"


def test_serve_reads_its_config_file_and_flags_override_it(tmp_path, monkeypatch):
    import cvpipe.cli as cli

    calls = []
    monkeypatch.setattr(cli, "serve", lambda models, **kw: calls.append((models, kw)))
    (tmp_path / "models").mkdir()
    config = _write(tmp_path, f"models: {tmp_path / 'models'}\nport: 9100\nworkers: 3\nthreads: 4\n"
                              "max_images: 16\nread_timeout: 5\n", "service.yaml")
    assert main(["serve", "--config", str(config), "--port", "9200"]) == 0
    models, kw = calls[-1]
    assert models == str(tmp_path / "models") and kw["port"] == 9200 and kw["workers"] == 3
    assert kw["threads"] == 4 and kw["read_timeout"] == 5.0 and kw["host"] == "127.0.0.1"
    assert kw["env"]["CVPIPE_MAX_IMAGES"] == "16"


def test_serve_with_a_bad_config_is_one_line(tmp_path, capsys):
    config = _write(tmp_path, "port: eighty\n", "service.yaml")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"cvpipe: error: .*service.yaml: port: expected a port number in 0..65535, got 'eighty'\n",
                        err)


def test_build_classifier_takes_the_mapping_grammar_of_feature_files():
    from pipeline.model.spec import SpecError, build_classifier

    assert build_classifier({"name": "softmax", "params": {"n_epochs": 3}}).n_epochs == 3
    assert build_classifier({"net": {"hidden_sizes": 64}}).hidden_sizes == (64,)  # the one widening rule
    assert build_classifier({"name": "knn"}).n_neighbors == build_classifier("knn").n_neighbors
    with pytest.raises(SpecError, match=r"unknown key\(s\) \['parms'\] in a step; expected name and params"):
        build_classifier({"name": "knn", "parms": {"n_neighbors": 3}})
    with pytest.raises(SpecError, match="expected one classifier"):
        build_classifier({"knn": {}, "svm": {}})
