"""A job whose output location is an fsspec URL: the workers write their chunks there, the
coordinator verifies and assembles them there; the same bytes as a local folder's job.

``file://`` runs everywhere fsspec is installed; ``s3://`` runs against a moto S3 server on
loopback (the ``dev`` extra installs moto and s3fs), with the local engine and a local
Dask cluster."""
import io
import socket

import numpy as np
import pytest

from pipeline.jobs.extract import ExtractionError, load_features, run_extraction
from tests.pipeline.jobs.interrupt import stop_after

fsspec = pytest.importorskip("fsspec")

SPEC = "hog:pixels_per_cell=7,bovw:n_words=12,patch_size=5,stride=3,random_state=0"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    np.savez(path, images=rng.integers(0, 256, size=(150, 28, 28), dtype=np.uint8), labels=rng.integers(0, 3, 150))
    return path


@pytest.fixture(scope="module")
def local_run(dataset, tmp_path_factory):
    """The bytes a job into a local folder writes."""
    out = tmp_path_factory.mktemp("local") / "out"
    run_extraction(dataset, SPEC, out, chunk_size=40, n_jobs=2, progress=False)
    return (out / "features.npy").read_bytes(), (out / "labels.npy").read_bytes()


def _url_bytes(url):
    fs, root = fsspec.core.url_to_fs(url)
    return fs.cat_file(f"{root}/features.npy"), fs.cat_file(f"{root}/labels.npy")


def test_a_file_url_job_writes_the_local_jobs_bytes_and_resumes_verified(dataset, local_run, tmp_path, monkeypatch):
    url = f"file://{tmp_path}/out"
    stop_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(dataset, SPEC, url, chunk_size=40, n_jobs=2, progress=False)
    monkeypatch.undo()
    chunks = tmp_path / "out" / "chunks"
    done = sorted(chunks.glob("*.npy"))
    assert len(done) >= 3
    raw = bytearray(done[0].read_bytes())
    raw[-1] ^= 0xFF  # a flipped byte in a finished chunk
    done[0].write_bytes(bytes(raw))
    (chunks / ".00002.npy.0123456789ab.tmp").write_bytes(b"cut short")  # a write cut short
    manifest = run_extraction(dataset, SPEC, url, chunk_size=40, n_jobs=2, progress=False)
    assert _url_bytes(url) == local_run
    assert (tmp_path / "out" / "features.npy").read_bytes() == local_run[0]
    assert manifest["resumed_chunks"] == len(done) - 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["extractor", "features.npy", "labels.npy",
                                                                     "manifest.json"]
    features, labels, on_disk = load_features(url, mmap=False, verify=True)
    assert features.tobytes() == np.load(io.BytesIO(local_run[0])).tobytes() and on_disk == manifest
    with pytest.raises(ExtractionError, match="cannot be memory-mapped; copy the folder"):
        load_features(url)
    assert run_extraction(dataset, SPEC, url, chunk_size=40, n_jobs=2, progress=False) == manifest  # done


def test_an_unknown_url_scheme_is_refused_before_any_work(dataset):
    with pytest.raises(RuntimeError, match="nosuch://bucket/out: fsspec cannot open it"):
        run_extraction(dataset, "raw", "nosuch://bucket/out", n_jobs=1, progress=False)


# --- s3:// against a moto server on loopback --------------------------------------------------------

@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on a loopback port and a bucket; the environment points boto at it
    (the job's workers, spawned processes, inherit it)."""
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("cvpipe-test")
    yield "s3://cvpipe-test"
    patch.undo()
    server.stop()
    type(fs).clear_instance_cache()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ["local", "dask"])
def test_an_s3_job_writes_the_local_jobs_bytes_and_recomputes_a_changed_chunk(dataset, local_run, s3, engine,
                                                                               monkeypatch):
    if engine == "dask":
        pytest.importorskip("distributed")
    url = f"{s3}/{engine}/out"
    stop_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(dataset, SPEC, url, engine=engine, chunk_size=40, n_jobs=2, progress=False)
    monkeypatch.undo()
    fs, root = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    done = sorted(p for p in fs.ls(f"{root}/chunks", refresh=True) if p.endswith(".npy"))
    assert len(done) >= 2
    raw = bytearray(fs.cat_file(done[0]))
    raw[200:204] = b"\0\0\0\0"  # a zeroed value in a finished chunk
    fs.pipe_file(done[0], bytes(raw))
    manifest = run_extraction(dataset, SPEC, url, engine=engine, chunk_size=40, n_jobs=2, progress=False)
    assert manifest["resumed_chunks"] == len(done) - 1
    assert _url_bytes(url) == local_run
    fs.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root, refresh=True)) == ["extractor", "features.npy",
                                                                              "labels.npy", "manifest.json"]
    features, labels, _ = load_features(url, mmap=False, verify=True)
    assert features.shape == (150, manifest["n_features"]) and manifest["engine"] == engine


def test_the_cli_extracts_to_a_url_and_says_how_to_train_from_it(dataset, local_run, tmp_path, capsys):
    from cvpipe.cli import main

    url = f"file://{tmp_path}/out"
    assert main(["-q", "extract", "--dataset", str(dataset), "--features", SPEC, "--out", url,
                 "--chunk-size", "40", "--n-jobs", "1"]) == 0
    assert _url_bytes(url) == local_run
    capsys.readouterr()
    assert main(["-q", "train", "--from-features", url, "--classifier", "softmax", "--out",
                 str(tmp_path / "model")]) != 0
    assert "cannot be memory-mapped; copy the folder to a local disk first" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_an_unreachable_s3_endpoint_is_an_error_before_any_work(dataset, monkeypatch, tmp_path):
    s3fs = pytest.importorskip("s3fs")
    s3fs.S3FileSystem.clear_instance_cache()  # fsspec reuses a filesystem made under another environment
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "x",
                       "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RuntimeError, match=r"--out s3://nowhere/out: cannot reach it \(EndpointConnectionError"):
        run_extraction(dataset, "raw", "s3://nowhere/out", n_jobs=1, progress=False)
