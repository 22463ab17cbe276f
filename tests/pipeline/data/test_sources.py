"""Every kind of source as a chunked, lazy Dataset: ranges, tasks, other processes; and
what the image-file sources (folders, CSV listings, tar shards) promise of their own."""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pipeline.data
from pipeline.data import cifar, files, idx, shards, testing
from pipeline.data.dataset import DatasetError
from pipeline.data.datasets import load_dataset, open_dataset, read_task
from pipeline.data.images import decode_image

N = 7  # rows of every small source: chunks of 3 end with a partial one
SHAPE = (5, 4)
CIFAR_BATCH_SIZES = (2, 1, 2, 2, 1)  # 8 rows: ranges cross the batch files


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png(array))
    return path


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@dataclass
class Source:
    """A source on disk (or a named one) and what reading it must give."""

    kind: str
    target: object
    labels: np.ndarray
    class_names: tuple
    images: np.ndarray | None = None  # None: known only through load_dataset (digits)
    split: str = "train"
    decoded: bool = False  # image files, decoded a range at a time
    cleanup: list = field(default_factory=list)


def _gray(rng, n=N, shape=SHAPE):
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8)


def _listing(tmp_path, rng, how):
    """A CSV listing whose label names are not in sorted order: classes are sorted."""
    images = _gray(rng)
    names = ["dog", "cat", "dog", "ant", "cat", "dog", "ant"]
    lines = ["path,label"]
    cleanup = []
    if how == "memory":
        import fsspec

        fs, prefix = fsspec.filesystem("memory"), f"cvpipe-test-{uuid.uuid4().hex}"
        cleanup.append(lambda: fs.rm(f"/{prefix}", recursive=True))
    for i, (image, name) in enumerate(zip(images, names)):
        if how == "memory":
            fs.pipe(f"/{prefix}/{i}.png", _png(image))
            item = f"memory://{prefix}/{i}.png"
        else:
            path = _save(tmp_path / "imgs" / f"{i}.png", image)
            item = {"relative": f"imgs/{i}.png", "absolute": str(path), "file-url": path.as_uri()}[how]
        lines.append(f"{item},{name}")
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    classes = ("ant", "cat", "dog")
    return Source(f"listing-{how}", tmp_path / "list.csv", np.array([classes.index(n) for n in names]), classes,
                  images, decoded=True, cleanup=cleanup)


def make_source(kind, tmp_path, rng):
    if kind in ("idx-plain", "idx-gz"):
        images, labels = _gray(rng), np.array([3, 0, 1, 2, 3, 0, 1], np.uint8)
        ext = ".gz" if kind == "idx-gz" else ""
        stems = idx.split_files("train")
        testing.write_idx(tmp_path / "idx" / f"{stems[0]}{ext}", images)
        testing.write_idx(tmp_path / "idx" / f"{stems[1]}{ext}", labels)
        return Source(kind, tmp_path / "idx", labels, ("0", "1", "2", "3"), images)
    if kind == "cifar":
        names = tuple(f"c{i}" for i in range(10))
        folder = tmp_path / "cifar-10-batches-py"
        folder.mkdir()
        testing.write_meta(folder / cifar.META_FILE, names)
        n = sum(CIFAR_BATCH_SIZES)
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
        ends = np.cumsum(CIFAR_BATCH_SIZES)
        for name, stop, size in zip(cifar.TRAIN_FILES, ends, CIFAR_BATCH_SIZES):
            testing.write_batch(folder / name, images[stop - size:stop], labels[stop - size:stop])
        testing.write_batch(folder / "test_batch", images[:1], labels[:1])
        return Source(kind, folder, labels, names, images)
    if kind in ("npz-stored", "npz-compressed"):
        images, labels = rng.integers(0, 256, (N, *SHAPE, 3), dtype=np.uint8), np.arange(N) % 3
        save = np.savez if kind == "npz-stored" else np.savez_compressed
        save(tmp_path / "d.npz", images=images, labels=labels, class_names=np.array(["x", "y", "z"]))
        return Source(kind, tmp_path / "d.npz", labels, ("x", "y", "z"), images)
    if kind == "digits":
        ref = load_dataset("digits", "test")
        return Source(kind, "digits", ref.labels, tuple("0123456789"), None, split="test")
    if kind == "folder":
        images, labels = _gray(rng), np.array([0, 0, 1, 1, 1, 2, 2])
        for i, (image, label) in enumerate(zip(images, labels)):
            _save(tmp_path / "pets" / ("ant", "bee", "cat")[label] / f"{i}.png", image)
        return Source(kind, tmp_path / "pets", labels, ("ant", "bee", "cat"), images, decoded=True)
    if kind.startswith("listing-"):
        return _listing(tmp_path, rng, kind[len("listing-"):])
    if kind == "shards":
        images, labels = _gray(rng), np.array([2, 0, 1, 1, 0, 2, 2])
        (tmp_path / "shards").mkdir()
        for number, rows in enumerate(((0, 1, 2), (3, 4), (5, 6))):
            with tarfile.open(tmp_path / "shards" / f"{number:04d}.tar", "w") as tar:
                for row in rows:
                    _add(tar, f"{row:04d}.png", _png(images[row]))
                    _add(tar, f"{row:04d}.cls", str(labels[row]).encode())
        return Source(kind, tmp_path / "shards", labels, ("0", "1", "2"), images, decoded=True)
    raise AssertionError(kind)


KINDS = ["idx-plain", "idx-gz", "cifar", "npz-stored", "npz-compressed", "digits", "folder", "listing-relative",
         "listing-absolute", "listing-file-url", "listing-memory", "shards"]


@pytest.fixture(params=KINDS)
def source(request, tmp_path, rng):
    made = make_source(request.param, tmp_path, rng)
    yield made
    for undo in made.cleanup:
        undo()


def _ranges(n):
    last = 3 * ((n - 1) // 3)
    return [(0, 0), (0, 3), (2, 5), (n // 2, n // 2 + 2), (last, n), (n - 1, n), (0, n), (n, n)]


def _same(a, b):
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.images.dtype == np.uint8 and a.labels.dtype == np.int64
    assert tuple(a.failed) == tuple(b.failed)


# --- every source ----------------------------------------------------------------------

def test_ranges_equal_the_rows_of_load_dataset(source):
    ds = open_dataset(source.target, source.split)
    ref = load_dataset(source.target, source.split)
    assert len(ds) == len(ref) == len(source.labels) and ds.class_names == ref.class_names == source.class_names
    assert ref.skipped == ds.skipped == ()
    if source.images is not None:
        np.testing.assert_array_equal(ref.images, source.images)
        assert ds.image_shape == source.images.shape[1:]
    for start, stop in _ranges(len(ds)):
        batch = ds.read(start, stop)
        assert batch.images.shape == (stop - start, *ds.image_shape), (start, stop)
        np.testing.assert_array_equal(batch.images, ref.images[start:stop])
        np.testing.assert_array_equal(batch.labels, ref.labels[start:stop])
        assert batch.failed == () and batch.resized == 0
    chunks = list(ds.chunks(3))
    assert [start for start, _ in chunks] == list(range(0, len(ds), 3))
    assert len(chunks[-1][1].labels) == (len(ds) % 3 or 3)
    np.testing.assert_array_equal(np.concatenate([b.images for _, b in chunks]), ref.images)


def test_labels_are_known_without_reading_images(source, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an image was decoded to know the labels")

    monkeypatch.setattr(files, "decode_with_size", refuse)
    monkeypatch.setattr(shards, "decode_with_size", refuse)
    ds = open_dataset(source.target, source.split)
    np.testing.assert_array_equal(ds.labels, source.labels)
    assert ds.labels.dtype == np.int64 and len(ds) == len(source.labels)


def test_a_task_is_json_and_reads_back_the_same_rows(source):
    ds = open_dataset(source.target, source.split)
    n = len(ds)
    for start, stop in [(0, 0), (1, 4), (n - 2, n), (0, n)]:
        task = ds.task(start, stop)
        assert (task["start"], task["stop"]) == (start, stop)
        _same(read_task(task), ds.read(start, stop))
        _same(read_task(json.loads(json.dumps(task))), ds.read(start, stop))


def test_out_of_range_reads_raise_index_error(source):
    ds = open_dataset(source.target, source.split)
    n = len(ds)
    for start, stop in [(-1, 2), (0, n + 1), (3, 2), (n + 1, n + 1), (n, n + 1)]:
        with pytest.raises(IndexError, match=f"outside the {n} rows"):
            ds.read(start, stop)
        with pytest.raises(IndexError):
            ds.task(start, stop)


def test_the_dataset_is_read_only(source):
    ds = open_dataset(source.target, source.split)
    for name, value in [("name", "other"), ("labels", np.zeros(len(ds), np.int64)), ("class_names", ("a",)),
                        ("image_shape", (1, 1)), ("anything_new", 1)]:
        with pytest.raises(AttributeError, match="read-only"):
            setattr(ds, name, value)
    with pytest.raises(ValueError):
        ds.labels[0] = 1
    assert ds.fingerprint() == ds.fingerprint()  # the cached fingerprint is not a change


CHILD = """
import json, sys
import numpy as np
from pipeline.data import read_task
tasks = json.load(open(sys.argv[1]))
out = {}
for i, task in enumerate(tasks):
    batch = read_task(task)
    out[f"images{i}"], out[f"labels{i}"], out[f"failed{i}"] = batch.images, batch.labels, len(batch.failed)
np.savez(sys.argv[2], **out)
"""


def test_a_task_read_in_another_process_gives_the_same_bytes(tmp_path, rng):
    """One fresh interpreter reads a task of every file source (a memory:// file lives in
    one process only, so that listing is left out)."""
    tasks, expected = [], []
    for kind in KINDS:
        if kind == "listing-memory":
            continue
        (tmp_path / kind).mkdir()
        made = make_source(kind, tmp_path / kind, rng)
        ds = open_dataset(made.target, made.split)
        for start, stop in [(1, 5), (len(ds) - 2, len(ds))]:
            tasks.append(json.loads(json.dumps(ds.task(start, stop))))
            expected.append((kind, ds.read(start, stop)))
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    root = Path(pipeline.data.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "tasks.json"), str(tmp_path / "out.npz")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "out.npz") as out:
        for i, (kind, batch) in enumerate(expected):
            assert out[f"images{i}"].dtype == np.uint8, kind
            assert out[f"images{i}"].tobytes() == np.ascontiguousarray(batch.images).tobytes(), kind
            assert out[f"images{i}"].shape == batch.images.shape, kind
            np.testing.assert_array_equal(out[f"labels{i}"], batch.labels, err_msg=kind)
            assert int(out[f"failed{i}"]) == 0, kind


@pytest.mark.parametrize("kind", ["idx-plain", "idx-gz", "npz-stored", "npz-compressed", "cifar"])
def test_a_task_reads_a_replaced_file_as_it_is_now(tmp_path, rng, kind):
    """read_task keeps what it opened last (a worker reads one job's rows); a worker kept
    for the next job, after the file was replaced, read the old rows."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = make_source(kind, tmp_path / "old", rng)
    np.testing.assert_array_equal(read_task(open_dataset(old.target).task(0, 3)).images, old.images[:3])
    new = make_source(kind, tmp_path / "new", rng)  # the same files, other pixels
    for path in sorted(p for p in (tmp_path / "new").rglob("*") if p.is_file()):
        os.replace(path, tmp_path / "old" / path.relative_to(tmp_path / "new"))
    task = json.loads(json.dumps(open_dataset(old.target).task(0, 3)))
    np.testing.assert_array_equal(read_task(task).images, new.images[:3])


# --- image folders ----------------------------------------------------------------------

def _items(ds):
    return [ds.item(row) for row in range(len(ds))]


def test_a_symlinked_class_folder_is_followed(tmp_path, rng):
    images = _gray(rng, 4)
    root = tmp_path / "pets"
    _save(root / "ant" / "0.png", images[0])
    _save(root / "ant" / "1.png", images[1])
    _save(tmp_path / "elsewhere" / "bees" / "0.png", images[2])
    _save(tmp_path / "elsewhere" / "bees" / "deeper" / "1.png", images[3])
    os.symlink(tmp_path / "elsewhere" / "bees", root / "bee")
    ds = open_dataset(root)
    assert ds.class_names == ("ant", "bee") and ds.labels.tolist() == [0, 0, 1, 1]
    assert _items(ds) == ["ant/0.png", "ant/1.png", "bee/0.png", "bee/deeper/1.png"] and ds.skipped == ()
    np.testing.assert_array_equal(ds.read(0, 4).images, images)


@pytest.mark.timeout(30)
def test_symlink_loops_and_second_links_are_recorded_not_listed_twice(tmp_path, rng):
    root = tmp_path / "pets"
    for name in ("ant/0.png", "ant/1.png", "bee/0.png", "zebra/0.png"):
        _save(root / name, _gray(rng, 1)[0])
    os.symlink(root / "ant", root / "ant" / "loop")  # a folder inside itself
    os.symlink(root / "ant", root / "bee" / "again")  # a second link to a listed folder
    os.symlink("../..", root / "zebra" / "up")  # a link to the root's parent
    os.symlink(root / "bee" / "self", root / "bee" / "self")  # a link to itself: never resolves
    ds = open_dataset(root)
    assert ds.class_names == ("ant", "bee", "zebra")
    assert _items(ds) == ["ant/0.png", "ant/1.png", "bee/0.png", "zebra/0.png"] and ds.labels.tolist() == [0, 0, 1, 2]
    skipped = dict(ds.skipped)
    for link in ("ant/loop", "bee/again", "zebra/up"):
        assert "a folder already listed" in skipped.pop(str(root / link)), link
    assert skipped.pop(str(root / "bee" / "self")).startswith("not an image file")
    assert skipped == {}
    assert len(ds.materialize()) == 4


@pytest.mark.timeout(30)
@pytest.mark.parametrize("layout", ["flat", "splits"])
def test_a_link_to_the_root_is_a_loop_and_labels_stay_right(tmp_path, rng, layout):
    """ROOT/loop -> ROOT listed ROOT/zebra's images as class "loop", and in the split
    layout the test images as train images of class "loop"."""
    root = tmp_path / "pets"
    folder = root / "train" if layout == "splits" else root
    for name in ("ant/0.png", "zebra/0.png"):
        _save(folder / name, _gray(rng, 1)[0])
    if layout == "splits":
        _save(root / "test" / "ant" / "1.png", _gray(rng, 1)[0])
    os.symlink(root, folder / "loop")
    ds = open_dataset(root)
    assert ds.class_names == ("ant", "loop", "zebra")
    assert _items(ds) == ["ant/0.png", "zebra/0.png"] and ds.labels.tolist() == [0, 2]
    assert [item for item, _ in ds.skipped] == [str(folder / "loop")]


@pytest.mark.timeout(30)
def test_a_fifo_and_a_broken_symlink_are_recorded_and_never_opened(tmp_path, rng, monkeypatch):
    root = tmp_path / "pets"
    images = _gray(rng, 2)
    _save(root / "ant" / "0.png", images[0])
    _save(root / "ant" / "1.png", images[1])
    os.mkfifo(root / "ant" / "pipe.png")
    os.symlink(tmp_path / "missing.png", root / "ant" / "gone.png")
    os.mkfifo(root / "loose.png")
    opened = []
    for name in ("probe_image", "decode_with_size"):
        real = getattr(files, name)
        monkeypatch.setattr(files, name, lambda source, *a, _real=real, **k: (opened.append(str(source)),
                                                                              _real(source, *a, **k))[1])
    ds = open_dataset(root)
    assert len(ds) == 2 and _items(ds) == ["ant/0.png", "ant/1.png"]
    np.testing.assert_array_equal(ds.materialize().images, images)
    assert sorted(opened) == sorted(str(root / "ant" / f"{i}.png") for i in (0, 1, 0, 1))
    skipped = dict(ds.skipped)
    assert skipped == {str(root / "loose.png"): "not inside a class folder",
                       str(root / "ant" / "pipe.png"): "not an image file: a FIFO (named pipe)",
                       str(root / "ant" / "gone.png"): "not an image file: a broken symlink"}


def test_size_and_mode_come_from_a_seeded_sample_and_are_recorded(tmp_path, rng, monkeypatch):
    root = tmp_path / "pets"
    for i in range(5):
        _save(root / "ant" / f"{i}.png", rng.integers(0, 256, (6, 5), dtype=np.uint8))
    _save(root / "bee" / "0.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    ds = open_dataset(root)
    assert (ds.size, ds.mode, ds.image_shape) == ((6, 5), "RGB", (6, 5, 3))
    assert ds.size_and_mode_from == "a sample of 6 of 6 files (seed 0)"
    described = ds.describe()
    assert (described["size"], described["mode"], described["size_and_mode_from"]) == ([6, 5], "RGB",
                                                                                       ds.size_and_mode_from)
    assert json.dumps(described)
    batch = ds.read(0, 6)
    assert batch.images.shape == (6, 6, 5, 3) and batch.resized == 1
    given = open_dataset(root, size=(3, 2), mode="L")
    assert (given.size, given.mode, given.image_shape, given.size_and_mode_from) == ((3, 2), "L", (3, 2), "given")
    assert given.read(0, 6).images.shape == (6, 3, 2) and given.read(0, 6).resized == 6
    assert open_dataset(root, size=4).image_shape == (4, 4, 3)
    assert open_dataset(root, mode="L").image_shape == (6, 5)
    assert given.fingerprint() != ds.fingerprint()

    probed = []
    real = files.probe_image
    monkeypatch.setattr(files, "SAMPLE_SIZE", 2)
    monkeypatch.setattr(files, "probe_image", lambda source, **k: (probed.append(str(source)), real(source, **k))[1])
    sampled = open_dataset(root)
    assert len(probed) == 2 and sampled.size_and_mode_from == "a sample of 2 of 6 files (seed 0)"
    open_dataset(root)
    assert probed[:2] == probed[2:]  # seeded: the same files every time


def test_an_unreadable_image_is_a_zero_row_listed_in_failed(tmp_path, rng):
    images = _gray(rng, 6)
    root = tmp_path / "pets"
    for i, image in enumerate(images):
        _save(root / ("ant" if i < 3 else "bee") / f"{i}.png", image)
    ds = open_dataset(root)
    broken, gone = root / "bee" / "3.png", root / "bee" / "5.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n then nothing")  # rewritten after the listing was made
    gone.unlink()
    batch = ds.read(2, 6)
    assert [(row, item) for row, item, _ in batch.failed] == [(3, str(broken)), (5, str(gone))]
    assert "PNG" in batch.failed[0][2] and "No such file" in batch.failed[1][2]
    assert not batch.images[1].any() and not batch.images[3].any()
    np.testing.assert_array_equal(batch.images[[0, 2]], images[[2, 4]])
    assert batch.labels.tolist() == [0, 1, 1, 1]
    assert read_task(json.loads(json.dumps(ds.task(2, 6)))).failed == batch.failed
    memory = ds.materialize()
    np.testing.assert_array_equal(memory.images, images[[0, 1, 2, 4]])
    assert memory.labels.tolist() == [0, 0, 0, 1]
    assert [item for item, _ in memory.skipped] == [str(broken), str(gone)]
    assert dict(memory.skipped)[str(broken)] == batch.failed[0][2]
    subset = ds.subset([5, 4, 3])
    assert subset.labels.tolist() == [1] and len(subset.skipped) == 2


def test_the_folder_fingerprint_follows_the_files(tmp_path, rng):
    root = tmp_path / "pets"
    for i in range(4):
        _save(root / ("ant" if i < 2 else "bee") / f"{i}.png", _gray(rng, 1)[0])
    first = open_dataset(root).fingerprint()
    ds = open_dataset(root)
    ds.materialize()
    assert ds.fingerprint() == first == open_dataset(root).fingerprint()
    (root / "ant" / ".DS_Store").write_bytes(b"\0")  # hidden: not part of the dataset
    _save(tmp_path / "other" / "x" / "0.png", _gray(rng, 1)[0])  # outside it
    assert open_dataset(root).fingerprint() == first

    _save(root / "bee" / "3.png", rng.integers(0, 256, (7, 6), dtype=np.uint8))  # rewritten
    rewritten = open_dataset(root).fingerprint()
    assert rewritten != first
    _save(root / "bee" / "4.png", _gray(rng, 1)[0])  # added
    added = open_dataset(root).fingerprint()
    assert added not in (first, rewritten)
    (root / "ant" / "0.png").unlink()  # removed
    assert open_dataset(root).fingerprint() not in (first, rewritten, added)


# --- CSV listings -----------------------------------------------------------------------

@pytest.mark.parametrize("header", ["path,label\n", " Path , LABEL \n", "\ufeffpath,label\n", ""],
                         ids=["header", "spaced", "bom", "none"])
def test_a_listing_skips_its_header_and_sorts_its_classes(tmp_path, rng, header):
    images = _gray(rng, 3)
    for i, image in enumerate(images):
        _save(tmp_path / f"{i}.png", image)
    (tmp_path / "l.csv").write_text(header + "0.png,zebra\n\n1.png , ant\n2.png,mole\n", encoding="utf-8")
    ds = open_dataset(tmp_path / "l.csv")
    assert ds.class_names == ("ant", "mole", "zebra") and ds.labels.tolist() == [2, 0, 1]
    assert (ds.name, ds.source) == ("l", str(tmp_path / "l.csv"))
    np.testing.assert_array_equal(ds.read(0, 3).images, images)


@pytest.mark.parametrize("line, number", [("b.png", 3), ("b.png,", 3), (",cat", 3), ("b.png,cat,extra", 3)])
def test_a_listing_line_without_its_two_fields_is_an_error_naming_the_line(tmp_path, line, number):
    (tmp_path / "l.csv").write_text(f"path,label\na.png,cat\n{line}\nc.png,dog\n")
    with pytest.raises(DatasetError, match=f"l.csv: line {number}: expected 'path,label'"):
        open_dataset(tmp_path / "l.csv")


@pytest.mark.parametrize("given", [False, True], ids=["sampled", "size-given"])
def test_an_unknown_scheme_or_a_missing_file_is_a_failed_row(tmp_path, rng, given):
    images = _gray(rng, 2)
    _save(tmp_path / "0.png", images[0])
    _save(tmp_path / "3.png", images[1])
    (tmp_path / "l.csv").write_text("0.png,a\nnope://bucket/1.png,b\nmissing.png,a\nmemory://cvpipe-none/x.png,b\n"
                                    "3.png,b\n")
    ds = open_dataset(tmp_path / "l.csv", **({"size": SHAPE, "mode": "L"} if given else {}))
    assert len(ds) == 5 and ds.image_shape == SHAPE and ds.labels.tolist() == [0, 1, 0, 1, 1]
    batch = ds.read(0, 5)
    failed = {row: (item, reason) for row, item, reason in batch.failed}
    assert sorted(failed) == [1, 2, 3]
    assert failed[1][0] == "nope://bucket/1.png" and "nope" in failed[1][1]
    assert failed[2][0] == str(tmp_path / "missing.png") and "No such file" in failed[2][1]
    assert failed[3][0] == "memory://cvpipe-none/x.png" and "FileNotFoundError" in failed[3][1]
    np.testing.assert_array_equal(batch.images[[0, 4]], images)
    assert not batch.images[1:4].any()
    memory = ds.materialize()
    assert len(memory) == 2 and len(memory.skipped) == 3


def test_a_file_url_is_decoded_as_path_as_uri_writes_it(tmp_path, rng):
    image = _gray(rng, 1)[0]
    path = _save(tmp_path / "my images" / "a b%.png", image)
    (tmp_path / "l.csv").write_text(f"{path.as_uri()},cat\n")
    assert "%20" in path.as_uri()
    ds = open_dataset(tmp_path / "l.csv")
    batch = ds.read(0, 1)
    assert batch.failed == ()
    np.testing.assert_array_equal(batch.images[0], image)


def test_a_file_url_is_read_as_rfc_8089_has_it(tmp_path, rng, monkeypatch):
    """``file://localhost/abs`` is ``/abs``; ``file://x.png`` is the host ``x.png`` and no
    path: one unreadable item that says why, never a guess at a relative ``x.png``."""
    images = _gray(rng, 3)
    paths = [_save(tmp_path / "my images" / f"{i}.png", image) for i, image in enumerate(images)]
    _save(tmp_path / "x.png", images[0])  # what a guess would read
    monkeypatch.chdir(tmp_path)
    items = [paths[0].as_uri().replace("file://", "file://localhost", 1),
             "file://x.png",
             paths[1].as_uri().replace("file://", "file://LocalHost", 1),  # host names are case-insensitive
             "file://server" + paths[2].as_uri()[len("file://"):],
             paths[2].as_uri()]
    (tmp_path / "l.csv").write_text("".join(f"{item},cat\n" for item in items))
    ds = open_dataset(tmp_path / "l.csv")
    batch = ds.read(0, 5)
    failed = {row: (item, reason) for row, item, reason in batch.failed}
    assert sorted(failed) == [1, 3]
    assert failed[1] == ("file://x.png", "file://x.png: a file URL without a path (its host is 'x.png'): expected "
                         "file:///absolute/path or file://localhost/absolute/path, a file on this machine; a relative "
                         "path is written without file://")
    assert failed[3][0] == items[3] and "a file URL of the host 'server': expected file:///" in failed[3][1]
    np.testing.assert_array_equal(batch.images[[0, 2, 4]], images)
    assert not batch.images[[1, 3]].any()
    np.testing.assert_array_equal(read_task(ds.task(0, 5)).images, batch.images)
    assert len(ds.fingerprint()) == 64 and len(ds.materialize().skipped) == 2


# --- tar shards -------------------------------------------------------------------------

def _jpeg(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_shards_pair_each_image_with_its_class_across_shards(tmp_path, rng):
    images = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    encoded = [_jpeg(image) for image in images]
    folder = tmp_path / "shards"
    folder.mkdir()
    with tarfile.open(folder / "0000.tar", "w") as tar:
        _add(tar, "a/0001.cls", b"4\n")  # the class may come first
        _add(tar, "a/0001.jpg", encoded[0])
        _add(tar, "a/0000.jpg", encoded[1])
        _add(tar, "a/0000.cls", b"0")
    with tarfile.open(folder / "0001.tar", "w") as tar:
        for key, data, label in (("0002", encoded[2], b"1"), ("0003", encoded[3], b" 2 "), ("0004", encoded[4], b"4")):
            _add(tar, f"{key}.jpg", data)
            _add(tar, f"{key}.cls", label)
    (folder / "notes.txt").write_text("not a shard")
    ds = open_dataset(folder)
    assert isinstance(ds, shards.ShardDataset) and len(ds.shards) == 2
    assert ds.labels.tolist() == [0, 4, 1, 2, 4] and ds.class_names == ("0", "1", "2", "3", "4")
    assert (ds.image_shape, ds.skipped) == ((8, 8, 3), ())
    order = [1, 0, 2, 3, 4]  # a/0000 before a/0001
    expected = np.stack([decode_image(encoded[i], (8, 8), "RGB") for i in order])
    np.testing.assert_array_equal(ds.read(0, 5).images, expected)
    np.testing.assert_array_equal(load_dataset(folder / "0001.tar").images, expected[2:])


def test_a_key_is_the_path_without_the_extension_of_its_last_part(tmp_path, rng):
    """As WebDataset's ``base_plus_ext``: a dot in a folder is not the extension's (the key
    was the name up to its first dot, so ``v1.0/0001.jpg`` was ``v1`` and lost its class)."""
    images = _gray(rng, 4)
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        _add(tar, "v1.0/0001.png", _png(images[0]))
        _add(tar, "v1.0/0001.cls", b"1")
        _add(tar, "v1.0/0002.PNG", _png(images[1]))  # extensions are matched lowercased
        _add(tar, "v1.0/0002.cls", b"0")
        _add(tar, "./0003.png", _png(images[2]))  # as `tar cf s.tar .` writes them
        _add(tar, "./0003.cls", b"2")
        _add(tar, "x.y/0004.seg.png", _png(images[3]))  # extension "seg.png": not an image
        _add(tar, "x.y/0004.cls", b"0")
    ds = open_dataset(tmp_path / "s.tar")
    assert ds.labels.tolist() == [2, 1, 0]  # keys sorted: ./0003, v1.0/0001, v1.0/0002
    np.testing.assert_array_equal(ds.read(0, 3).images, images[[2, 0, 1]])
    assert ds.task(0, 1)["members"][0][3] == "s.tar:./0003"
    assert dict(ds.skipped) == {f"{tmp_path / 's.tar'}:x.y/0004": "no image member"}
    assert shards.split_key("a.b/c.d/0001.Seg.PNG") == ("a.b/c.d/0001", "seg.png")


def test_a_sample_missing_a_part_or_with_a_bad_class_is_skipped(tmp_path, rng):
    png = _png(_gray(rng, 1)[0])
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        _add(tar, "0000.png", png)
        _add(tar, "0000.cls", b"1")
        _add(tar, "0001.png", png)  # no .cls
        _add(tar, "0002.cls", b"0")  # no image
        _add(tar, "0003.png", png)
        _add(tar, "0003.cls", b"cat")  # not an integer
        _add(tar, "0004.png", png)
        _add(tar, "0004.cls", b"-1")
        _add(tar, "0005.png", png)
        _add(tar, "0005.cls", b"\xff\xfe")
    ds = open_dataset(tmp_path / "s.tar")
    assert len(ds) == 1 and ds.labels.tolist() == [1]
    shard = tmp_path / "s.tar"
    assert dict(ds.skipped) == {f"{shard}:0001": "no .cls member", f"{shard}:0002": "no image member",
                                f"{shard}:0003": "an unreadable or negative .cls",
                                f"{shard}:0004": "an unreadable or negative .cls",
                                f"{shard}:0005": "an unreadable or negative .cls"}
    assert load_dataset(shard).skipped == ds.skipped


@pytest.mark.parametrize("value", [b"1000000", b"99999999", b"999999999999"])
def test_a_class_index_beyond_the_bound_is_refused_before_naming_the_classes(tmp_path, rng, monkeypatch, value):
    """One stray .cls (an id, a hash) made a name for every class up to it: 100 million
    strings for ``99999999``, all memory for ``999999999999``."""

    def bounded_range(*args):  # should the bound go, fail here rather than exhaust memory
        numbers = range(*args)
        assert len(numbers) <= shards.MAX_CLASSES, f"about to make {len(numbers):,} class names"
        return numbers

    monkeypatch.setattr(shards, "range", bounded_range, raising=False)
    png = _png(_gray(rng, 1)[0])
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        _add(tar, "0000.png", png)
        _add(tar, "0000.cls", b"1")
        _add(tar, "0001.png", png)
        _add(tar, "0001.cls", value + b"\n")
    started = time.perf_counter()
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 's.tar'}: member '0001.cls': class index "
                                                     f"{int(value):,} is out of range: expected 0..999,999")):
        open_dataset(tmp_path / "s.tar")
    assert time.perf_counter() - started < 1.0


def test_a_long_cls_is_unreadable_not_cut_to_its_first_bytes(tmp_path, rng):
    png = _png(_gray(rng, 1)[0])
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        _add(tar, "0000.png", png)
        _add(tar, "0000.cls", b"2" + b" " * 64 + b"7")  # once read as 2: the first 64 bytes
        _add(tar, "0001.png", png)
        _add(tar, "0001.cls", b" 3\n")
    ds = open_dataset(tmp_path / "s.tar")
    assert ds.labels.tolist() == [3]
    assert dict(ds.skipped) == {f"{tmp_path / 's.tar'}:0000": "an unreadable or negative .cls"}


def test_compressed_shards_are_refused(tmp_path, rng):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "0000.png", _png(_gray(rng, 1)[0]))
        _add(tar, "0000.cls", b"0")
    (tmp_path / "a.tar.gz").write_bytes(gzip.compress(buf.getvalue()))
    (tmp_path / "b.tar").write_bytes(gzip.compress(buf.getvalue()))
    with pytest.raises(DatasetError, match="a.tar.gz"):
        open_dataset(tmp_path / "a.tar.gz")
    with pytest.raises(DatasetError, match="b.tar: not an uncompressed tar file"):
        open_dataset(tmp_path / "b.tar")


def test_reading_a_range_opens_only_its_shards(tmp_path, rng):
    made = make_source("shards", tmp_path, rng)
    ds = open_dataset(made.target)
    first, second, third = ds.shards
    assert ds.task(0, 3)["shards"] == [str(first)] and ds.task(2, 5)["shards"] == [str(first), str(second)]
    assert ds.task(3, 3)["shards"] == []
    third.unlink()
    second.write_bytes(b"")  # neither is opened for the rows of the first
    np.testing.assert_array_equal(ds.read(0, 3).images, made.images[:3])
    assert [row for row, _, _ in ds.read(4, 6).failed] == [4, 5]  # gone: failed rows, not a crash
