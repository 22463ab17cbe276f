"""load_dataset: IDX, CIFAR-10 batches, image folders, .npz, digits; errors and fingerprints."""
from __future__ import annotations

import gzip
import logging
import os
import pickle
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data import cifar, datasets, digits, idx, paths, testing
from pipeline.data.dataset import ArrayDataset, DatasetError, DatasetNotFoundError
from pipeline.data.datasets import available_datasets, load_dataset, open_dataset, read_task


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Isolated data roots: $CVPIPE_DATA, ~/.cache/cvpipe and the system folder under tmp_path."""
    env, home, system = tmp_path / "env", tmp_path / "home", tmp_path / "system"
    monkeypatch.setenv("CVPIPE_DATA", str(env))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIR", system)
    return {"env": env, "home": home / ".cache" / "cvpipe", "system": system}


def write_mnist(folder, split, images, labels, *, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    img_stem, lbl_stem = idx.split_files(split)
    testing.write_idx(folder / f"{img_stem}{ext}", images)
    testing.write_idx(folder / f"{lbl_stem}{ext}", labels)
    return folder / f"{img_stem}{ext}", folder / f"{lbl_stem}{ext}"


@pytest.fixture
def small_mnist(rng):
    return rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), np.array([0, 1, 2, 9, 9, 3], np.uint8)


# --- IDX ---------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_round_trip(roots, small_mnist, gz, split):
    images, labels = small_mnist
    write_mnist(roots["env"] / "mnist", split, images, labels, gz=gz)
    ds = load_dataset("mnist", split=split)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.labels.dtype == np.int64 and ds.images.dtype == np.uint8
    assert ds.class_names == tuple("0123456789") and len(ds) == 6
    assert (ds.name, ds.split, ds.source) == ("mnist", split, str(roots["env"] / "mnist"))


def test_idx_roots_searched_in_order(roots, small_mnist):
    images, labels = small_mnist
    write_mnist(roots["system"] / "fashion-mnist", "test", images, labels)
    write_mnist(roots["home"] / "fashion-mnist", "test", images[:3], labels[:3])
    ds = load_dataset("Fashion_MNIST", split="test")
    assert len(ds) == 3 and ds.source == str(roots["home"] / "fashion-mnist")
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    write_mnist(roots["env"] / "fashion-mnist", "test", images[:2], labels[:2])
    assert len(load_dataset("fashion-mnist", split="test")) == 2


def test_not_found_lists_every_place(roots, small_mnist):
    write_mnist(roots["home"] / "mnist", "train", *small_mnist)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", split="test")
    message = str(info.value)
    for root in roots.values():
        assert str(root / "mnist") in message
    assert "missing t10k-images-idx3-ubyte[.gz]" in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DatasetError)
    assert len(info.value.searched) == 3


def test_bad_split_and_unknown_path(roots, tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("mnist", split="validation")
    with pytest.raises(DatasetNotFoundError, match="no such file or folder"):
        load_dataset(tmp_path / "nowhere")


def _header(magic, *dims):
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims)


def _corrupt(kind, images, labels):
    """Return (images file bytes, labels file bytes, which file is blamed, message regex)."""
    img = _header(2051, *images.shape) + images.tobytes()
    lbl = _header(2049, len(labels)) + labels.tobytes()
    cases = {
        "bad magic": (_header(2049, *images.shape) + images.tobytes(), lbl, "images",
                      "bad magic number: expected 2051"),
        "not idx": (b"\x89PNG" + img[4:], lbl, "images", "bad magic number.*not an IDX file"),
        "float dtype": (b"\x00\x00\x0d\x03" + img[4:], lbl, "images", "expected 0x08.*got 0x0d"),
        "truncated": (img[:-10], lbl, "images", "truncated: header says"),
        "trailing": (img, lbl + b"\x00\x00", "labels", "2 trailing bytes"),
        "short header": (img[:9], lbl, "images", "truncated header"),
        "count mismatch": (img, _header(2049, 5) + labels[:5].tobytes(), "labels",
                           "count mismatch: 5 labels but 6 images"),
        "label range": (img, _header(2049, 6) + bytes([0, 1, 2, 10, 9, 3]), "labels",
                        r"label 10 at index 3: expected labels in 0\.\.9"),
    }
    return cases[kind]


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("kind", ["bad magic", "not idx", "float dtype", "truncated", "trailing",
                                  "short header", "count mismatch", "label range"])
def test_idx_corruption_names_the_file(roots, small_mnist, kind, gz):
    img, lbl, blamed, message = _corrupt(kind, *small_mnist)
    folder = roots["env"] / "mnist"
    folder.mkdir(parents=True)
    ext, write = (".gz", lambda b: gzip.compress(b)) if gz else ("", lambda b: b)
    (folder / f"train-images-idx3-ubyte{ext}").write_bytes(write(img))
    (folder / f"train-labels-idx1-ubyte{ext}").write_bytes(write(lbl))
    path = folder / f"train-{blamed}-idx{3 if blamed == 'images' else 1}-ubyte{ext}"
    with pytest.raises(DatasetError, match=re.escape(str(path)) + ".*" + message):
        load_dataset("mnist")


def test_truncated_gzip_stream(roots, small_mnist):
    images_path, _ = write_mnist(roots["env"] / "mnist", "train", *small_mnist)
    images_path.write_bytes(images_path.read_bytes()[:-200])
    with pytest.raises(DatasetError, match=re.escape(str(images_path)) + ".*truncated gzip"):
        load_dataset("mnist")


def test_idx_folder_by_path(tmp_path, small_mnist):
    write_mnist(tmp_path / "idx", "test", *small_mnist, gz=False)
    ds = load_dataset(tmp_path / "idx", split="test")
    assert ds.class_names == tuple(str(i) for i in range(10)) and len(ds) == 6


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A decompressed-copies folder of this test only."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CVPIPE_CACHE", str(folder))
    return folder


def test_a_gz_claiming_more_than_it_holds_is_refused_before_decompressing(tmp_path, cache, monkeypatch):
    folder = tmp_path / "idx"
    folder.mkdir()
    images = folder / "train-images-idx3-ubyte.gz"
    # 784 MB claimed by a gzip file of about 1 KB: more than deflate's ratio allows
    images.write_bytes(gzip.compress(_header(2051, 1_000_000, 28, 28) + b"\0" * 784))
    testing.write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(1_000_000, np.uint8))

    def no_copy(path):
        raise AssertionError(f"started decompressing into {path}")

    monkeypatch.setattr(idx, "atomic_path", no_copy)
    started = time.perf_counter()
    with pytest.raises(DatasetError, match=re.escape(str(images)) + ".*refused before decompressing"):
        open_dataset(folder)
    assert time.perf_counter() - started < 1.0
    assert not cache.exists() or not any(cache.iterdir())


def _members(raw):
    """``raw`` gzipped as several members, the first ending inside the IDX header."""
    return gzip.compress(raw[:10]) + gzip.compress(raw[10:-100]) + gzip.compress(raw[-100:])


@pytest.mark.parametrize("layout", [
    lambda raw: gzip.compress(raw[:10]) + gzip.compress(raw[10:]),  # as `cat a.gz b.gz` makes them
    _members,
    lambda raw: gzip.compress(raw) + b"\0" * 3,  # the last 4 bytes: the trailer's size shifted
    lambda raw: gzip.compress(raw) + b"\0" * 4096,
    lambda raw: gzip.compress(raw[:10]) + b"\0" * 7 + gzip.compress(raw[10:]) + b"\0" * 9,
], ids=["two-members", "three-members", "padding-3", "padding-4096", "members-and-padding"])
@pytest.mark.parametrize("writable", [True, False], ids=["cache", "in-memory"])
def test_a_multi_member_or_zero_padded_gz_reads_as_gzip_reads_it(roots, tmp_path, monkeypatch, small_mnist,
                                                                   layout, writable):
    """bgzip writes many members, ``cat a.gz b.gz`` two, tape tools pad with zeros: the
    last 4 bytes are the last member's size, or zeros, not the data's (refused as
    "truncated" when they were taken for it)."""
    if not writable:
        (tmp_path / "a-file").write_text("not a folder")
        monkeypatch.setenv("CVPIPE_CACHE", str(tmp_path / "a-file" / "cache"))
    images, labels = small_mnist
    write_mnist(roots["system"] / "mnist", "train", images, labels)
    path = roots["system"] / "mnist" / "train-images-idx3-ubyte.gz"
    raw = _header(2051, *images.shape) + images.tobytes()
    path.write_bytes(layout(raw))
    assert gzip.decompress(path.read_bytes()) == raw  # a valid gzip file, as Python reads it
    ds = load_dataset("mnist")
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(read_task(open_dataset(roots["system"] / "mnist").task(2, 6)).images, images[2:])


@pytest.mark.parametrize("raw, layout, message", [
    # within deflate's ratio, but the data ends early: only streaming can tell this from several members
    ("short", gzip.compress, "truncated: header says 784,016 bytes, got 705,616"),
    ("short", _members, "truncated: header says 784,016 bytes, got 705,616"),
    ("long", _members, "more than the 704,832 bytes its header says: trailing data"),
    ("exact", lambda raw: gzip.compress(raw) + b"\0\0\1\0\0\0", r"not a valid gzip file \(Not a gzipped file"),
    # the last 4 bytes claim more than the file holds: refused before decompressing, or while streaming
    ("exact", lambda raw: gzip.compress(raw) + b"junk", "its last bytes are not a gzip trailer nor zero padding"),
    ("exact", lambda raw: gzip.compress(raw[:10]) + gzip.compress(raw[10:])[:-20], ".*truncated gzip stream"),
])
def test_a_gz_that_ends_early_or_runs_on_is_refused(tmp_path, cache, raw, layout, message):
    folder = tmp_path / "idx"
    folder.mkdir()
    data = np.random.default_rng(0).integers(0, 256, 900 * 28 * 28, dtype=np.uint8).tobytes()  # incompressible
    claim = {"short": 1000, "long": 899, "exact": 900}[raw]
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(layout(_header(2051, claim, 28, 28) + data))
    testing.write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(claim, np.uint8))
    with pytest.raises(DatasetError, match=re.escape(str(images)) + ": " + message):
        open_dataset(folder)
    assert not [p for p in cache.glob("*") if "train-images" in p.name]  # no copy, no leftover


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("dims, blamed, message", [
    ((2, 0, 28), "images", r"bad dimensions \(2, 0, 28\): every image dimension must be positive"),
    ((2, 28, 0), "images", "bad dimensions"),
    ((2**32 - 1, 2**32 - 1, 2**32 - 1), "images", "header says|the header claims"),
    ((2**32 - 1,), "labels", "header says|the header claims"),
])
def test_impossible_dimensions_name_the_file(tmp_path, cache, gz, dims, blamed, message):
    folder = tmp_path / "idx"
    write_mnist(folder, "train", np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8), gz=gz)
    stem = idx.split_files("train")[0 if blamed == "images" else 1]
    path = folder / (stem + (".gz" if gz else ""))
    raw = _header(2051 if blamed == "images" else 2049, *dims) + b"\0" * 64
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DatasetError, match=re.escape(str(path)) + f": .*({message})"):
        open_dataset(folder)
    assert not [p for p in cache.glob("*") if p.name.startswith(stem)]  # nothing of it decompressed


@pytest.mark.parametrize("same_stat", [False, True], ids=["rewritten", "same-size-and-mtime"])
def test_a_changed_gz_gets_a_fresh_decompressed_copy(tmp_path, cache, rng, same_stat):
    """Random bytes are stored, not compressed: both versions have the same size, and
    with ``same_stat`` the same modification time (a copy made with ``cp -p``, a tar
    extracted again, a rewrite within one tick of the clock)."""
    old, new = (rng.integers(0, 256, (16, 16, 16), dtype=np.uint8) for _ in range(2))
    labels = np.arange(16, dtype=np.uint8) % 10
    images_path, _ = write_mnist(tmp_path / "idx", "train", old, labels)
    np.testing.assert_array_equal(open_dataset(tmp_path / "idx").read(0, 16).images, old)
    before = images_path.stat()
    copies = sorted(cache.iterdir())
    np.testing.assert_array_equal(open_dataset(tmp_path / "idx").images, old)
    assert sorted(cache.iterdir()) == copies  # decompressed once
    testing.write_idx(images_path, new)
    assert images_path.stat().st_size == before.st_size
    if same_stat:
        os.utime(images_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    ds = open_dataset(tmp_path / "idx")
    np.testing.assert_array_equal(ds.read(0, 16).images, new)
    np.testing.assert_array_equal(load_dataset(tmp_path / "idx").images, new)
    assert ds.fingerprint() == ArrayDataset(new, labels, ds.class_names).fingerprint()


def test_an_unwritable_cache_reads_into_memory_with_a_warning(tmp_path, monkeypatch, small_mnist, caplog):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("CVPIPE_CACHE", str(tmp_path / "a-file" / "cache"))  # unwritable, even as root
    images, labels = small_mnist
    images_path, labels_path = write_mnist(tmp_path / "idx", "train", images, labels)
    with caplog.at_level(logging.WARNING, logger="pipeline.data.idx"):
        ds = open_dataset(tmp_path / "idx")
    assert f"cannot keep a decompressed copy of {images_path}" in caplog.text
    assert f"cannot keep a decompressed copy of {labels_path}" in caplog.text
    np.testing.assert_array_equal(ds.read(1, 5).images, images[1:5])
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(read_task(ds.task(4, 6)).images, images[4:])


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_the_lazy_idx_fingerprint_is_that_of_the_same_arrays(tmp_path, small_mnist, gz):
    images, labels = small_mnist
    write_mnist(tmp_path / "idx", "train", images, labels, gz=gz)
    ds = open_dataset(tmp_path / "idx")
    assert isinstance(ds, idx.IdxDataset)
    expected = ArrayDataset(images.copy(), labels, tuple("0123456789")).fingerprint()
    assert ds.fingerprint() == expected == load_dataset(tmp_path / "idx").fingerprint()


@pytest.mark.slow
def test_fashion_mnist_test_split(fashion_mnist_test):
    ds = fashion_mnist_test
    assert ds.images.shape == (10000, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.labels.min() == 0 and ds.labels.max() == 9
    np.testing.assert_array_equal(np.bincount(ds.labels), np.full(10, 1000))
    assert ds.class_names == datasets.FASHION_MNIST_CLASSES
    assert 60 < ds.images.mean() < 80  # mostly dark background


# --- CIFAR-10 ------------------------------------------------------------------------

CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_cifar(folder, rng, *, per_batch=3, protocol=2):
    """A cifar-10-batches-py folder with tiny batches; returns {split: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    testing.write_meta(folder / "batches.meta", CIFAR_NAMES, protocol=protocol)
    out = {}
    for split, files in cifar.SPLIT_FILES.items():
        images = rng.integers(0, 256, (per_batch * len(files), 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, len(images))
        for i, name in enumerate(files):
            part = slice(i * per_batch, (i + 1) * per_batch)
            testing.write_batch(folder / name, images[part], labels[part], protocol=protocol)
        out[split] = images, labels
    return out


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("nested", [True, False], ids=["batches-folder", "flat"])
def test_cifar_synthetic(roots, rng, protocol, nested):
    folder = roots["env"] / "cifar10"
    expected = write_cifar(folder / "cifar-10-batches-py" if nested else folder, rng, protocol=protocol)
    for split in ("train", "test"):
        ds = load_dataset("cifar10", split=split)
        np.testing.assert_array_equal(ds.images, expected[split][0])
        np.testing.assert_array_equal(ds.labels, expected[split][1])
        assert ds.images.shape[1:] == (32, 32, 3) and ds.class_names == CIFAR_NAMES


def test_cifar_channel_layout(tmp_path):
    """b"data" rows are the R plane, then G, then B, each row-major 32x32."""
    data = np.zeros((1, 3072), np.uint8)
    data[0, 0], data[0, 1024 + 33], data[0, 2048 + 1023] = 10, 20, 30
    testing.write_meta(tmp_path / "batches.meta", CIFAR_NAMES)
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"data": data, b"labels": [7]}, fh, protocol=2)
    ds = load_dataset(tmp_path, split="test")
    assert ds.images[0, 0, 0, 0] == 10 and ds.images[0, 1, 1, 1] == 20 and ds.images[0, 31, 31, 2] == 30
    assert ds.labels.tolist() == [7] and ds.images.sum() == 60


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _EvilExec:
    def __reduce__(self):
        return exec, ("raise SystemExit('pwned')",)


@pytest.mark.parametrize("payload", ["os.system", "exec", "nested"])
def test_cifar_malicious_pickle_refused(roots, rng, tmp_path, payload):
    folder = roots["env"] / "cifar10" / "cifar-10-batches-py"
    write_cifar(folder, rng)
    marker = tmp_path / "pwned"
    evil = {"os.system": _Evil(marker), "exec": _EvilExec(),
            "nested": {b"data": np.zeros((1, 3072), np.uint8), b"labels": [_Evil(marker)]}}[payload]
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(evil, fh, protocol=2)
    refused = "exec" if payload == "exec" else "system"
    with pytest.raises(DatasetError, match=re.escape(str(folder / "test_batch")) + f".*refused global .*{refused}"):
        load_dataset("cifar10", split="test")
    assert not marker.exists()


def test_cifar_bad_batch(tmp_path, rng):
    write_cifar(tmp_path, rng)
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, fh, protocol=2)
    with pytest.raises(DatasetError, match=r"test_batch: expected data as a uint8 array of shape \(n, 3072\)"):
        load_dataset(tmp_path, split="test")
    (tmp_path / "data_batch_3").write_bytes(b"\x80\x02}q\x00")  # truncated pickle
    with pytest.raises(DatasetError, match="data_batch_3: invalid pickle"):
        load_dataset(tmp_path, split="train")


class _Call:
    """Pickles as ``function(*args)``: what a crafted batch file can ask for."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


class _Reconstructed:
    """Pickles as numpy does an array, with the shape and bytes given."""

    def __init__(self, shape, raw):
        self.shape, self.raw = shape, raw

    def __reduce__(self):
        return (cifar._reconstruct(), (np.ndarray, (0,), b"b"), (1, self.shape, np.dtype(np.uint8), False, self.raw))


def _binbytes8(length):
    """A protocol-4 pickle whose BINBYTES8 opcode announces ``length`` bytes (and holds 2)."""
    return b"\x80\x04\x8e" + struct.pack("<Q", length) + b"xx"


@pytest.mark.parametrize("payload", ["uninitialized", "unallocatable", "reconstructed", "binbytes8"])
def test_a_cifar_pickle_claiming_a_huge_array_is_a_dataset_error(tmp_path, rng, payload):
    """A pickle of a few hundred bytes may call numpy.ndarray((n, 3072), uint8): memory it
    never held (6 GiB here, untouched), which the reader went on to copy."""
    write_cifar(tmp_path, rng)
    path = tmp_path / "test_batch"
    if payload == "binbytes8":
        path.write_bytes(_binbytes8(2**40))
    else:
        data = {"uninitialized": _Call(np.ndarray, (2**21, 3072), np.dtype(np.uint8)),
                "unallocatable": _Call(np.ndarray, (2**50, 3072), np.dtype(np.uint8)),
                "reconstructed": _Reconstructed((2**30, 3072), b"\0" * 64)}[payload]
        with open(path, "wb") as fh:
            pickle.dump({b"data": data, b"labels": [0, 1]}, fh, protocol=2)
    assert path.stat().st_size < 1000
    message = "invalid pickle" if payload == "reconstructed" else "more memory than a batch of"
    with pytest.raises(DatasetError, match=re.escape(str(path)) + f": .*{message}"):
        open_dataset(tmp_path, split="test")


def test_cifar_ranges_cross_batch_files_and_read_only_those(tmp_path, rng, monkeypatch):
    testing.write_meta(tmp_path / "batches.meta", CIFAR_NAMES)
    sizes = (2, 1, 3, 2, 1)
    images = rng.integers(0, 256, (sum(sizes), 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, sum(sizes))
    for name, stop, size in zip(cifar.TRAIN_FILES, np.cumsum(sizes), sizes):
        testing.write_batch(tmp_path / name, images[stop - size:stop], labels[stop - size:stop])
    ds = open_dataset(tmp_path)
    assert isinstance(ds, cifar.CifarDataset) and len(ds) == 9
    for start, stop in [(0, 0), (1, 4), (2, 3), (3, 6), (5, 9), (6, 8), (8, 9), (0, 9), (9, 9)]:
        batch = ds.read(start, stop)
        np.testing.assert_array_equal(batch.images, images[start:stop])
        np.testing.assert_array_equal(batch.labels, labels[start:stop])
    read = []
    real = cifar.read_batch
    monkeypatch.setattr(cifar, "read_batch", lambda path, n: (read.append(Path(path).name), real(path, n))[1])
    monkeypatch.setattr(cifar, "_BATCH", {})
    for (start, stop), files in [((8, 9), ["data_batch_5"]), ((6, 8), ["data_batch_4"]),
                                 ((3, 7), ["data_batch_3", "data_batch_4"]), ((0, 0), [])]:
        read.clear()
        cifar._BATCH.clear()
        np.testing.assert_array_equal(read_task(ds.task(start, stop)).images, images[start:stop])
        assert read == files, (start, stop)


def test_cifar_not_found_says_what_is_missing(roots, rng):
    folder = roots["home"] / "cifar10" / "cifar-10-batches-py"
    write_cifar(folder, rng)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing data_batch_4"):
        load_dataset("cifar10")
    assert len(load_dataset("cifar10", split="test")) == 3


# --- image folders -------------------------------------------------------------------

def _save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def test_a_fifo_in_an_image_folder_is_skipped_and_recorded_without_blocking(tmp_path, rng):
    """Opening a FIFO waits for a writer forever: the reader records it instead."""
    root = tmp_path / "pets"
    for i in range(2):
        _save(root / "cat" / f"{i}.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    os.mkfifo(root / "cat" / "pipe.png")
    ds = load_dataset(root)
    assert len(ds) == 2
    assert dict(ds.skipped)[str(root / "cat" / "pipe.png")] == "not an image file: a FIFO (named pipe)"


def test_image_folder_png_jpeg_and_corrupt(tmp_path, rng, caplog):
    root = tmp_path / "pets"
    for i in range(3):
        _save(root / "cat" / f"{i}.png", rng.integers(0, 256, (16, 20, 3), dtype=np.uint8))
        _save(root / "dog" / f"{i}.jpg", rng.integers(0, 256, (16, 20, 3), dtype=np.uint8))
    _save(root / "dog" / "big.png", rng.integers(0, 256, (32, 40, 3), dtype=np.uint8))
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 a JPEG header, then nothing")
    (root / "dog" / "readme.png").write_text("not an image at all")
    (root / "notes.txt").write_text("loose file")
    (root / "cat" / ".DS_Store").write_bytes(b"\x00")
    with caplog.at_level(logging.WARNING, logger="pipeline.data.folder"):
        ds = load_dataset(root)
    assert ds.images.shape == (7, 16, 20, 3) and ds.images.dtype == np.uint8
    assert ds.class_names == ("cat", "dog") and ds.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    skipped = dict(ds.skipped)
    assert set(skipped) == {str(root / f) for f in ("dog/broken.jpg", "dog/readme.png", "notes.txt")}
    assert "corrupt or truncated header" in skipped[str(root / "dog" / "broken.jpg")]
    assert "does not recognize" in skipped[str(root / "dog" / "readme.png")]
    assert "broken.jpg" in caplog.text and "resized 1 of 7 images to 20x16" in caplog.text
    png = np.asarray(Image.open(root / "cat" / "0.png"))
    np.testing.assert_array_equal(ds.images[0], png)


def test_image_folder_truncated_file_is_skipped(tmp_path, rng):
    root = tmp_path / "data"
    for name in ("a", "b"):
        _save(root / "x" / f"{name}.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    blob = (root / "x" / "b.png").read_bytes()
    (root / "x" / "b.png").write_bytes(blob[: len(blob) // 2])
    ds = load_dataset(root)
    assert len(ds) == 1 and ds.skipped[0][0] == str(root / "x" / "b.png")


def test_image_folder_mode_and_size(tmp_path, rng):
    root = tmp_path / "data"
    _save(root / "a" / "0.png", rng.integers(0, 256, (10, 12), dtype=np.uint8))
    _save(root / "b" / "0.png", rng.integers(0, 256, (10, 12), dtype=np.uint8))
    assert load_dataset(root).images.shape == (2, 10, 12)
    _save(root / "b" / "1.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    assert load_dataset(root).images.shape == (3, 10, 12, 3)
    assert load_dataset(root, size=6, mode="L").images.shape == (3, 6, 6)
    assert load_dataset(root, size=(4, 5)).images.shape == (3, 4, 5, 3)
    with pytest.raises(ValueError, match="image files \\(folders, listings, shards\\) only"):
        load_dataset("digits", size=8)


def test_image_folder_splits(tmp_path, rng):
    root = tmp_path / "data"
    for split, classes in (("train", ("a", "b", "c")), ("test", ("a", "c"))):
        for cls in classes:
            _save(root / split / cls / "0.png", rng.integers(0, 256, (4, 4), dtype=np.uint8))
    train, test = load_dataset(root, "train"), load_dataset(root, "test")
    assert train.class_names == test.class_names == ("a", "b", "c")
    assert train.labels.tolist() == [0, 1, 2] and test.labels.tolist() == [0, 2]
    assert test.source == str(root / "test")


def test_image_folder_errors(tmp_path, rng):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="no readable images among the 1 files"):
        load_dataset(root)
    with pytest.raises(DatasetNotFoundError, match="is the 'train' split"):
        load_dataset(root, split="test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset(tmp_path / "empty")


# --- npz -----------------------------------------------------------------------------

def test_npz_round_trip(tmp_path, color_images):
    labels = np.arange(10) % 3
    np.savez(tmp_path / "d.npz", images=color_images, labels=labels, class_names=np.array(["x", "y", "z"]))
    ds = load_dataset(tmp_path / "d.npz", split="test")
    np.testing.assert_array_equal(ds.images, color_images)
    assert ds.class_names == ("x", "y", "z") and ds.split == "test" and ds.name == "d"
    np.savez(tmp_path / "e.npz", images=color_images, labels=labels.astype(np.uint8))
    assert load_dataset(tmp_path / "e.npz").class_names == ("0", "1", "2")


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((2, 4, 4), np.float32), "labels": np.zeros(2, int)}, "images: expected a non-empty uint8"),
    ({"images": np.zeros((2, 4), np.uint8), "labels": np.zeros(2, int)}, r"got uint8 \(2, 4\)"),
    ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(3, int)},
     r"labels: expected integers of shape \(2,\)"),
    ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0.0, 1.0])}, "labels: expected integers"),
    ({"images": np.zeros((2, 4, 4), np.uint8)}, r"missing arrays \['labels'\]"),
    ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0, 1]),
      "class_names": np.array([{"a": 1}], dtype=object)}, "Object arrays cannot be loaded"),
    ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0, 3]),
      "class_names": np.array(["a", "b"])}, "class_names: expected strings, one per class"),
])
def test_npz_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=re.escape(str(path)) + ".*" + message):
        load_dataset(path)


def test_unsupported_file(tmp_path):
    (tmp_path / "x.txt").write_text("1,2")
    with pytest.raises(DatasetError, match="unsupported file"):
        load_dataset(tmp_path / "x.txt")
    (tmp_path / "y.npz").write_bytes(b"PK garbage")
    with pytest.raises(DatasetError, match="y.npz: cannot read"):
        load_dataset(tmp_path / "y.npz")


# --- digits --------------------------------------------------------------------------

def test_digits():
    from sklearn.datasets import load_digits

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape[1:] == (8, 8) and train.images.dtype == np.uint8
    assert set(np.unique(train.images)) <= set(np.rint(np.arange(17) * 255 / 16).astype(int))
    assert train.images.max() == 255 and train.images.min() == 0
    bunch = load_digits()
    _, test_idx = digits.split_indices(bunch.target)
    np.testing.assert_array_equal(test.images, np.rint(bunch.images[test_idx] * 255 / 16))
    per_class = np.bincount(test.labels, minlength=10)
    assert np.all(np.abs(per_class - 0.2 * np.bincount(bunch.target)) <= 1)  # stratified
    assert set(np.flatnonzero(np.isin(np.arange(1797), test_idx))).isdisjoint(digits.split_indices(bunch.target)[0])
    assert load_dataset("digits", "test").fingerprint() == test.fingerprint()


# --- Dataset -------------------------------------------------------------------------

def test_fingerprint_stable_and_sensitive(gray_images):
    labels = np.arange(12) % 4
    ds = ArrayDataset(gray_images, labels, ("a", "b", "c", "d"), "x", "train", "mem")
    same = ArrayDataset(gray_images.copy(), labels.astype(np.uint8), ("a", "b", "c", "d"))
    assert ds.fingerprint() == same.fingerprint()
    changed = gray_images.copy()
    changed[5, 3, 7] ^= 1
    assert ArrayDataset(changed, labels, ("a", "b", "c", "d")).fingerprint() != ds.fingerprint()
    assert ArrayDataset(gray_images, np.roll(labels, 1), ("a", "b", "c", "d")).fingerprint() != ds.fingerprint()
    assert ArrayDataset(gray_images.reshape(12, 14, 56), labels, ("a", "b", "c", "d")).fingerprint() != ds.fingerprint()


def test_fingerprint_known_value():
    """Pinned: a change here invalidates every cache keyed by fingerprints."""
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    ds = ArrayDataset(images, [0, 1], ("a", "b"))
    assert ds.fingerprint() == "cfaacb6991fd694da7336c48f3e2a09b12b45337e602acc3de39c6817ab7968d"


def test_dataset_is_read_only_and_validated(gray_images):
    ds = ArrayDataset(gray_images, np.zeros(12, int), ["only"])
    with pytest.raises(ValueError):
        ds.images[0, 0, 0] = 1
    with pytest.raises(AttributeError):
        ds.name = "other"
    gray_images[0, 0, 0] ^= 1  # the caller's own array stays writable
    with pytest.raises(DatasetError, match="expected uint8 images"):
        ArrayDataset(gray_images.astype(np.float32), np.zeros(12, int), ["only"])
    with pytest.raises(DatasetError, match=r"labels must be in 0\.\.0"):
        ArrayDataset(gray_images, np.ones(12, int), ["only"])
    with pytest.raises(DatasetError, match="expected 12 integer labels"):
        ArrayDataset(gray_images, np.zeros(11, int), ["only"])
    with pytest.raises(TypeError, match="sequence of names"):
        ArrayDataset(gray_images, np.zeros(12, int), "cat")


def test_dataset_pickles(gray_images):
    ds = ArrayDataset(gray_images, np.arange(12) % 2, ("a", "b"), "g", "test", "mem")
    back = pickle.loads(pickle.dumps(ds))
    assert back.fingerprint() == ds.fingerprint() and back.class_names == ("a", "b") and repr(back) == repr(ds)


def test_path_object_is_never_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="no such file or folder"):
        load_dataset(Path("digits"))


def test_subset_and_take(gray_images):
    ds = ArrayDataset(gray_images, np.arange(12) % 3, ("a", "b", "c"), "g", "test", "mem", (("p", "r"),))
    sub = ds.subset(ds.labels == 1)
    assert len(sub) == 4 and sub.labels.tolist() == [1] * 4 and sub.skipped == (("p", "r"),)
    np.testing.assert_array_equal(ds.take(5).images, gray_images[:5])
    assert "n=12" in repr(ds) and "test" in repr(ds)


def test_available_datasets(roots, small_mnist, rng):
    write_mnist(roots["env"] / "mnist", "train", *small_mnist)
    write_cifar(roots["system"] / "cifar10" / "cifar-10-batches-py", rng)
    listing = {d["name"]: d for d in available_datasets()}
    assert list(listing) == ["fashion-mnist", "mnist", "cifar10", "digits"]
    assert listing["mnist"]["splits"] == ["train"] and listing["mnist"]["n_images"] == {"train": 6}
    assert listing["mnist"]["path"] == str(roots["env"] / "mnist")
    assert listing["cifar10"]["splits"] == ["train", "test"]
    assert listing["fashion-mnist"]["path"] is None and len(listing["fashion-mnist"]["searched"]) == 3
    assert listing["digits"]["n_images"] == {"train": 1437, "test": 360}
