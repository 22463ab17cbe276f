import json

import numpy as np

from pipeline.cli import main


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


def test_demo_summarizes_the_extraction(tmp_path, capsys):
    assert main(["-q", "demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "feature matrix" in out and (tmp_path / "demo" / "features.npy").is_file()
