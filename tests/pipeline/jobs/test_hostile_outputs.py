"""Odd and hostile uses of `cvpipe extract --out URL` (pipeline.jobs.store) and of ``shuffle_buffer``
(classifiers._sgd.minibatches, train_from_features).

Every test runs in tmp_path (the CLI tests chdir there first, so a job written to a
wrong, relative place lands in tmp_path and nowhere else)."""
import io

import numpy as np
import pytest

from pipeline.jobs.extract import load_features, run_extraction
from tests.pipeline.jobs.interrupt import stop_after

fsspec = pytest.importorskip("fsspec")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A small dataset and the bytes a job into a local folder writes for it (raw features)."""
    folder = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(3)
    np.savez(folder / "toy.npz", images=rng.integers(0, 256, size=(130, 8, 8), dtype=np.uint8),
             labels=rng.integers(0, 3, 130))
    run_extraction(folder / "toy.npz", "raw", folder / "local", chunk_size=40, n_jobs=1, progress=False)
    return folder / "toy.npz", (folder / "local" / "features.npy").read_bytes()


def _cli(args, capsys):
    from cvpipe.cli import main

    capsys.readouterr()
    rc = main(["-q", "extract", "--features", "raw", "--n-jobs", "1", "--chunk-size", "40", *args])
    return rc, capsys.readouterr().err


# --- Feature 1: --out URL --------------------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("url", ["s3://", "s3:///", "memory://", "file://"])
def test_a_url_with_an_empty_path_is_refused_not_written_into_the_current_folder(toy, tmp_path, monkeypatch,
                                                                                 capsys, url):
    """BUG: RemoteStore strips the trailing slashes ("s3://" -> "s3:"), which fsspec reads as a
    local relative path: the job is written, exit 0, into ./s3: (./memory:, or for file:// the
    current folder itself, then fails); nothing tells the user the features are not in S3."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    rc, err = _cli(["--dataset", str(toy[0]), "--out", url], capsys)
    assert rc != 0 and "cvpipe: error:" in err and "Traceback" not in err
    assert sorted(p.name for p in cwd.iterdir()) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("as_url", [True, False])
def test_an_out_below_a_file_gives_a_clear_error_not_a_traceback(toy, tmp_path, monkeypatch, capsys, as_url):
    """BUG: --out file:///.../a_file/sub (or the plain path) raises NotADirectoryError out of
    cvpipe.cli.main: a Python traceback instead of `cvpipe: error: ...`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("not a folder")
    out = f"file://{tmp_path}/a_file/sub" if as_url else str(tmp_path / "a_file" / "sub")
    rc, err = _cli(["--dataset", str(toy[0]), "--out", out], capsys)  # raises today
    assert rc != 0 and "cvpipe: error:" in err
    assert (tmp_path / "a_file").read_text() == "not a folder"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, data", [("job.json", b'{"job'), ("manifest.json", b"")])
def test_an_unreadable_job_file_at_a_url_is_named_in_the_error(toy, tmp_path, monkeypatch, capsys, name, data):
    """BUG: a cut-short job.json / manifest.json (file:// writes are not synced: a crash can leave
    one empty) ends the job with `cvpipe: error: Unterminated string starting at: line 1 column 2`,
    a bare JSON parser message that names no file and says nothing of what to do."""
    monkeypatch.chdir(tmp_path)
    url = f"file://{tmp_path}/out"
    stop_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(toy[0], "raw", url, chunk_size=40, n_jobs=1, progress=False)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / name).write_bytes(data)
    rc, err = _cli(["--dataset", str(toy[0]), "--out", url], capsys)
    assert rc != 0 and "cvpipe: error:" in err
    assert name in err, err


def _corrupt(chunks, kind):
    first = chunks / "00000.npy"
    if kind == "truncated chunk":
        first.write_bytes(first.read_bytes()[:100])
    elif kind == "empty chunk":
        first.write_bytes(b"")
    elif kind == "missing chunk":
        first.unlink()
    elif kind == "missing record":
        (chunks / "00000.json").unlink()
    elif kind == "truncated record":
        (chunks / "00000.json").write_bytes((chunks / "00000.json").read_bytes()[:20])
    elif kind == "record not an object":
        (chunks / "00000.json").write_bytes(b"[1, 2]")
    elif kind == "record not utf-8":
        (chunks / "00000.json").write_bytes(b"\xff\xfe\x00")
    elif kind == "chunk 0 copied over chunk 1":
        (chunks / "00001.npy").write_bytes(first.read_bytes())
        (chunks / "00001.json").write_bytes((chunks / "00000.json").read_bytes())
    elif kind == "leftover temporaries":
        (chunks / ".00000.npy.0123456789ab.tmp").write_bytes(b"cut short")
        (chunks.parent / ".features.npy.0123456789ab.tmp").write_bytes(b"cut short")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["truncated chunk", "empty chunk", "missing chunk", "missing record",
                                  "truncated record", "record not an object", "record not utf-8",
                                  "chunk 0 copied over chunk 1", "leftover temporaries"])
def test_a_file_url_job_resumes_over_damaged_chunks_to_the_local_bytes(toy, tmp_path, monkeypatch, kind):
    """Guard: whatever a killed job left in its chunks, the resumed URL job writes exactly the
    local-folder job's features.npy and leaves only its outputs."""
    url = f"file://{tmp_path}/out/"  # a trailing slash too
    stop_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(toy[0], "raw", url, chunk_size=40, n_jobs=1, progress=False)
    monkeypatch.undo()
    _corrupt(tmp_path / "out" / "chunks", kind)
    run_extraction(toy[0], "raw", url, chunk_size=40, n_jobs=1, progress=False)
    assert (tmp_path / "out" / "features.npy").read_bytes() == toy[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["extractor", "features.npy", "labels.npy",
                                                                     "manifest.json"]
    features, _, _ = load_features(url, mmap=False, verify=True)
    assert features.tobytes() == np.load(io.BytesIO(toy[1])).tobytes()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sub", ["dbl//out", "ü n i/out", "x/./out"])
def test_odd_file_url_paths_give_the_local_bytes(toy, tmp_path, sub):
    """Guard: a double slash, unicode and spaces, or a ./ in the URL's path."""
    url = f"file://{tmp_path}/{sub}"
    run_extraction(toy[0], "raw", url, chunk_size=40, n_jobs=1, progress=False)
    features, _, _ = load_features(url, mmap=False, verify=True)
    assert features.tobytes() == np.load(io.BytesIO(toy[1])).tobytes()


@pytest.mark.timeout(60)
def test_a_different_job_at_a_url_is_refused_then_replaced_with_overwrite(toy, tmp_path, monkeypatch, capsys):
    """Guard: a second, different job to the same URL says so (exit 2, a usage mistake; old job untouched);
    with --overwrite it replaces it, with the local job's bytes."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(9)
    np.savez(tmp_path / "other.npz", images=rng.integers(0, 256, size=(50, 8, 8), dtype=np.uint8),
             labels=rng.integers(0, 3, 50))
    url = f"file://{tmp_path}/out"
    assert _cli(["--dataset", str(tmp_path / "other.npz"), "--out", url], capsys)[0] == 0
    before = (tmp_path / "out" / "features.npy").read_bytes()
    rc, err = _cli(["--dataset", str(toy[0]), "--out", url], capsys)
    assert rc == 2 and "holds a different extraction job" in err and "--overwrite" in err
    assert (tmp_path / "out" / "features.npy").read_bytes() == before
    assert _cli(["--dataset", str(toy[0]), "--out", url, "--overwrite"], capsys)[0] == 0
    assert (tmp_path / "out" / "features.npy").read_bytes() == toy[1]


# --- Feature 2: shuffle_buffer ---------------------------------------------------------------------

def test_every_row_is_visited_once_per_epoch_for_any_buffer():
    """Guard: each epoch's batches are a permutation of range(n), full-size but the last."""
    from classifiers._sgd import minibatches

    for n in [*range(1, 26), 97, 101, 1009]:
        for batch in sorted({1, 2, 7, max(1, n - 1), n, n + 3, 64}):
            for buffer in sorted({1, 2, 3, 7, 8, 9, 17, max(1, n - 1), n, n + 1, 10**6}):
                for rng in (np.random.default_rng(n), np.random.RandomState(n)):
                    batches = list(minibatches(n, batch, rng, shuffle_buffer=buffer))
                    order = np.concatenate(batches)
                    assert np.array_equal(np.sort(order), np.arange(n)), (n, batch, buffer)
                    assert all(len(b) == min(batch, n) for b in batches[:-1]), (n, batch, buffer)


def _estimators():
    from classifiers.linear import LinearSVM, Softmax
    from classifiers.net import TwoLayerNet

    return [lambda **kw: Softmax(**kw), lambda **kw: LinearSVM(**kw),
            lambda **kw: TwoLayerNet(hidden_sizes=(8,), **kw)]


@pytest.mark.parametrize("make", _estimators())
@pytest.mark.parametrize("bad", [0, -1, 2.5, 3.0, True, False, np.float64(4.0), "4"])
def test_a_bad_shuffle_buffer_is_refused(make, bad):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    with pytest.raises(ValueError, match="shuffle_buffer must be an integer >= 1 or None"):
        make(shuffle_buffer=bad, n_epochs=1, device="cpu").fit(X, y)


@pytest.mark.parametrize("make", _estimators())
def test_shuffle_buffer_training_is_deterministic_and_survives_save_and_load(make, tmp_path):
    """Guard: the same random_state gives the same model (numpy-int buffers, prime sizes), and a
    saved model with shuffle_buffer set loads back with it and predicts the same."""
    from sklearn.preprocessing import StandardScaler

    from pipeline.model import ImagePipeline, build_extractor, load, save

    rng = np.random.default_rng(0)
    images, y = rng.integers(0, 256, size=(97, 8, 8), dtype=np.uint8), rng.integers(0, 3, 97)
    extractor = build_extractor("raw").fit(images[:8])
    scaler = StandardScaler().fit(extractor.transform(images))
    X = scaler.transform(extractor.transform(images)).astype(np.float32)
    a = make(shuffle_buffer=np.int64(13), batch_size=7, n_epochs=3, random_state=0, device="cpu").fit(X, y)
    b = make(shuffle_buffer=np.int64(13), batch_size=7, n_epochs=3, random_state=0, device="cpu").fit(X, y)
    assert np.array_equal(np.asarray(a.loss_history_), np.asarray(b.loss_history_))
    model = ImagePipeline.from_fitted(extractor, scaler, a, input_shape=(8, 8), color_mode="L",
                                      class_names=["a", "b", "c"])
    save(model, tmp_path / "model")
    loaded = load(tmp_path / "model")
    assert loaded.get_params()["classifier__shuffle_buffer"] == 13
    assert np.array_equal(loaded.predict(images), model.predict(images))


@pytest.mark.timeout(60)
def test_train_from_features_auto_buffer_sets_one_for_large_features(toy, tmp_path, monkeypatch):
    """Guard: "auto" gives the classifier a buffer of SHUFFLE_BYTES of rows when the features are
    larger, the same model twice with one seed, and the model saves and loads."""
    import pipeline.jobs.train as train
    from pipeline.model import load, save

    out = tmp_path / "feat"
    run_extraction(toy[0], "raw", out, chunk_size=40, n_jobs=1, progress=False)
    monkeypatch.setattr(train, "SHUFFLE_BYTES", 4 * 64 * 20)  # 20 rows of 64 float32 features
    models = [train.train_from_features(out, "softmax", seed=1, scratch_dir=tmp_path, progress=False)
              for _ in range(2)]
    assert models[0].get_params()["classifier__shuffle_buffer"] == 20
    assert np.array_equal(models[0].classifier_.loss_history_, models[1].classifier_.loss_history_)
    save(models[0], tmp_path / "model")
    images = np.load(toy[0])["images"]
    assert np.array_equal(load(tmp_path / "model").predict(images), models[0].predict(images))
    assert models[1].predict(images).tolist() == models[0].predict(images).tolist()
