"""Provenance in model manifests (pipeline/model/provenance.py, artifacts.py) and the model
card built from a manifest (pipeline/model/card.py)."""
from __future__ import annotations

import json
import pathlib
from importlib import metadata

import numpy as np
import pytest
from sklearn.metrics import classification_report

from pipeline.data import load_dataset
from pipeline.model import ArtifactError, ImagePipeline, load, read_model, save
from pipeline.model.card import format_card, model_card, read_card
from pipeline.model.provenance import LIBRARIES, dataset_record, described_record, jsonable, library_versions, record


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "train"), load_dataset("digits", "test")


@pytest.fixture(scope="module")
def fitted(digits):
    train, test = digits
    pipe = ImagePipeline("hog:pixels_per_cell=4x4", "knn:n_neighbors=3").fit(train.images, train.labels,
                                                                             class_names=train.class_names)
    pred = pipe.predict(test.images)
    pipe.metrics_["test_accuracy"] = float(np.mean(pred == test.labels))
    pipe.metrics_["test_classification_report"] = classification_report(
        test.labels, pred, target_names=list(test.class_names), output_dict=True, zero_division=0)
    return pipe


def _provenance(digits):
    train, test = digits
    used = train.subset(np.arange(100))
    config = {"dataset": "digits", "features": "hog:pixels_per_cell=4x4", "classifier": "knn:n_neighbors=3",
              "classifier_params": {"n_neighbors": 3, "metric": "l2"}, "limit": 100, "seed": 0}
    return record(train=dataset_record(train, used=used), test=dataset_record(test), config=config,
                  command=["cvpipe", "train", "--dataset", "digits"])


def _save_with_provenance(fitted, digits, path):
    """Save the module's shared pipeline with :func:`_provenance` set, and take it off again."""
    fitted.provenance_ = _provenance(digits)
    try:
        save(fitted, path)
    finally:
        del fitted.provenance_


def fitted_provenance(digits):
    """The provenance as JSON gives it back."""
    return json.loads(json.dumps(_provenance(digits)))


def test_library_versions_name_every_library_the_numbers_depend_on():
    versions = library_versions()
    assert set(LIBRARIES) <= set(versions) and versions["python"].count(".") == 2
    assert versions["scikit-learn"] == metadata.version("scikit-learn")
    assert versions["scikit-image"] == metadata.version("scikit-image")
    assert versions["numpy"] == np.__version__
    try:
        import cupy
    except Exception:  # noqa: BLE001 -- any failure to import means: not recorded
        assert "cupy" not in versions
    else:
        assert versions["cupy"] == cupy.__version__


def test_jsonable_keeps_json_and_turns_the_rest_into_it():
    value = {"t": (1, 2), "p": pathlib.Path("/x"), "n": np.float32(0.5), "a": np.arange(2), "f": float("nan"),
             "k": {1: "one"}, "o": ImagePipeline("raw", "svm")}
    out = jsonable(value)
    assert out == {"t": [1, 2], "p": "/x", "n": 0.5, "a": [0, 1], "f": None, "k": {"1": "one"},
                   "o": repr(value["o"])}
    json.dumps(out, allow_nan=False)


def test_a_dataset_record_names_the_split_its_size_and_fingerprints(digits):
    train, _ = digits
    used = train.subset(np.arange(10))
    rec = dataset_record(train, used=used)
    assert rec == {"name": "digits", "split": "train", "source": "sklearn.datasets.load_digits",
                   "kind": "ArrayDataset", "n_images": 1437, "fingerprint": train.fingerprint(), "n_skipped": 0,
                   "n_used": 10, "used_fingerprint": used.fingerprint()}
    assert rec["used_fingerprint"] != rec["fingerprint"]
    assert "n_used" not in dataset_record(train, used=train)  # the whole split: nothing more to say
    assert described_record(train.describe(), n_used=1437) == {**dataset_record(train), "n_used": 1437}


def test_provenance_and_versions_are_saved_as_plain_json_and_loaded_back(fitted, digits, tmp_path):
    _save_with_provenance(fitted, digits, tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["provenance"] == fitted_provenance(digits)
    assert manifest["provenance"]["dataset"]["train"]["fingerprint"] == digits[0].fingerprint()
    assert manifest["environment"] == library_versions()
    assert manifest["metrics"]["test_classification_report"]["0"]["support"] == 36
    model = load(tmp_path / "m")
    assert model.provenance_ == manifest["provenance"]
    assert "provenance_" not in json.dumps(manifest["steps"])  # one place: the top level


def test_a_pipeline_saved_without_provenance_says_none(fitted, tmp_path):
    save(fitted, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["provenance"] is None
    assert load(tmp_path / "m").provenance_ is None


def test_manifests_from_before_provenance_still_load(fitted, tmp_path):
    """A manifest without the key (every model saved before it was recorded) loads as before."""
    save(fitted, tmp_path / "m")
    file = tmp_path / "m" / "manifest.json"
    manifest = json.loads(file.read_text())
    del manifest["provenance"]
    file.write_text(json.dumps(manifest))
    assert load(tmp_path / "m").provenance_ is None and read_card(tmp_path / "m")["provenance"] is None


def test_a_provenance_that_is_not_an_object_is_refused(fitted, tmp_path):
    save(fitted, tmp_path / "m")
    file = tmp_path / "m" / "manifest.json"
    manifest = json.loads(file.read_text())
    manifest["provenance"] = [1, 2]
    file.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"provenance must be an object or null, got \[1, 2\]"):
        load(tmp_path / "m")


def test_the_card_gathers_the_manifest(fitted, digits, tmp_path):
    _save_with_provenance(fitted, digits, tmp_path / "digits-knn")
    _, manifest, sha256 = read_model(tmp_path / "digits-knn")
    card = read_card(tmp_path / "digits-knn")
    assert card == model_card(manifest, name="digits-knn", sha256=sha256)
    assert card["sha256"] == sha256 and card["arrays_sha256"] == manifest["arrays"]["sha256"]
    assert [c["label"] for c in card["classes"]] == list("0123456789")
    assert card["input"] == {"height": 8, "width": 8, "color_mode": "L"}
    assert [s["name"] for s in card["steps"]] == ["features", "scaler", "classifier"]
    assert card["steps"][2]["params"]["n_neighbors"] == 3
    assert card["provenance"] == manifest["provenance"] and card["metrics"] == manifest["metrics"]
    assert card["versions"] == {"cvpipe": manifest["cvpipe_version"], **library_versions()}
    json.dumps(card, allow_nan=False)


def test_the_text_card_shows_each_section_and_the_per_class_table(fitted, digits, tmp_path):
    _save_with_provenance(fitted, digits, tmp_path / "digits-knn")
    text = format_card(read_card(tmp_path / "digits-knn"))
    for label in ("model", "classes", "input", "pipeline", "dataset", "config", "command", "metrics",
                  "per class (test)", "versions", "created", "sha256"):
        assert any(line.startswith(label) for line in text.splitlines()), label
    assert "digits-knn" in text and "8x8 L" in text and "classifiers.knn.KNearestNeighbor" in text
    assert digits[0].fingerprint() in text and digits[1].fingerprint() in text
    assert "1437 images, 100 used" in text and "cvpipe train --dataset digits" in text
    report = fitted.metrics_["test_classification_report"]
    row = next(line.split() for line in text.splitlines() if line.split()[:1] == ["8"])
    assert row == ["8", *(f"{report['8'][k]:.3f}" for k in ("precision", "recall", "f1-score")),
                   f"{report['8']['support']:.0f}"]
    assert max(len(line) for line in text.splitlines() if not line.startswith("command")) <= 100


def test_a_card_without_provenance_says_so(fitted, tmp_path):
    save(fitted, tmp_path / "m")
    text = format_card(read_card(tmp_path / "m"))
    assert "not recorded (the model was saved without provenance)" in text and "command" not in text


def test_a_migrated_model_has_a_card():
    card = read_card(pathlib.Path(__file__).with_name("data") / "format1-net")
    assert card["migrated_from"] == 1 and card["format_version"] == 2
    assert "migrated from 1" in format_card(card)


def test_a_hand_edited_provenance_does_not_break_the_text_card(fitted, tmp_path):
    save(fitted, tmp_path / "m")
    _, manifest, _ = read_model(tmp_path / "m")
    manifest["provenance"] = {"dataset": [1], "config": 3, "command": "cvpipe", "search": "x"}
    manifest["metrics"] = {"test_classification_report": {"0": {"precision": "high", "support": None}}}
    manifest["environment"] = ["not", "a", "dict"]
    manifest["input"]["size"] = "8x8"
    text = format_card(model_card(manifest))
    assert "none (trained from Python)" in text and "input       -" in text
