"""`cvpipe info MODEL` and the provenance `cvpipe train` records (cvpipe/cli.py, cvpipe/commands.py)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import classification_report

from cvpipe.cli import main
from cvpipe.commands import limited, train, train_on_features
from pipeline.data import load_dataset
from pipeline.model import load
from pipeline.model.card import read_card
from pipeline.model.provenance import library_versions

TRAIN = ["-q", "train", "--dataset", "digits", "--features", "hog:pixels_per_cell=4x4", "--classifier", "softmax",
         "--limit", "600"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained by the CLI on 600 digits, and the command line that trained it."""
    out = tmp_path_factory.mktemp("info") / "digits-softmax"
    argv = [*TRAIN, "--out", str(out)]
    assert main(argv) == 0
    return out, argv


def test_train_records_the_data_config_command_and_versions(trained):
    out, argv = trained
    manifest = json.loads((out / "manifest.json").read_text())
    provenance = manifest["provenance"]
    whole, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert provenance["command"] == ["cvpipe", *argv]
    assert provenance["dataset"]["train"] == {
        "name": "digits", "split": "train", "source": "sklearn.datasets.load_digits", "kind": "ArrayDataset",
        "n_images": 1437, "fingerprint": whole.fingerprint(), "n_skipped": 0,
        "n_used": 600, "used_fingerprint": limited(whole, 600, 0).fingerprint()}
    assert provenance["dataset"]["test"]["n_images"] == 360
    assert provenance["dataset"]["test"]["fingerprint"] == test.fingerprint()
    config = provenance["config"]
    assert {k: config[k] for k in ("dataset", "features", "classifier", "limit", "seed", "search", "test_split")} \
        == {"dataset": "digits", "features": "hog:pixels_per_cell=4x4", "classifier": "softmax", "limit": 600,
            "seed": 0, "search": None, "test_split": "test"}
    model = load(out)
    assert config["classifier_params"] == json.loads(json.dumps(model.classifier_.get_params(deep=False)))
    assert config["classifier_params"]["random_state"] == 0
    assert manifest["environment"] == library_versions()


def test_train_records_scikit_learns_classification_report_of_the_test_split(trained):
    out, _ = trained
    model, test = load(out), load_dataset("digits", "test")
    expected = classification_report(test.labels, model.predict(test.images), labels=model.classes_,
                                     target_names=model.class_names_, output_dict=True, zero_division=0)
    report = model.metrics_["test_classification_report"]
    assert report.keys() == expected.keys() and report["accuracy"] == pytest.approx(model.metrics_["test_accuracy"])
    for name in [*model.class_names_, "macro avg", "weighted avg"]:
        assert report[name] == pytest.approx(expected[name]), name


def test_info_prints_the_card(trained, capsys):
    out, argv = trained
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    for label in ("model", "classes", "input", "pipeline", "dataset", "config", "command", "metrics",
                  "per class (test)", "versions", "created", "sha256"):
        assert any(line.startswith(label) for line in lines), label
    assert lines[0].split() == ["model", "digits-softmax"]
    assert "1437 images, 600 used" in text and load_dataset("digits", "test").fingerprint() in text
    assert "cvpipe " + " ".join(argv) in text
    assert read_card(out)["sha256"] in text


def test_info_json_is_the_card(trained, capsys):
    out, _ = trained
    assert main(["info", str(out), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card == read_card(out)
    assert card["provenance"]["config"]["classifier"] == "softmax"
    assert card["metrics"]["test_classification_report"]["macro avg"]["f1-score"] > 0.5


def test_info_of_a_model_saved_before_provenance(trained, tmp_path, capsys):
    # a manifest as models were saved before provenance was recorded: the key absent
    # (models/default of a clone is trained on first use, so it cannot serve as the example)
    old = shutil.copytree(trained[0], tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["provenance"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert main(["info", str(old)]) == 0
    assert "not recorded (the model was saved without provenance)" in capsys.readouterr().out


def _damage(folder, how):
    if how == "missing":
        return folder / "nope"
    if how == "a file":
        (folder / "file").write_text("x")
        return folder / "file"
    if how == "no manifest":
        (folder / "empty").mkdir()
        return folder / "empty"
    model = folder / "model"
    if how == "changed arrays":
        data = bytearray((model / "arrays.npz").read_bytes())
        data[-40] ^= 0xFF
        (model / "arrays.npz").write_bytes(bytes(data))
    else:  # "bad json"
        (model / "manifest.json").write_text("{")
    return model


@pytest.mark.parametrize("how, message", [("missing", "no such model folder"), ("a file", "no such model folder"),
                                          ("no manifest", "manifest.json: missing"),
                                          ("changed arrays", "does not match the manifest"),
                                          ("bad json", "not valid JSON")])
def test_info_of_a_missing_or_damaged_model_is_a_one_line_error(trained, tmp_path, capsys, how, message):
    shutil.copytree(trained[0], tmp_path / "model")
    status = main(["info", str(_damage(tmp_path, how))])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err.startswith("cvpipe: error: ") and captured.err.count("\n") == 1
    assert message in captured.err and "Traceback" not in captured.err


def test_train_from_python_records_no_command_and_the_search(tmp_path):
    search = {"space": "learning_rate=log:1e-3:1e-1", "trials": 2, "stages": 1, "folds": 0}
    summary = train("digits", "hog:pixels_per_cell=4x4", "softmax", tmp_path / "m", limit=300, search=search,
                    progress=False)
    provenance = load(tmp_path / "m").provenance_
    assert provenance["command"] is None
    assert provenance["config"]["search"] == search
    assert provenance["search"] == {"best": summary["search"]["best"], "n_trials": 2}
    assert provenance["config"]["classifier_params"]["learning_rate"] == summary["search"]["best"]["params"][
        "learning_rate"]


def test_train_from_features_records_the_jobs_data(tmp_path):
    assert main(["-q", "extract", "--dataset", "digits", "--features", "hog:pixels_per_cell=4x4", "--out",
                 str(tmp_path / "features"), "--n-jobs", "1"]) == 0
    train_on_features(tmp_path / "features", "softmax", tmp_path / "m", dataset="digits", progress=False,
                      command=["cvpipe", "train", "--from-features", "features"])
    model = load(tmp_path / "m")
    provenance = model.provenance_
    whole = load_dataset("digits", "train")
    assert provenance["dataset"]["train"] == {
        "name": "digits", "split": "train", "source": "sklearn.datasets.load_digits", "kind": "ArrayDataset",
        "n_images": 1437, "fingerprint": whole.fingerprint(), "n_skipped": 0, "n_used": 1437}
    assert provenance["dataset"]["test"]["n_images"] == 360
    assert provenance["config"]["from_features"] == str(tmp_path / "features")
    assert provenance["config"]["features"][0]["name"] == "hog"
    assert provenance["command"] == ["cvpipe", "train", "--from-features", "features"]
    assert set(model.metrics_["test_classification_report"]) >= {*"0123456789", "accuracy", "macro avg"}
    assert np.isclose(model.metrics_["test_classification_report"]["accuracy"], model.metrics_["test_accuracy"])
