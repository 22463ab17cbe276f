"""The batch job across hosts: a Dask scheduler and the coordinator on one host, two
workers on another; the files written are the local engine's bytes.

The hosts are Linux network namespaces on this machine (tests/hosts.py): each has a
network of its own, so the processes reach each other only by the addresses a real
cluster would use (a worker or scheduler bound to 127.0.0.1 fails here as it would on a
LAN), while they share this machine's filesystem, which stands in for the shared
filesystem the Dask engine needs. A LocalCluster (test_extract_processes.py) cannot
catch what only breaks across machines.
"""
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.jobs.extract import run_extraction
from tests.conftest import require

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

SPEC = "hog:pixels_per_cell=7,bovw:n_words=12,patch_size=5,stride=3,random_state=0"
N_IMAGES, CHUNK_SIZE = 2000, 400
N_CHUNKS = -(-N_IMAGES // CHUNK_SIZE)
PORT = 8786  # free whatever runs on this machine: host A's network is the test's own
N_WORKERS = 2

#: Run in host A: waits (bounded) for the workers, then prints how many tasks each has run.
CLUSTER_STATE = """
import json, sys
from distributed import Client
with Client(sys.argv[1], timeout=30) as client:
    client.wait_for_workers(int(sys.argv[2]), timeout=30)
    print(json.dumps(client.run(lambda dask_worker: dask_worker.state.executed_count)))
"""


@pytest.fixture
def hosts_module():
    tests = str(Path(__file__).parents[2])  # where hosts.py is
    sys.path.insert(0, tests)
    try:
        import hosts
    finally:
        # Left on sys.path, tests/ would hide the package `pipeline` behind tests/pipeline
        # in the processes the local engine spawns (they inherit sys.path).
        sys.path.remove(tests)

    ok, reason = hosts.namespaces_available()
    require(ok, f"cannot make test hosts (network namespaces): {reason}")
    return hosts


@pytest.fixture
def npz_dataset(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "images.npz"
    np.savez(path, images=rng.integers(0, 256, (N_IMAGES, 28, 28), dtype=np.uint8),
             labels=rng.integers(0, 5, N_IMAGES))
    return path


def _bytes(out):
    return (out / "features.npy").read_bytes(), (out / "labels.npy").read_bytes()


def _logs(folder):
    """The last lines of every process's log, for a failure's message."""
    return "\n".join(f"--- {log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                     for log in sorted(folder.glob("*.log")))


def _cluster_state(host, scheduler, logs):
    """``{worker address: tasks run}``, once the scheduler has ``N_WORKERS`` workers."""
    done = host.run([sys.executable, "-c", CLUSTER_STATE, scheduler, str(N_WORKERS)], timeout=90)
    assert done.returncode == 0, f"the cluster never had {N_WORKERS} workers: {done.stderr}\n{_logs(logs)}"
    return json.loads(done.stdout)


def test_workers_on_another_host_write_the_same_bytes_as_the_local_engine(hosts_module, npz_dataset, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    # One BLAS thread per process: two workers and the coordinator share a small CI machine.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.monotonic()
    with hosts_module.namespaced_hosts(2) as hosts:
        a, b = hosts
        scheduler = f"tcp://{a.address}:{PORT}"

        def start_process(host, name, cmd):
            with open(logs / f"{name}.log", "wb") as log:
                host.popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)

        start_process(a, "scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", a.address,
                                       "--port", str(PORT), "--no-dashboard"])
        # --host: B's address, said rather than guessed (Dask's guess, the interface that
        # routes to the scheduler, is the same here but not on a machine of several networks);
        # --death-timeout: a worker that cannot reach the scheduler exits on its own.
        start_process(b, "workers", [sys.executable, "-m", "distributed.cli.dask_worker", scheduler,
                                     "--nworkers", str(N_WORKERS), "--nthreads", "1", "--host", b.address,
                                     "--no-dashboard", "--death-timeout", "60",
                                     "--local-directory", str(tmp_path / "dask-b")])
        before = _cluster_state(a, scheduler, logs)
        assert len(before) == N_WORKERS and all(w.startswith(f"tcp://{b.address}:") for w in before), before
        assert sum(before.values()) == 0
        crossed_before = hosts.bytes_crossed()
        cluster_ready = time.monotonic()

        job = a.run([sys.executable, "-m", "cvpipe.cli", "-q", "extract", "--dataset", str(npz_dataset),
                     "--features", SPEC, "--out", str(tmp_path / "dask"), "--engine", "dask",
                     "--scheduler", scheduler, "--chunk-size", str(CHUNK_SIZE)], timeout=180, cwd=tmp_path, env=env)
        assert job.returncode == 0, f"the job failed: {job.stderr}\n{_logs(logs)}"
        job_done = time.monotonic()
        crossed = hosts.bytes_crossed() - crossed_before
        after = _cluster_state(a, scheduler, logs)

    assert sorted(after) == sorted(before), "a worker was lost or replaced during the job"
    assert sum(after.values()) == N_CHUNKS, f"the workers on host B ran {after}, not the {N_CHUNKS} chunks"
    assert crossed > 0
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert manifest["engine"] == "dask"
    assert manifest["n_chunks"] == N_CHUNKS

    run_extraction(npz_dataset, SPEC, tmp_path / "local", chunk_size=CHUNK_SIZE, n_jobs=2, progress=False)
    assert _bytes(tmp_path / "local") == _bytes(tmp_path / "dask")
    logger.info("cluster up in %.1f s, job %.1f s; %d bytes crossed the network (%.0f per image), tasks per worker %s",
                cluster_ready - start, job_done - cluster_ready, crossed, crossed / N_IMAGES, after)
