"""The batch job: tasks are descriptions, workers write checksummed chunks, resume
verifies them, the same bytes on every engine, failures recorded, nothing left behind."""
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pipeline.jobs.extract as extract
from pipeline.data.datasets import load_dataset, open_dataset
from pipeline.jobs.chunk import chunk_names
from pipeline.jobs.extract import ExtractionError, load_features, run_extraction
from pipeline.model import load_extractor
from pipeline.model.spec import build_extractor

SPEC = "hog:pixels_per_cell=7,bovw:n_words=12,patch_size=5,stride=3,random_state=0"


@pytest.fixture(scope="module")
def npz_dataset(tmp_path_factory):
    """A small synthetic dataset, read through the npz source."""
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    np.savez(path, images=rng.integers(0, 256, size=(230, 28, 28), dtype=np.uint8), labels=rng.integers(0, 3, 230))
    return path


@pytest.fixture(scope="module")
def clean_run(npz_dataset, tmp_path_factory):
    """An uninterrupted run of SPEC in chunks of 30: the bytes every other run must write."""
    out = tmp_path_factory.mktemp("clean") / "out"
    run_extraction(npz_dataset, SPEC, out, chunk_size=30, n_jobs=2, progress=False)
    return _bytes(out)


def _bytes(out):
    return (out / "features.npy").read_bytes(), (out / "labels.npy").read_bytes()


def _stop_after(monkeypatch, n_results=None, then=None):
    """Make the job's coordinator stop (KeyboardInterrupt, as if killed) after ``n_results`` finished
    chunks, or after all of them when None; ``then(out)`` runs first, with the chunks on disk."""
    real = extract.run_tasks

    def run_tasks(engine, function, tasks, **kwargs):
        tasks = list(tasks)
        for i, result in enumerate(real(engine, function, tasks, **kwargs)):
            if i == n_results:
                raise KeyboardInterrupt
            yield result
        if then is not None:
            then(Path(tasks[0]["out"]))
        if n_results is None:
            raise KeyboardInterrupt

    monkeypatch.setattr(extract, "run_tasks", run_tasks)


def test_local_job_writes_what_the_extractor_computes(npz_dataset, tmp_path):
    manifest = run_extraction(npz_dataset, SPEC, tmp_path / "out", chunk_size=50, n_jobs=2, progress=False)
    features, labels, on_disk = load_features(tmp_path / "out", verify=True)
    data = load_dataset(npz_dataset)
    expected = build_extractor(SPEC).fit(data.images).transform(data.images)
    assert isinstance(features, np.memmap) and features.dtype == np.float32
    np.testing.assert_array_equal(features, expected)
    np.testing.assert_array_equal(labels, data.labels)
    assert on_disk == manifest
    assert manifest["n_chunks"] == 5 and manifest["dataset"]["fingerprint"] == data.fingerprint()
    assert manifest["files"]["features"]["shape"] == list(expected.shape)
    assert [c["rows"] for c in manifest["chunks"]] == [[0, 50], [50, 100], [100, 150], [150, 200], [200, 230]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["extractor", "features.npy", "labels.npy",
                                                                   "manifest.json"]
    extractor, sha = load_extractor(tmp_path / "out" / "extractor")
    assert sha == manifest["extractor"]["sha256"]
    np.testing.assert_array_equal(extractor.transform(data.images[:7]), expected[:7])


def test_a_task_is_a_small_description_never_an_array(npz_dataset, tmp_path, monkeypatch):
    seen = []
    real = extract.run_tasks

    def run_tasks(engine, function, tasks, **kwargs):
        tasks = list(tasks)
        seen.extend(tasks)
        return real(engine, function, tasks, **kwargs)

    monkeypatch.setattr(extract, "run_tasks", run_tasks)
    run_extraction(npz_dataset, SPEC, tmp_path / "out", chunk_size=100, n_jobs=1, progress=False)
    assert [t["rows"] for t in seen] == [[0, 100], [100, 200], [200, 230]]
    for task in seen:
        assert len(json.dumps(task)) < 1000, task  # plain JSON: no pixels travel with a task
        assert task["out"] == str((tmp_path / "out" / "chunks").resolve())


def test_learning_extractors_fit_on_a_bounded_seeded_sample(npz_dataset, tmp_path, monkeypatch):
    fitted = []
    real_fit = extract._fit

    def spy(extractor, data, fit_data, rows):
        fitted.append(rows)
        return real_fit(extractor, data, fit_data, rows)

    monkeypatch.setattr(extract, "_fit", spy)
    a = run_extraction(npz_dataset, SPEC, tmp_path / "a", fit_samples=60, seed=3, n_jobs=1, progress=False)
    b = run_extraction(npz_dataset, SPEC, tmp_path / "b", fit_samples=60, seed=3, n_jobs=1, progress=False)
    c = run_extraction(npz_dataset, SPEC, tmp_path / "c", fit_samples=60, seed=4, n_jobs=1, progress=False)
    assert len(fitted[0]) == 60 and np.all(np.diff(fitted[0]) > 0)
    np.testing.assert_array_equal(fitted[0], fitted[1])
    assert a["fitted_on"] == b["fitted_on"] and a["fitted_on"]["sample"] == 60 and a["fitted_on"]["seed"] == 3
    assert a["fitted_on"]["rows_sha256"] != c["fitted_on"]["rows_sha256"] and a["job_key"] != c["job_key"]
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b") != _bytes(tmp_path / "c")
    data = load_dataset(npz_dataset)
    expected = build_extractor(SPEC).fit(data.images[fitted[0]]).transform(data.images)
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "features.npy"), expected)
    hog_only = run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "d", n_jobs=1, progress=False)
    assert hog_only["fitted_on"] is None and fitted[-1] is None


def test_the_job_writes_files_with_the_permissions_of_new_files(npz_dataset, tmp_path, umask_022):
    run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", chunk_size=100, progress=False)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*")}
    assert modes and set(modes.values()) <= {0o644, 0o755}, modes


def test_an_interrupted_job_resumes_to_the_same_bytes(npz_dataset, tmp_path, monkeypatch, clean_run):
    _stop_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(npz_dataset, SPEC, tmp_path / "cut", chunk_size=30, n_jobs=1, progress=False)
    written = len(list((tmp_path / "cut" / "chunks").glob("*.npy")))
    assert 3 <= written < 8  # the chunks in flight when it stopped finish: two per worker at most
    assert not (tmp_path / "cut" / "manifest.json").exists()
    monkeypatch.undo()

    def no_refit(*args):
        raise AssertionError("a resumed job uses the extractor it saved, it does not fit again")

    monkeypatch.setattr(extract, "_fit", no_refit)
    manifest = run_extraction(npz_dataset, SPEC, tmp_path / "cut", chunk_size=30, n_jobs=1, progress=False)
    assert manifest["resumed_chunks"] == written
    assert _bytes(tmp_path / "cut") == clean_run


def _flip_a_byte(array_path, record_path):
    data = bytearray(array_path.read_bytes())
    data[-5] ^= 0x01
    array_path.write_bytes(bytes(data))


def _zero_a_row(array_path, record_path):
    a = np.load(array_path)
    a[3] = 0
    np.save(array_path, a)


def _swap_two_rows(array_path, record_path):
    a = np.load(array_path)
    a[[0, 1]] = a[[1, 0]]
    np.save(array_path, a)


def _truncate(array_path, record_path):
    array_path.write_bytes(array_path.read_bytes()[:-400])


def _swap_with_the_next_chunk(array_path, record_path):
    other = array_path.parent / chunk_names(int(array_path.stem) + 1)[0]
    a, b = array_path.read_bytes(), other.read_bytes()
    array_path.write_bytes(b)
    other.write_bytes(a)


def _rewrite_the_record_for_other_rows(array_path, record_path):
    record = json.loads(record_path.read_text())
    record["rows"] = [0, 30]
    record_path.write_text(json.dumps(record))


def _garble_the_record(array_path, record_path):
    record_path.write_text('{"index": 1, "rows": [30, 60')


def _remove_the_record(array_path, record_path):
    record_path.unlink()


def _replace_the_record_with_a_list(array_path, record_path):
    record_path.write_text("[1, 2]")


CORRUPTIONS = [_flip_a_byte, _zero_a_row, _swap_two_rows, _truncate, _swap_with_the_next_chunk,
               _rewrite_the_record_for_other_rows, _garble_the_record, _remove_the_record,
               _replace_the_record_with_a_list]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_resume_recomputes_a_finished_chunk_that_changed_on_disk(npz_dataset, tmp_path, monkeypatch, caplog,
                                                                  clean_run, corrupt):
    out = tmp_path / "out"
    _stop_after(monkeypatch)  # every chunk written, then the coordinator dies before assembling
    with pytest.raises(KeyboardInterrupt):
        run_extraction(npz_dataset, SPEC, out, chunk_size=30, n_jobs=1, progress=False)
    monkeypatch.undo()
    assert len(list((out / "chunks").glob("*.npy"))) == 8
    corrupt(*(out / "chunks" / name for name in chunk_names(1)))
    with caplog.at_level(logging.INFO, logger="pipeline.jobs.extract"):
        manifest = run_extraction(npz_dataset, SPEC, out, chunk_size=30, n_jobs=1, progress=False)
    assert "chunk 1" in caplog.text and "computing it again" in caplog.text
    recomputed = 2 if corrupt is _swap_with_the_next_chunk else 1
    assert manifest["resumed_chunks"] == 8 - recomputed
    assert _bytes(out) == clean_run


def test_a_chunk_changed_after_it_was_checked_fails_the_assembly_and_is_recomputed(npz_dataset, tmp_path,
                                                                                    monkeypatch, clean_run):
    out = tmp_path / "out"
    real = extract.run_tasks

    def run_tasks(engine, function, tasks, **kwargs):
        tasks = list(tasks)
        yield from real(engine, function, tasks, **kwargs)
        # between the worker's write and the assembly
        _zero_a_row(*(Path(tasks[0]["out"]) / name for name in chunk_names(4)))

    monkeypatch.setattr(extract, "run_tasks", run_tasks)
    with pytest.raises(ExtractionError, match="00004.npy: changed after it was written"):
        run_extraction(npz_dataset, SPEC, out, chunk_size=30, n_jobs=1, progress=False)
    assert not (out / "features.npy").exists() and not (out / "manifest.json").exists()
    monkeypatch.undo()
    manifest = run_extraction(npz_dataset, SPEC, out, chunk_size=30, n_jobs=1, progress=False)
    assert manifest["resumed_chunks"] == 7 and _bytes(out) == clean_run


def test_a_finished_job_that_changed_on_disk_fails_verification(npz_dataset, tmp_path):
    out = tmp_path / "out"
    run_extraction(npz_dataset, "hog:pixels_per_cell=7", out, progress=False)
    load_features(out, verify=True)
    _zero_a_row(out / "features.npy", None)
    load_features(out)  # without verify: opened as it is
    with pytest.raises(ExtractionError, match="features.npy: its sha256 differs"):
        load_features(out, verify=True)


def test_chunks_of_another_extractor_are_not_reused(npz_dataset, tmp_path, monkeypatch, clean_run):
    out = tmp_path / "out"
    _stop_after(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(npz_dataset, SPEC, out, chunk_size=30, n_jobs=1, progress=False)
    monkeypatch.undo()
    manifest = json.loads((out / "extractor" / "manifest.json").read_text())
    manifest["created"] = "2000-01-01T00:00:00+00:00"  # a different extractor file: its sha256 changes
    (out / "extractor" / "manifest.json").write_text(json.dumps(manifest))
    resumed = run_extraction(npz_dataset, SPEC, out, chunk_size=30, n_jobs=1, progress=False)
    assert resumed["resumed_chunks"] == 0 and _bytes(out) == clean_run


def test_leftovers_of_a_killed_job_are_removed_and_nothing_else(npz_dataset, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _stop_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(npz_dataset, "hog:pixels_per_cell=7", out, chunk_size=50, n_jobs=1, progress=False)
    monkeypatch.undo()
    leftovers = [out / ".features.npy.0123456789ab.tmp", out / "chunks" / ".00003.npy.abcdef012345.tmp",
                 out / "chunks" / ".00001.json.abcdef012345.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a write")
    (out / ".extractor.0123456789ab.tmp").mkdir()
    (out / ".extractor.0123456789ab.tmp" / "arrays.npz").write_bytes(b"x")
    theirs = out / "chunks" / ".notes"
    theirs.write_text("the user's")
    run_extraction(npz_dataset, "hog:pixels_per_cell=7", out, chunk_size=50, n_jobs=1, progress=False)
    assert not any(p.exists() for p in leftovers) and not (out / ".extractor.0123456789ab.tmp").exists()
    assert sorted(p.name for p in out.iterdir()) == ["extractor", "features.npy", "labels.npy", "manifest.json"]


def test_a_failing_chunk_is_recorded_and_retried(npz_dataset, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # the spawned workers import chunk_faults too
    import chunk_faults

    monkeypatch.setattr(extract, "extract_chunk", chunk_faults.fails_on_chunk_two)
    with pytest.raises(ExtractionError, match="1 of 5 chunks failed"):
        run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", chunk_size=50, n_jobs=2,
                       progress=False)
    errors = json.loads((tmp_path / "out" / "errors.json").read_text())
    assert errors["failed_chunks"] == [{"chunk": 2, "items": [100, 149], "error": "ValueError: simulated bad chunk"}]
    assert len(list((tmp_path / "out" / "chunks").glob("*.npy"))) == 4
    monkeypatch.setattr(extract, "extract_chunk", chunk_faults.extract_chunk)
    manifest = run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", chunk_size=50, n_jobs=1,
                              progress=False)
    assert manifest["resumed_chunks"] == 4 and not (tmp_path / "out" / "errors.json").exists()


def test_unreadable_images_are_nan_rows_recorded_in_the_manifest(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / label / f"{i:02d}.png")
    (folder / "dog" / "05.png").write_bytes(b"not a png")
    manifest = run_extraction(folder, "hog:pixels_per_cell=4", tmp_path / "out", chunk_size=5, n_jobs=1,
                              progress=False)
    features, labels, _ = load_features(tmp_path / "out")
    assert [f["row"] for f in manifest["failed_items"]] == [17]
    assert manifest["failed_items"][0]["item"].endswith("dog/05.png") and manifest["failed_items"][0]["error"]
    assert np.isnan(features[17]).all() and not np.isnan(np.delete(features, 17, axis=0)).any()
    assert labels[17] == 1 and len(labels) == 24
    data = open_dataset(folder)
    good = data.read(0, 24)
    expected = build_extractor("hog:pixels_per_cell=4").fit(good.images).transform(good.images)
    np.testing.assert_array_equal(np.delete(features, 17, axis=0), np.delete(expected, 17, axis=0))


def test_a_different_job_in_the_folder_is_refused_unless_overwrite(npz_dataset, tmp_path):
    run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", progress=False)
    again = run_extraction(npz_dataset, "hog:pixels_per_cell=7", tmp_path / "out", progress=False)
    assert again["resumed_chunks"] == 0  # the finished job is returned as it is
    with pytest.raises(ExtractionError, match="holds a different extraction job"):
        run_extraction(npz_dataset, "hog:pixels_per_cell=4", tmp_path / "out", progress=False)
    manifest = run_extraction(npz_dataset, "hog:pixels_per_cell=4", tmp_path / "out", progress=False, overwrite=True)
    assert manifest["features"][0]["params"]["pixels_per_cell"] == [4, 4]
    before = _bytes(tmp_path / "out")
    with pytest.raises(ValueError, match="images must be at least"):  # fails to fit: the old job stays whole
        run_extraction(npz_dataset, "hog:pixels_per_cell=20", tmp_path / "out", progress=False, overwrite=True)
    assert _bytes(tmp_path / "out") == before and load_features(tmp_path / "out", verify=True)[2] == manifest


def test_a_folder_of_other_files_is_not_an_output_folder(npz_dataset, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.tex").write_text("mine")
    with pytest.raises(ExtractionError, match="holds other files"):
        run_extraction(npz_dataset, "hog", tmp_path / "out", progress=False, overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExtractionError, match="is not a folder"):
        run_extraction(npz_dataset, "hog", tmp_path / "file", progress=False)
    assert (tmp_path / "out" / "thesis.tex").read_text() == "mine"


@pytest.mark.parametrize("kwargs, match", [({"engine": "spark"}, "engine must be one of"),
                                           ({"chunk_size": 0}, "chunk_size must be a positive integer"),
                                           ({"fit_samples": 2.5}, "fit_samples must be a positive integer")])
def test_bad_job_arguments(npz_dataset, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_extraction(npz_dataset, "hog", tmp_path / "out", progress=False, **kwargs)


@pytest.mark.timeout(120)
def test_a_folder_with_a_fifo_and_a_symlinked_folder_extracts_and_records_them(tmp_path):
    import os

    rng = np.random.default_rng(0)
    root, elsewhere = tmp_path / "imgs", tmp_path / "elsewhere"
    for folder in (root / "cat", root / "dog", elsewhere):
        folder.mkdir(parents=True)
    for i in range(4):
        for folder in (root / "cat", root / "dog", elsewhere):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(folder / f"{i}.png")
    os.mkfifo(root / "cat" / "pipe.png")  # opening it for reading would block forever
    (root / "dog" / "more").symlink_to(elsewhere, target_is_directory=True)
    manifest = run_extraction(root, "hog:pixels_per_cell=4", tmp_path / "out", chunk_size=3, n_jobs=1,
                              progress=False)
    skipped = manifest["dataset"]["skipped"]
    assert [Path(item).name for item, _ in skipped] == ["pipe.png"] and "FIFO" in skipped[0][1]
    assert manifest["dataset"]["n_images"] == 12  # 4 cats, 4 dogs and the 4 behind the symlink, as dogs
    features, labels, _ = load_features(tmp_path / "out")
    assert labels.tolist() == [0] * 4 + [1] * 8 and not np.isnan(features).any()
