"""fetch_dataset against a local HTTP server: checksums, skip, 404, safe tar extraction.

No test touches the real dataset hosts: a ThreadingHTTPServer on 127.0.0.1 serves
small synthetic files made in tmp_path, and the expected MD5s are patched.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import re
import tarfile
import threading

import numpy as np
import pytest

from pipeline.data import cifar, fetch, idx, paths, testing
from pipeline.data.datasets import load_dataset
from pipeline.data.fetch import ChecksumError, FetchError, fetch_dataset, safe_extract_tar

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class _Server:
    def __init__(self, root):
        self.requests = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                log.append((self.command, self.path))

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = _Server(root)
    yield root, server
    server.close()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Data roots and the mirror variable under tmp_path; returns the cache folder."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CVPIPE_DATA", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CVPIPE_MIRROR", raising=False)
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", tmp_path / "system")
    return cache


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def mnist_mirror(served, rng, monkeypatch):
    """Synthetic MNIST .gz files under www/mnist/, with their MD5s patched in."""
    root, server = served
    folder = root / "mnist"
    folder.mkdir()
    data = {}
    for split, n in (("train", 7), ("test", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        img_stem, lbl_stem = idx.split_files(split)
        testing.write_idx(folder / f"{img_stem}.gz", images)
        testing.write_idx(folder / f"{lbl_stem}.gz", labels)
        data[split] = images, labels
    monkeypatch.setitem(fetch.CHECKSUMS, "mnist", {f: _md5(folder / f) for f in MNIST_FILES})
    return folder, server, data


def test_fetch_then_load(isolated, mnist_mirror, umask_022):
    folder, server, data = mnist_mirror
    path = fetch_dataset("mnist", cache_dir=isolated, base_url=f"{server.url}/mnist/", progress=False)
    assert path == isolated / "mnist"
    assert sorted(p.name for p in path.iterdir()) == sorted(MNIST_FILES)  # no temp files left
    assert {p.stat().st_mode & 0o777 for p in path.iterdir()} == {0o644}  # readable by other users
    for split, (images, labels) in data.items():
        ds = load_dataset("mnist", split=split)
        np.testing.assert_array_equal(ds.images, images)
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.source == str(path)


def test_second_fetch_skips_download(isolated, mnist_mirror):
    _, server, _ = mnist_mirror
    fetch_dataset("mnist", base_url=server.url + "/mnist", progress=True)
    assert len(server.requests) == 4
    mtimes = {p.name: p.stat().st_mtime_ns for p in (isolated / "mnist").iterdir()}
    fetch_dataset("mnist", base_url=server.url + "/mnist", progress=False)
    assert len(server.requests) == 4
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in (isolated / "mnist").iterdir()}


def test_damaged_file_is_downloaded_again(isolated, mnist_mirror, caplog):
    _, server, _ = mnist_mirror
    fetch_dataset("mnist", base_url=server.url + "/mnist", progress=False)
    damaged = isolated / "mnist" / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(b"oops")
    fetch_dataset("mnist", base_url=server.url + "/mnist", progress=False)
    assert server.requests[-1] == ("GET", "/mnist/t10k-labels-idx1-ubyte.gz") and len(server.requests) == 5
    assert _md5(damaged) == fetch.CHECKSUMS["mnist"]["t10k-labels-idx1-ubyte.gz"]
    assert "downloading it again" in caplog.text


def test_checksum_mismatch(isolated, mnist_mirror, monkeypatch):
    _, server, _ = mnist_mirror
    good = fetch.CHECKSUMS["mnist"]["train-labels-idx1-ubyte.gz"]
    monkeypatch.setitem(fetch.CHECKSUMS["mnist"], "train-labels-idx1-ubyte.gz", "0" * 32)
    pattern = rf"train-labels-idx1-ubyte\.gz.*expected MD5 0{{32}}, got {good}"
    with pytest.raises(ChecksumError, match=pattern) as info:
        fetch_dataset("mnist", base_url=server.url + "/mnist", progress=False)
    assert (info.value.expected, info.value.got) == ("0" * 32, good)
    assert sorted(p.name for p in (isolated / "mnist").iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_404_names_the_url(isolated, served):
    _, server = served
    with pytest.raises(FetchError, match=re.escape(f"{server.url}/nothing/train-images-idx3-ubyte.gz")
                       + ": HTTP 404"):
        fetch_dataset("mnist", base_url=f"{server.url}/nothing/", progress=False)
    assert list((isolated / "mnist").iterdir()) == []


def test_unreachable_host(isolated, served):
    _, server = served
    url = server.url
    server.close()
    with pytest.raises(FetchError, match="cannot download"):
        fetch_dataset("mnist", base_url=url, progress=False, timeout=5)


def test_mirror_from_environment_with_name(isolated, mnist_mirror, monkeypatch):
    _, server, _ = mnist_mirror
    monkeypatch.setenv("CVPIPE_MIRROR", server.url + "/{name}/")
    assert fetch_dataset("MNIST", progress=False) == isolated / "mnist"
    assert server.requests[0] == ("GET", "/mnist/train-images-idx3-ubyte.gz")


def test_unknown_name(isolated):
    with pytest.raises(ValueError, match="cannot fetch 'digits'"):
        fetch_dataset("digits")


def test_official_sources_are_complete():
    assert set(fetch.CHECKSUMS) == set(fetch.BASE_URLS) == {"fashion-mnist", "mnist", "cifar10"}
    for files in fetch.CHECKSUMS.values():
        assert all(re.fullmatch(r"[0-9a-f]{32}", md5) for md5 in files.values())
    assert set(fetch.CHECKSUMS["fashion-mnist"]) == set(MNIST_FILES) == set(fetch.CHECKSUMS["mnist"])


# --- CIFAR-10 tarball ------------------------------------------------------------------

def _add(tar, name, payload=b"", **attrs):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(payload) if info.isfile() else None)


def _cifar_tarball(path, tmp, rng):
    batches = tmp / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    testing.write_meta(batches / "batches.meta", ("a", "b"))
    expected = {}
    for split, files in cifar.SPLIT_FILES.items():
        images = rng.integers(0, 256, (2 * len(files), 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 2, len(images))
        for i, name in enumerate(files):
            testing.write_batch(batches / name, images[2 * i:2 * i + 2], labels[2 * i:2 * i + 2])
        expected[split] = images, labels
    with tarfile.open(path, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    return expected


def test_fetch_cifar_then_load(isolated, served, rng, tmp_path, monkeypatch, umask_022):
    root, server = served
    expected = _cifar_tarball(root / "cifar-10-python.tar.gz", tmp_path / "build", rng)
    monkeypatch.setitem(fetch.CHECKSUMS, "cifar10",
                        {"cifar-10-python.tar.gz": _md5(root / "cifar-10-python.tar.gz")})
    path = fetch_dataset("cifar10", base_url=server.url, progress=False)
    assert (path / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert {p.stat().st_mode & 0o777 for p in (path / "cifar-10-batches-py").iterdir()} == {0o644}
    for split, (images, labels) in expected.items():
        ds = load_dataset("cifar10", split=split)
        np.testing.assert_array_equal(ds.images, images)
        np.testing.assert_array_equal(ds.labels, labels)
    fetch_dataset("cifar10", base_url=server.url, progress=False)
    assert len(server.requests) == 1


@pytest.mark.parametrize("name, attrs, why", [
    ("../evil", {}, "path leaves the target folder"),
    ("cifar-10-batches-py/../../evil", {}, "path leaves the target folder"),
    ("/tmp/evil", {}, "absolute path"),
    ("cifar-10-batches-py/link", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "not a regular file"),
    ("cifar-10-batches-py/hard", {"type": tarfile.LNKTYPE, "linkname": "x"}, "not a regular file"),
    ("cifar-10-batches-py/fifo", {"type": tarfile.FIFOTYPE}, "not a regular file"),
])
def test_unsafe_tar_members_refused(tmp_path, name, attrs, why):
    archive, dest = tmp_path / "bad.tar.gz", tmp_path / "out" / "cifar10"
    dest.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "cifar-10-batches-py/ok", b"fine")
        _add(tar, name, b"evil", **attrs)
    with pytest.raises(FetchError, match=f"refused tar member {re.escape(repr(name))}: {why}"):
        safe_extract_tar(archive, dest)
    assert list(dest.iterdir()) == []  # checked before anything is written
    assert not (tmp_path / "out" / "evil").exists() and not (tmp_path / "evil").exists()


def test_fetch_refuses_evil_tarball(isolated, served, monkeypatch):
    root, server = served
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        _add(tar, "../evil", b"evil")
    monkeypatch.setitem(fetch.CHECKSUMS, "cifar10",
                        {"cifar-10-python.tar.gz": _md5(root / "cifar-10-python.tar.gz")})
    with pytest.raises(FetchError, match=r"refused tar member '\.\./evil'"):
        fetch_dataset("cifar10", base_url=server.url, progress=False)
    assert not (isolated / "evil").exists()


def test_corrupt_tarball(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"\x1f\x8b not gzip")
    with pytest.raises(FetchError, match="x.tar.gz: cannot extract"):
        safe_extract_tar(tmp_path / "x.tar.gz", tmp_path)


def test_cli_data_fetch_then_list(isolated, mnist_mirror, capsys):
    from cvpipe.cli import main

    _, server, data = mnist_mirror
    assert main(["-q", "data", "fetch", "mnist", "--mirror", f"{server.url}/mnist/"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(isolated / "mnist")
    assert main(["-q", "data", "list"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed["mnist"]["path"] == str(isolated / "mnist")
    assert listed["mnist"]["n_images"] == {"train": 7, "test": 5}


def test_cli_data_fetch_checksum_failure_exits_nonzero(isolated, mnist_mirror, monkeypatch, capsys):
    from cvpipe.cli import main

    _, server, _ = mnist_mirror
    monkeypatch.setitem(fetch.CHECKSUMS, "mnist", {f: "0" * 32 for f in MNIST_FILES})
    assert main(["-q", "data", "fetch", "mnist", "--mirror", f"{server.url}/mnist/"]) == 2
    assert "checksum" in capsys.readouterr().err.lower()
