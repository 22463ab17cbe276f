"""The batch job: same bytes on both engines, resumable, failures recorded."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pipeline.jobs.engines as engines
from pipeline.data.datasets import load_dataset
from pipeline.jobs.extract import ExtractionError, load_features, run_extraction
from pipeline.model.spec import build_extractor

SPEC = "hog:pixels_per_cell=7,bovw:n_words=12,patch_size=5,stride=3,random_state=0"


@pytest.fixture(scope="module")
def npz_dataset(tmp_path_factory):
    """A small synthetic dataset with train and test files, loaded through the npz loader."""
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("data")
    path = root / "toy.npz"
    images = rng.integers(0, 256, size=(230, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 3, size=230)
    np.savez(path, images=images, labels=labels)
    return path


def _bytes(out):
    return (out / "features.npy").read_bytes(), (out / "labels.npy").read_bytes()


def test_local_job_writes_what_the_extractor_computes(npz_dataset, tmp_path):
    manifest = run_extraction(npz_dataset, SPEC, tmp_path / "out", chunk_size=50, n_jobs=2, progress=False)
    features, labels, on_disk = load_features(tmp_path / "out")
    data = load_dataset(npz_dataset)
    expected = build_extractor(SPEC).fit(data.images).transform(data.images)
    assert isinstance(features, np.memmap) and features.dtype == np.float32
    np.testing.assert_array_equal(features, expected)
    np.testing.assert_array_equal(labels, data.labels)
    assert on_disk == manifest
    assert manifest["n_chunks"] == 5 and manifest["dataset"]["fingerprint"] == data.fingerprint()
    assert manifest["files"]["features"]["shape"] == list(expected.shape)
    assert not (tmp_path / "out" / "chunks").exists()


def test_the_job_writes_files_with_the_permissions_of_new_files(npz_dataset, tmp_path, umask_022):
    run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", chunk_size=100, progress=False)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes


@pytest.mark.slow
def test_dask_engine_gives_the_same_bytes_as_local(npz_dataset, tmp_path):
    from distributed import LocalCluster

    run_extraction(npz_dataset, SPEC, tmp_path / "local", chunk_size=40, n_jobs=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        manifest = run_extraction(npz_dataset, SPEC, tmp_path / "dask", chunk_size=40, engine="dask",
                                  scheduler=cluster.scheduler_address, progress=False)
    assert manifest["engine"] == "dask"
    assert _bytes(tmp_path / "local") == _bytes(tmp_path / "dask")


def test_an_interrupted_job_resumes_to_the_same_bytes(npz_dataset, tmp_path, monkeypatch):
    run_extraction(npz_dataset, SPEC, tmp_path / "whole", chunk_size=30, n_jobs=1, progress=False)
    real, calls = engines.transform_chunk, []

    def dies_after_three(*args):
        if len(calls) == 3:
            raise KeyboardInterrupt  # stands for the job being killed
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(engines, "transform_chunk", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(npz_dataset, SPEC, tmp_path / "cut", chunk_size=30, n_jobs=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "cut" / "chunks").iterdir()) == ["00000.npy", "00001.npy", "00002.npy"]
    assert not (tmp_path / "cut" / "manifest.json").exists()
    monkeypatch.setattr(engines, "transform_chunk", real)
    manifest = run_extraction(npz_dataset, SPEC, tmp_path / "cut", chunk_size=30, n_jobs=1, progress=False)
    assert manifest["resumed_chunks"] == 3
    assert _bytes(tmp_path / "cut") == _bytes(tmp_path / "whole")


@pytest.mark.slow
def test_a_killed_process_resumes_to_the_same_bytes(tmp_path):
    rng = np.random.default_rng(2)
    data = tmp_path / "big.npz"
    np.savez(data, images=rng.integers(0, 256, (3000, 28, 28), dtype=np.uint8), labels=rng.integers(0, 5, 3000))
    spec = "bovw:n_words=64,patch_size=6,stride=1,random_state=0"
    cmd = [sys.executable, "-m", "cvpipe.cli", "-q", "extract", "--dataset", str(data), "--features", spec,
           "--chunk-size", "50", "--n-jobs", "1"]
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "cut")])
    chunks = tmp_path / "cut" / "chunks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if chunks.is_dir() and len(list(chunks.glob("*.npy"))) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait() == -signal.SIGKILL, "the job finished before it could be killed; make it longer"
    assert not (tmp_path / "cut" / "manifest.json").exists()
    assert subprocess.run(cmd + ["--out", str(tmp_path / "cut")]).returncode == 0
    assert subprocess.run(cmd + ["--out", str(tmp_path / "whole")]).returncode == 0
    assert json.loads((tmp_path / "cut" / "manifest.json").read_text())["resumed_chunks"] >= 2
    assert _bytes(tmp_path / "cut") == _bytes(tmp_path / "whole")


def test_a_failing_chunk_is_recorded_and_retried(npz_dataset, tmp_path, monkeypatch):
    real = engines.transform_chunk

    def fails_on_chunk_two(extractor, index, images):
        if index == 2:
            return index, None, "ValueError: simulated bad chunk"
        return real(extractor, index, images)

    monkeypatch.setattr(engines, "transform_chunk", fails_on_chunk_two)
    with pytest.raises(ExtractionError, match="1 of 5 chunks failed"):
        run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", chunk_size=50, n_jobs=1,
                       progress=False)
    errors = json.loads((tmp_path / "out" / "errors.json").read_text())
    assert errors["failed_chunks"] == [{"chunk": 2, "items": [100, 149], "error": "ValueError: simulated bad chunk"}]
    assert len(list((tmp_path / "out" / "chunks").glob("*.npy"))) == 4
    monkeypatch.setattr(engines, "transform_chunk", real)
    manifest = run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", chunk_size=50, n_jobs=1,
                              progress=False)
    assert manifest["resumed_chunks"] == 4 and not (tmp_path / "out" / "errors.json").exists()


def test_a_different_job_in_the_folder_is_refused_unless_overwrite(npz_dataset, tmp_path):
    run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", progress=False)
    again = run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", progress=False)
    assert again["resumed_chunks"] == 0  # the finished job is returned as it is
    with pytest.raises(ExtractionError, match="holds a different extraction job"):
        run_extraction(npz_dataset, "hog:pixels_per_cell=4", tmp_path / "out", progress=False)
    manifest = run_extraction(npz_dataset, "hog:pixels_per_cell=4", tmp_path / "out", progress=False, overwrite=True)
    assert manifest["features"][0]["params"]["pixels_per_cell"] == [4, 4]


@pytest.mark.parametrize("kwargs, match", [({"engine": "spark"}, "engine must be one of"),
                                           ({"chunk_size": 0}, "chunk_size must be a positive integer")])
def test_bad_job_arguments(npz_dataset, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_extraction(npz_dataset, "hog", tmp_path / "out", progress=False, **kwargs)
