import json
import os
import pathlib
import re

import numpy as np
import pytest

from cvpipe.cli import main


def test_extract_prints_a_json_summary(tmp_path, capsys):
    path = tmp_path / "toy.npz"
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), labels=np.arange(20) % 2)
    status = main(["-q", "extract", "--dataset", str(path), "--features", "hog:pixels_per_cell=4",
                   "--out", str(tmp_path / "out"), "--n-jobs", "1"])
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"]["features"]["shape"][0] == 20
    assert np.load(tmp_path / "out" / "features.npy").shape == tuple(summary["files"]["features"]["shape"])


def test_a_bad_spec_is_a_clear_error_with_status_2(tmp_path, capsys):
    status = main(["-q", "extract", "--dataset", "digits", "--features", "sift", "--out", str(tmp_path)])
    assert status == 2
    assert "unknown extractor 'sift'" in capsys.readouterr().err


def test_an_unknown_dataset_is_a_clear_error(tmp_path, capsys):
    status = main(["-q", "extract", "--dataset", str(tmp_path / "nope"), "--features", "hog", "--out", str(tmp_path)])
    assert status == 2
    assert "nope" in capsys.readouterr().err


def test_demo_trains_the_default_model_and_prints_a_curl_line(tmp_path, capsys, monkeypatch):
    import cvpipe.demo as demo

    monkeypatch.setattr(demo, "choose_demo_dataset", lambda fetch=True: ("digits", "digits, for the test"))
    models = tmp_path / "models"
    assert main(["-q", "demo", "--no-serve", "--models", str(models)]) == 0
    out = capsys.readouterr().out
    assert "trained now" in out and f"curl -s -F image=@{tmp_path}/runs/demo/sample.png" in out
    assert (models / "default" / "manifest.json").is_file()
    assert main(["-q", "demo", "--no-serve", "--models", str(models)]) == 0
    assert "already trained" in capsys.readouterr().out


def test_demo_falls_back_to_digits_and_says_so(tmp_path, monkeypatch):
    import cvpipe.demo as demo
    import pipeline.data.paths as paths

    monkeypatch.setenv("CVPIPE_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", tmp_path / "none")
    name, why = demo.choose_demo_dataset(fetch=False)
    assert name == "digits" and "neither on this machine nor fetchable" in why


# ------------------------------------------------------------- hostile input (red team)
def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("cvpipe: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("spec, match", [
    (" ", "expected a classifier spec"),
    (",", "empty item"),
    ("knn,,", "empty item"),
    ("knn:=3", "expected key=value"),
    ("knn:n_neighbors", "expected key=value"),
    (":n_neighbors=3", "unknown classifier ''"),
    ("knn,svm", "expected one classifier"),
    ("ｋｎｎ", "unknown classifier"),
    ("knn:n_neighbors=", "expected key=value in classifier spec .*, got 'n_neighbors='"),
    ("knn:n_neighbors=1e999", "n_neighbors must be an integer >= 1, got inf"),
    ("knn:n_neighbors=3.0", "n_neighbors must be an integer >= 1, got 3.0"),
    ("knn:n_neighbors=true", "n_neighbors must be an integer >= 1, got True"),
    ("knn:n_neighbors=-0", "n_neighbors must be an integer >= 1, got 0"),
    ("knn:metric=!!python/object:os.system", "metric must be one of"),
    ("knn:device=cpu\x00", "device must be one of"),
    ("net:hidden_sizes=7x", "hidden_sizes must be a tuple of integers >= 1, got '7x'"),
    ("net:hidden_sizes=x7", "hidden_sizes must be a tuple of integers >= 1, got 'x7'"),
    ("net:hidden_sizes=0x0", "hidden_sizes must be a tuple of integers >= 1, got \\(0, 0\\)"),
    ("net:dropout=1.5", "dropout must be a number in \\[0, 1\\)"),
    ("net:learning_rate=nan", "learning_rate must be a positive number, got 'nan'"),
    ("knn:" + "a" * 5000 + "=1", "KNearestNeighbor has no parameter"),
    (",".join(["knn"] * 2000), "expected one classifier"),
])
def test_train_refuses_a_hostile_classifier_spec_in_one_line(tmp_path, capsys, spec, match):
    status = main(["-q", "train", "--dataset", "digits", "--limit", "40", "--features", "raw", "--classifier", spec,
                   "--out", str(tmp_path / "m")])
    assert status == 2
    assert re.search(match, _one_line_error(capsys))
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("spec, match", [
    ("hog:pixels_per_cell=7x", "pixels_per_cell must be a pair of integers >= 1, got '7x'"),
    ("hog:pixels_per_cell=x7", "pixels_per_cell must be a pair of integers >= 1, got 'x7'"),
    ("hog:pixels_per_cell=7x7x7", "pixels_per_cell must be a pair of integers >= 1, got \\(7, 7, 7\\)"),
    ("hog:pixels_per_cell=7x7:bins=3", "pixels_per_cell must be a pair"),
    ("hog:orientations=1e400", "orientations must be an integer >= 1, got inf"),
    ("hog:orientations=!!python/name:os.system", "orientations must be an integer >= 1"),
    ("hog:=3", "expected key=value"),
    ("=", "starts with a parameter"),
    ("hog,knn", "unknown extractor 'knn'"),
    ("hög", "unknown extractor 'hög'"),
    ("color:bins=true", "bins must be an integer >= 1, got True"),
    ("raw:size=0x0", "size must be None, an integer >= 1 or a pair"),
    ("bovw:n_words=0", "n_words must be an integer >= 1, got 0"),
])
def test_extract_refuses_a_hostile_feature_spec_in_one_line(tmp_path, capsys, spec, match):
    status = main(["-q", "extract", "--dataset", "digits", "--features", spec, "--out", str(tmp_path / "out"),
                   "--n-jobs", "1"])
    assert status == 2
    assert re.search(match, _one_line_error(capsys))


@pytest.mark.parametrize("doc, match", [
    ("", "expected a list of \\{name, params\\}"),
    ("- name: [1]\n", "expected each extractor as a name and a mapping of parameters, got \\[1\\]"),
])
def test_extract_refuses_a_hostile_spec_file_in_one_line(tmp_path, capsys, doc, match):
    path = tmp_path / "spec.yaml"
    path.write_text(doc)
    status = main(["-q", "extract", "--dataset", "digits", "--features", str(path), "--out", str(tmp_path / "out"),
                   "--n-jobs", "1"])
    assert status == 2
    assert re.search(match, _one_line_error(capsys))


def test_extract_refuses_a_spec_file_with_a_python_tag(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text("!!python/object/apply:os.system ['touch " + str(tmp_path / "pwned") + "']\n")
    status = main(["-q", "extract", "--dataset", "digits", "--features", str(path), "--out", str(tmp_path / "out"),
                   "--n-jobs", "1"])
    assert status == 2 and not (tmp_path / "pwned").exists()
    err = capsys.readouterr().err
    assert err.startswith(f"cvpipe: error: {path}: not valid YAML") and "Traceback" not in err


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    from cvpipe.commands import train

    out = tmp_path_factory.mktemp("cli") / "model"
    train("digits", "raw", "softmax:n_epochs=1", out, limit=60, progress=False)
    return out


def test_predict_names_each_unreadable_path_and_exits_1(tmp_path, capsys, digits_model):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("L", (8, 8), 128).save(good)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("just text\n")
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:40])
    (tmp_path / "page.png").write_bytes(b"%PDF-1.4\n%%EOF\n")
    (tmp_path / "folder.png").mkdir()
    paths = [good, tmp_path / "empty.png", tmp_path / "notes.png", tmp_path / "cut.png", tmp_path / "page.png",
             tmp_path / "folder.png", tmp_path / "missing.png"]
    if os.path.exists("/dev/zero"):
        paths.append(pathlib.Path("/dev/zero"))
    status = main(["-q", "predict", str(digits_model), *map(str, paths), "--format", "jsonl"])
    assert status == 1  # the job ran; some of its rows are errors
    out = capsys.readouterr()
    predictions = [json.loads(line) for line in out.out.splitlines()]
    assert [p["path"] for p in predictions] == list(map(str, paths))
    assert predictions[0]["label"] is not None and predictions[0]["error"] is None
    for p in predictions[1:]:
        assert p["error"].startswith(p["path"] + ": "), p
    assert "Traceback" not in out.err and out.err.strip() == (f"cvpipe: error: {len(paths) - 1} of {len(paths)} "
                                                              "images could not be predicted (their rows' error "
                                                              "says why)")


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.update(format_version="2"), "format_version '2' is not supported"),
    (lambda m: m.update(steps=[1]), "every step needs a name"),
    (lambda m: m["steps"][-1].update(params=None), "'params' is missing or not a dict"),
])
def test_predict_with_a_tampered_manifest_is_a_one_line_error(tmp_path, capsys, digits_model, edit, match):
    import shutil

    from PIL import Image

    model = shutil.copytree(digits_model, tmp_path / "model")
    manifest = json.loads((model / "manifest.json").read_text())
    edit(manifest)
    (model / "manifest.json").write_text(json.dumps(manifest))
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    assert main(["-q", "predict", str(model), str(tmp_path / "a.png")]) == 2
    assert re.search(match, _one_line_error(capsys))
