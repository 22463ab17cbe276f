"""Training from an extraction's output: memory-mapped, in blocks, unreadable rows left
out; the model predicts from images with the job's extractor."""
import json
import tracemalloc

import numpy as np
import pytest
from PIL import Image
from sklearn.preprocessing import StandardScaler

import pipeline.jobs.train as train_module
from cvpipe.cli import main
from pipeline.data.datasets import load_dataset
from pipeline.jobs import ExtractionError, run_extraction, train_from_features
from pipeline.model import build_classifier, load

SPEC = "hog:pixels_per_cell=7,bovw:n_words=12,patch_size=5,stride=3,random_state=0"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A toy .npz dataset (train and test files) and the extraction of its train file."""
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("data")
    labels = rng.integers(0, 3, 300)
    images = rng.integers(0, 120, size=(300, 28, 28), dtype=np.uint8)
    images[labels == 1, :14] += 100  # learnable classes
    images[labels == 2, :, :14] += 100
    np.savez(root / "train.npz", images=images[:240], labels=labels[:240])
    np.savez(root / "test.npz", images=images[240:], labels=labels[240:])
    out = root / "features"
    run_extraction(root / "train.npz", SPEC, out, chunk_size=64, n_jobs=1, progress=False)
    return root, out


@pytest.mark.parametrize("classifier", ["softmax", "svm", "net:hidden_sizes=16,n_epochs=3", "knn:n_neighbors=3"])
def test_the_model_is_the_scaler_and_classifier_of_the_features_on_the_jobs_extractor(job, tmp_path, classifier):
    root, out = job
    model = train_from_features(out, classifier, seed=2, scratch_dir=tmp_path, progress=False)
    features = np.load(out / "features.npy")
    data = load_dataset(root / "train.npz")
    reference_scaler = StandardScaler().fit(features)  # in memory, in one go
    np.testing.assert_allclose(model.scaler_.mean_, reference_scaler.mean_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.scaler_.scale_, reference_scaler.scale_, rtol=1e-10)
    clf = build_classifier(classifier)
    if "random_state" in clf.get_params():
        clf.set_params(random_state=2)
    clf.fit(model.scaler_.transform(features), data.labels)
    test = load_dataset(root / "test.npz")
    expected = clf.predict(model.scaler_.transform(model.features_.transform(test.images)))
    np.testing.assert_array_equal(model.predict(test.images), expected)
    np.testing.assert_array_equal(model.features_.transform(data.images), features)
    assert model.input_shape_ == (28, 28) and model.color_mode_ == "L" and model.class_names_ == ["0", "1", "2"]
    assert model.metrics_["n_train"] == 240 and model.metrics_["n_left_out"] == 0
    assert not list(tmp_path.iterdir()), "the scratch folder is removed"


def test_training_reads_the_features_in_blocks(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 8000)
    images = rng.integers(0, 100, (8000, 28, 28), dtype=np.uint8)
    images[labels == 1] += 100
    np.savez(tmp_path / "big.npz", images=images, labels=labels)
    out = tmp_path / "features"
    run_extraction(tmp_path / "big.npz", "raw", out, chunk_size=2000, n_jobs=1, progress=False)  # 25 MB
    features = np.load(out / "features.npy", mmap_mode="r")
    monkeypatch.setattr(train_module, "BLOCK_BYTES", 64 * features.shape[1] * 4)  # 64 rows a block
    train_from_features(out, "softmax:n_epochs=1", scratch_dir=tmp_path, progress=False)  # compiled kernels first
    tracemalloc.start()
    try:
        model = train_from_features(out, "softmax:n_epochs=1", scratch_dir=tmp_path, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < features.nbytes / 4, f"{peak} bytes allocated for {features.nbytes} bytes of features"
    monkeypatch.setattr(train_module, "BLOCK_BYTES", 2**30)  # one block
    reference = train_from_features(out, "softmax:n_epochs=1", scratch_dir=tmp_path, progress=False)
    np.testing.assert_allclose(model.scaler_.mean_, reference.scaler_.mean_, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(images[:500]), reference.predict(images[:500]))


def test_features_larger_than_the_shuffle_budget_train_from_a_shuffle_buffer(job, tmp_path, monkeypatch):
    _, out = job
    n_features = np.load(out / "features.npy", mmap_mode="r").shape[1]
    monkeypatch.setattr(train_module, "SHUFFLE_BYTES", 100 * 4 * n_features)  # 100 rows of 240
    model = train_from_features(out, "softmax", scratch_dir=tmp_path, progress=False)
    assert model.classifier_.shuffle_buffer == 100
    chosen = train_from_features(out, "softmax:shuffle_buffer=30", scratch_dir=tmp_path, progress=False)
    assert chosen.classifier_.shuffle_buffer == 30, "the classifier's own setting is kept"
    forced = train_from_features(out, "softmax", scratch_dir=tmp_path, shuffle_buffer=50, progress=False)
    assert forced.classifier_.shuffle_buffer == 50
    knn = train_from_features(out, "knn:n_neighbors=3", scratch_dir=tmp_path, progress=False)  # has no such order
    assert "shuffle_buffer" not in knn.classifier_.get_params()
    monkeypatch.setattr(train_module, "SHUFFLE_BYTES", 1000 * 4 * n_features)
    small = train_from_features(out, "softmax", scratch_dir=tmp_path, progress=False)
    assert small.classifier_.shuffle_buffer is None, "features within the budget: a permutation of all rows"


def test_unreadable_images_are_left_out(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(10):
            value = 40 if label == "a" else 200
            pixels = np.clip(rng.normal(value, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{i}.png")
    (folder / "b" / "3.png").write_bytes(b"truncated")
    run_extraction(folder, "color_hist:bins=8", tmp_path / "out", chunk_size=6, n_jobs=1, progress=False)
    model = train_from_features(tmp_path / "out", "knn:n_neighbors=1", scratch_dir=tmp_path, progress=False)
    assert model.metrics_["n_train"] == 19 and model.metrics_["n_left_out"] == 1
    assert not np.isnan(model.classifier_._X).any()
    assert model.color_mode_ == "RGB" and model.input_shape_ == (16, 16) and model.class_names_ == ["a", "b"]
    good = load_dataset(folder)
    assert (model.predict(good.images) == good.labels).all()


def test_changed_features_or_extractor_are_refused(job, tmp_path):
    import shutil

    _, out = job
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    features = np.load(copy / "features.npy")
    features[5, 0] += 1
    np.save(copy / "features.npy", features)
    with pytest.raises(ExtractionError, match="its sha256 differs"):
        train_from_features(copy, "softmax", scratch_dir=tmp_path, progress=False)
    shutil.copy(out / "features.npy", copy / "features.npy")
    manifest = json.loads((copy / "extractor" / "manifest.json").read_text())
    manifest["created"] = "2000-01-01T00:00:00+00:00"
    (copy / "extractor" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExtractionError, match="not the extractor that computed these features"):
        train_from_features(copy, "softmax", scratch_dir=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        train_from_features(tmp_path, "softmax", progress=False)


def test_the_cli_trains_from_features_and_scores_the_test_split(job, tmp_path, capsys):
    root, out = job
    status = main(["-q", "train", "--from-features", str(out), "--classifier", "knn:n_neighbors=3",
                   "--dataset", str(root / "test.npz"), "--out", str(tmp_path / "models" / "m")])
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    model = load(tmp_path / "models" / "m")
    test = load_dataset(root / "test.npz")
    accuracy = float(np.mean(model.predict(test.images) == test.labels))
    assert summary["metrics"]["test_accuracy"] == accuracy > 0.6  # an .npz is one split: "test" reads it as given
    assert summary["n_train"] == 240 and model.metrics_["features_job"]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["m"]  # no scratch left beside it


@pytest.mark.parametrize("extra", [["--features", "hog"], ["--limit", "5"], []])
def test_the_cli_refuses_what_from_features_does_not_take(job, tmp_path, capsys, extra):
    _, out = job
    argv = ["-q", "train", "--from-features", str(out), "--out", str(tmp_path / "m"), *extra]
    if extra:
        argv += ["--classifier", "softmax"]
    assert main(argv) == 2
    assert "--from-features takes --classifier" in capsys.readouterr().err
