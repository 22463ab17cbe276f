import json

import numpy as np

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
    import pipeline.data.datasets as datasets

    monkeypatch.setenv("CVPIPE_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp_path / "none")
    name, why = demo.choose_demo_dataset(fetch=False)
    assert name == "digits" and "neither on this machine nor fetchable" in why
