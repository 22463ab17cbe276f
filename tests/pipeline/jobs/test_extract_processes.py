"""The batch job as processes: the CLI killed with SIGKILL resumes to the same bytes and
leaves no worker behind, on the local engine and on a local Dask cluster; a Dask
cluster writes the same bytes as the local engine."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from pipeline.jobs.extract import run_extraction

pytestmark = pytest.mark.slow

SPEC = "hog:pixels_per_cell=7,bovw:n_words=12,patch_size=5,stride=3,random_state=0"


@pytest.fixture(scope="module")
def npz_dataset(tmp_path_factory):
    rng = np.random.default_rng(2)
    path = tmp_path_factory.mktemp("data") / "big.npz"
    np.savez(path, images=rng.integers(0, 256, (3000, 28, 28), dtype=np.uint8), labels=rng.integers(0, 5, 3000))
    return path


def _bytes(out):
    return (out / "features.npy").read_bytes(), (out / "labels.npy").read_bytes()


def test_dask_clusters_write_the_same_bytes_as_the_local_engine(npz_dataset, tmp_path):
    from distributed import LocalCluster

    run_extraction(npz_dataset, SPEC, tmp_path / "local", chunk_size=400, n_jobs=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        manifest = run_extraction(npz_dataset, SPEC, tmp_path / "dask", chunk_size=400, engine="dask",
                                  scheduler=cluster.scheduler_address, progress=False)
    assert manifest["engine"] == "dask"
    assert _bytes(tmp_path / "local") == _bytes(tmp_path / "dask")
    run_extraction(npz_dataset, SPEC, tmp_path / "own", chunk_size=400, engine="dask", n_jobs=2, progress=False)
    assert _bytes(tmp_path / "local") == _bytes(tmp_path / "own")


def _extract_command(data, out, engine):
    spec = "bovw:n_words=64,patch_size=6,stride=1,random_state=0"  # slow enough to be killed mid-way
    return [sys.executable, "-m", "cvpipe.cli", "-q", "extract", "--dataset", str(data), "--features", spec,
            "--chunk-size", "50", "--n-jobs", "2", "--engine", engine, "--out", str(out)]


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_killed_job_leaves_no_worker_and_resumes_to_the_same_bytes(npz_dataset, tmp_path, engine):
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    proc = subprocess.Popen(_extract_command(npz_dataset, cut, engine))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        # a chunk is finished once its record is written, after its array: count the records
        if len(list((cut / "chunks").glob("[0-9]*.json"))) >= 4 if (cut / "chunks").is_dir() else False:
            break
        time.sleep(0.01)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert len(workers) >= 2, "the job ran its chunks without worker processes?"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL, "the job finished before it could be killed; make it longer"
    _, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, f"{len(alive)} worker processes outlived the killed job: {[p.cmdline()[:3] for p in alive]}"
    assert not (cut / "manifest.json").exists()
    assert subprocess.run(_extract_command(npz_dataset, cut, engine), timeout=600).returncode == 0
    assert subprocess.run(_extract_command(npz_dataset, whole, "local"), timeout=600).returncode == 0
    assert json.loads((cut / "manifest.json").read_text())["resumed_chunks"] >= 4
    assert _bytes(cut) == _bytes(whole)
    assert sorted(p.name for p in cut.iterdir()) == ["extractor", "features.npy", "labels.npy", "manifest.json"]
