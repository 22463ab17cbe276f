"""The parts of bench/bench_features_vs_convnet.py that decide what is measured and what is
shown: the training subsets, the resume of a results file, and the rendered table and plot."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_features_vs_convnet as bench  # noqa: E402

from pipeline.data.dataset import ArrayDataset  # noqa: E402

CLASSES = tuple(f"c{i}" for i in range(10))


def _labels():
    # unequal classes (50, 100, ..., 500: 2,750 rows), shuffled, so stratification shows
    rng = np.random.default_rng(7)
    return rng.permutation(np.repeat(np.arange(10), np.arange(1, 11) * 50))


def test_subset_is_stratified_seeded_and_sorted():
    labels = _labels()
    rows = bench.subset_indices(labels, 275, seed=3)
    assert len(rows) == len(np.unique(rows)) == 275
    assert np.all(np.diff(rows) > 0)
    # each class keeps its share of the whole: 275 / 2,750 of it, exactly here
    np.testing.assert_array_equal(np.bincount(labels[rows], minlength=10), np.arange(1, 11) * 5)
    np.testing.assert_array_equal(rows, bench.subset_indices(labels, 275, seed=3))
    assert not np.array_equal(rows, bench.subset_indices(labels, 275, seed=4))
    odd = bench.subset_indices(labels, 101, seed=0)  # shares that do not divide: each within one image
    assert len(odd) == 101
    assert np.all(np.abs(np.bincount(labels[odd], minlength=10) - 101 * np.arange(1, 11) * 50 / 2750) < 1)


def test_subset_is_what_cvpipe_train_takes_and_all_rows_at_full_size():
    from cvpipe.commands import limited

    labels = _labels()
    images = np.arange(len(labels), dtype=np.uint8)[:, None, None].repeat(2, 1).repeat(2, 2)
    data = ArrayDataset(images, labels, CLASSES)
    for n, seed in ((300, 0), (300, 1), (1000, 2)):
        rows = bench.subset_indices(labels, n, seed)
        np.testing.assert_array_equal(limited(data, n, seed).labels, labels[rows])
        np.testing.assert_array_equal(limited(data, n, seed).images, images[rows])
    np.testing.assert_array_equal(bench.subset_indices(labels, len(labels), seed=5), np.arange(len(labels)))


def test_seeded_features_set_random_state_and_device_where_taken():
    spec = [{"name": "bovw", "params": {"n_words": 8, "random_state": 0}},
            {"name": "hog", "params": {"pixels_per_cell": [7, 7]}}, {"name": "raw"}]
    assert bench.seeded_features(spec, 2, "cpu") == [
        {"name": "bovw", "params": {"n_words": 8, "random_state": 2, "device": "cpu"}},
        {"name": "hog", "params": {"pixels_per_cell": [7, 7], "device": "cpu"}},
        {"name": "raw", "params": {"device": "cpu"}}]
    assert bench.seeded_features("hog:pixels_per_cell=7x7,raw", 1) == [
        {"name": "hog", "params": {"pixels_per_cell": [7, 7]}}, {"name": "raw", "params": {}}]


@pytest.mark.parametrize("item", ["raw", "=a.yaml", "raw="])
def test_configs_option_says_what_it_expects(item):
    with pytest.raises(ValueError, match=f"expects NAME=PATH items .*got '{item}'"):
        bench.parse_configs([item])


def _record(pipeline, n, seed, accuracy, **extra):
    return {"pipeline": pipeline, "n_train": n, "seed": seed, "test_accuracy": accuracy, "fit_seconds": 10.0 + seed,
            "predict_seconds_per_image": 1e-4, "model_bytes": 2_000_000, "config_sha256": "x", "machine": "m",
            **extra}


def _write(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_run_measures_only_the_cells_not_in_the_results(tmp_path, monkeypatch):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: fashion-mnist\nfeatures: raw\nclassifier: softmax\n")
    results = tmp_path / "r.jsonl"
    # one cell done, and a line half-written by a killed run: its cell (a, 20, 1) runs again
    _write(results, [_record("a", 10, 0, 0.5)], tail='{"pipeline": "a", "n_train": 20, "se')
    small = ArrayDataset(np.zeros((40, 2, 2), np.uint8), np.arange(40) % 10, CLASSES)
    monkeypatch.setattr("pipeline.data.load_dataset", lambda name, split: small)
    calls = []

    def fake_measure(name, config_path, n, seed, train, test, environment, device="cpu"):
        calls.append((name, n, seed))
        return _record(name, n, seed, 0.6)

    monkeypatch.setattr(bench, "measure_cell", fake_measure)
    argv = ["--configs", f"a={config}", f"b={config}", "--only", "a", "--sizes", "10", "20", "--seeds", "0", "1",
            "--results", str(results)]
    bench.main(argv)
    assert calls == [("a", 10, 1), ("a", 20, 0), ("a", 20, 1)]
    assert {bench.cell_key(r) for r in bench.read_results(results)} == {
        ("a", 10, 0), ("a", 10, 1), ("a", 20, 0), ("a", 20, 1)}
    calls.clear()
    bench.main(argv)
    assert calls == []


def test_render_gives_mean_and_sample_sd_and_shows_missing_cells(tmp_path, capsys):
    results, plot = tmp_path / "r.jsonl", tmp_path / "p.png"
    _write(results, [_record("a", 100, 0, 0.80), _record("a", 100, 1, 0.82), _record("a", 100, 2, 0.84),
                     _record("a", 1000, 1, 0.90),
                     _record("b", 100, 0, 0.70), _record("b", 100, 2, 0.74),
                     _record("a", 100, 9, 0.10)])  # a seed not asked for: left out
    bench.main(["--render", "--configs", "a=x.yaml", "b=y.yaml", "c=z.yaml", "--sizes", "100", "1000",
                "--seeds", "0", "1", "2", "--results", str(results), "--plot", str(plot)])
    rows = {line.split(" | ")[0].lstrip("| "): line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ")}
    assert rows["a"] == ("| a | 82.00% ± 2.00% (3 seeds) | 90.00% (1 of 3 seeds, no s.d.) | 11.0 | 0.100 "
                         "| 2.0 MB |")
    assert rows["b"] == "| b | 72.00% ± 2.83% (2 of 3 seeds) | missing | missing | missing | missing |"
    assert rows["c"] == "| c | missing | missing | missing | missing | missing |"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_refuses_an_empty_results_file(tmp_path):
    with pytest.raises(SystemExit, match="no results to render"):
        bench.main(["--render", "--results", str(tmp_path / "none.jsonl"), "--plot", str(tmp_path / "p.png")])


def test_measure_cell_fits_scores_and_sizes_one_cell(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: fashion-mnist\nfeatures: raw\nclassifier: softmax:n_epochs=3\n")
    rng = np.random.default_rng(0)

    def split(n):  # each class a brightness: easy to learn, so a wrong label order would show
        labels = np.arange(n) % 10
        images = np.clip(labels[:, None, None] * 25 + rng.integers(0, 10, (n, 6, 6)), 0, 255).astype(np.uint8)
        return ArrayDataset(images, labels, CLASSES)

    train, test = split(300), split(50)
    record = bench.measure_cell("a", str(config), 100, 2, train, test, {"machine": "m", "threads": 1})
    assert json.loads(json.dumps(record)) == record
    assert (record["pipeline"], record["n_train"], record["seed"], record["n_test"]) == ("a", 100, 2, 50)
    assert record["classifier_params"]["random_state"] == 2 and record["classifier_params"]["device"] == "cpu"
    assert record["features"] == [{"name": "raw", "params": {"device": "cpu"}}]
    assert record["test_accuracy"] > 0.9
    assert record["model_bytes"] > 6 * 6 * 10 * 4  # at least the float32 weights
    assert record["predict_seconds_per_image"] == pytest.approx(record["predict_seconds"] / 50)
    assert record["machine"] == "m" and len(record["config_sha256"]) == 64
