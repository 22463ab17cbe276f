"""load_dataset: IDX, CIFAR-10 batches, image folders, .npz, digits; errors and fingerprints."""
from __future__ import annotations

import gzip
import logging
import os
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data import cifar, datasets, digits, idx, paths, testing
from pipeline.data.dataset import ArrayDataset, DatasetError, DatasetNotFoundError
from pipeline.data.datasets import available_datasets, load_dataset


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
