"""The batch feature-extraction job: tasks that read and write their own chunks, checked.

The coordinator opens the dataset as a lazy source (it never holds the images), fits the
extractor (extractors that learn, BoVW, on a bounded, seeded sample of the fit split,
read through the same chunked path), saves it as a safe artifact in the output folder,
and plans the chunks. Each task is a description: rows, the dataset's description of
them, the extractor's folder and sha256, the output folder; a worker (a local process
or a Dask worker on any host that shares the filesystem) reads its rows where the data
lives and writes its chunk itself (:mod:`pipeline.jobs.chunk`). The coordinator keeps
the small records that come back, then streams the chunks, each checked against the
sha256 recorded when it was written, into one array.

The output location is a local or shared folder or an fsspec URL (``s3://bucket/prefix``):
both are a :mod:`pipeline.jobs.store`, where every file is written whole or not at all.

Layout of an output folder while the job runs and once it is done::

    OUT/job.json            what this job is (its key, the dataset, the extractor); written first
    OUT/extractor/          the fitted extractor (manifest.json + arrays.npz), kept: it is what
                            turns new images into these features (``cvpipe train --from-features``)
    OUT/chunks/00012.npy    one finished chunk each (atomic), and
    OUT/chunks/00012.json   its record: rows, shape, sha256, failed items; removed at the end
    OUT/features.npy        float32 (n_images, n_features), memory-mappable; a row whose image
                            could not be read is NaN
    OUT/labels.npy          int64 (n_images,)
    OUT/manifest.json       written last: its presence means the job is complete

A killed job, started again with the same arguments, keeps the chunks whose bytes still
match their recorded sha256 and computes the rest (a chunk changed, truncated or
swapped on disk is computed again, and says so in the log); the bytes of
``features.npy`` and ``labels.npy`` are the same as an uninterrupted run's, on either
engine and on any cluster.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from datetime import datetime, timezone

import numpy as np
from sklearn.base import clone
from tqdm.auto import tqdm

from pipeline.data import Dataset, open_dataset
from pipeline.jobs.chunk import chunk_names, extract_chunk, npy_header, read_chunk
from pipeline.jobs.engines import ENGINES, run_tasks
from pipeline.jobs.store import LocalStore, is_url, open_store, read_json, write_bytes, write_json
from pipeline.model import ArtifactError, load_extractor, save_extractor
from pipeline.model.codec import CLASS_NAMES
from pipeline.model.spec import build_extractor, describe_extractor
from pipeline.version import package_version

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
#: Images an extractor that learns is fitted on, at most (a seeded sample of the fit split).
FIT_SAMPLES = 10_000


class ExtractionError(RuntimeError):
    """A job that could not finish; the message lists what failed and how to go on."""


class OutputFolderError(ExtractionError, ValueError):
    """An ``--out`` that holds something other than this job (a file, other files, another
    job, a damaged job file): refused before any work, a usage mistake rather than a failed job."""


def _learns(extractor):
    """Whether ``fit`` learns from images (every extractor, FeatureStack too, says so itself)."""
    return bool(getattr(extractor, "learns_from_data", False))


def _check_saveable(extractor):
    """The job's workers load the extractor as a safe artifact: only allow-listed classes."""
    steps = [s for _, s in extractor.transformer_list] if hasattr(extractor, "transformer_list") else []
    for est in [extractor, *steps]:
        if not isinstance(est, str) and type(est) not in CLASS_NAMES:
            raise ExtractionError(f"a batch job's workers load the extractor as a safe artifact (no pickle): "
                                  f"expected cvpipe's extractors, got {type(est).__module__}.{type(est).__name__}")


def _fit_plan(extractor, fit_data, fit_samples, seed):
    """Which rows of the fit split an extractor that learns is fitted on (None for one that
    does not learn): a bounded sample drawn with ``seed``, and a description of it."""
    if not _learns(extractor):
        return None, None
    n = len(fit_data)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, fit_samples), replace=False))
    return rows, {"split": fit_data.split, "fingerprint": fit_data.fingerprint(), "sample": int(len(rows)),
                  "seed": seed, "rows_sha256": hashlib.sha256(rows.astype("<i8").tobytes()).hexdigest()}


def _fit(extractor, data, fit_data, rows):
    """Fit a clone of ``extractor`` on ``rows`` of ``fit_data`` read through the chunked path, or,
    for an extractor that does not learn (``rows`` None), on a few rows of ``data`` (fitting then
    only records the image shape). Returns the extractor and the number of sampled images that
    could not be read."""
    extractor = clone(extractor)
    if rows is None:
        extractor.fit(data.read(0, min(len(data), 8)).images)
        return extractor, 0
    sample = fit_data.subset(rows)
    if not len(sample):
        raise ExtractionError(f"none of the {len(rows)} sampled images of {fit_data.source} could be read to "
                              f"fit the extractor; skipped: {list(sample.skipped)[:3]}")
    extractor.fit(sample.images, sample.labels)
    return extractor, len(sample.skipped) - len(fit_data.skipped)


def _saved_extractor(out, key):
    """The extractor a previous run of this same job saved, and its sha256, or None.

    A resumed job uses it rather than fitting again: a refit on a machine with other BLAS
    kernels could differ in its last bits, and the finished chunks were computed with this one.
    """
    job = read_json(out, "job.json")
    if not job or job.get("job_key") != key or not out.names("extractor"):
        return None
    try:
        with out.local_folder("extractor") as folder:
            extractor, sha = load_extractor(folder)
    except ArtifactError as exc:
        logger.warning("the saved extractor of the interrupted job is unreadable (%s); fitting it again", exc)
        return None
    if sha != job.get("extractor_sha256"):
        logger.warning("the saved extractor is not the one the interrupted job recorded; fitting it again")
        return None
    return extractor, sha, job.get("fit_unreadable", 0)


def _job_key(data, fit_plan, description, chunk_size):
    blob = json.dumps({"dataset": data.fingerprint(), "image_shape": list(data.image_shape), "fitted_on": fit_plan,
                       "features": description, "chunk_size": chunk_size, "format": FORMAT_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


#: What a job writes in its folder (and its chunks folder, by pattern).
_OUTPUTS = ("manifest.json", "features.npy", "labels.npy", "job.json", "errors.json", "extractor")
#: The temporary sibling of one of them (``pipeline._io.sibling_path``) left by a write cut short.
_NAMES = "|".join(map(re.escape, _OUTPUTS))
_LEFTOVER = re.compile(rf"^\.({_NAMES}|\d{{5}}\.(npy|json))\.[0-9a-f]{{12}}\.(tmp|old)$")


def _remove_leftovers(store, folder=""):
    """Remove what a killed job's writes left in ``folder`` of ``store``: only its own temporary siblings."""
    for name in store.names(folder):
        if _LEFTOVER.match(name):
            path = f"{folder}/{name}" if folder else name
            logger.info("removing %s, left by an interrupted write", store.where(path))
            store.remove(path)


def _check_out_dir(out, key, overwrite):
    """What ``out`` holds for this job: ``(manifest, replace)``, the manifest of a finished
    identical job (else None) and whether a different job there is to be replaced (once
    this one's extractor is fitted: a job that fails before that leaves the old one whole)."""
    if out.exists() and not out.is_folder():
        raise OutputFolderError(f"--out {out} exists and is not a folder")
    manifest, job = _job_file(out, "manifest.json"), _job_file(out, "job.json")
    damaged = [f["unreadable"] for f in (manifest, job) if f and "unreadable" in f]
    if damaged:
        if not overwrite:
            raise OutputFolderError(f"{damaged[0]}: the job there cannot be checked; pass --overwrite to replace "
                                  "it, or choose another --out")
        return None, True
    previous = (manifest or {}).get("job_key") or (job or {}).get("job_key")
    if previous is None and any(name not in _OUTPUTS + ("chunks",) for name in out.names()
                                if not _LEFTOVER.match(name)):
        raise OutputFolderError(f"{out} is a folder that holds other files, not an extraction job's; choose an "
                              "empty or new folder for --out")
    if previous is not None and previous != key:
        if not overwrite:
            raise OutputFolderError(
                f"{out} holds a different extraction job (key {previous[:12]}, this one "
                f"{key[:12]}); choose another --out or pass --overwrite to replace it"
            )
        return None, True
    return manifest, False


def _job_file(out, name):
    """The JSON object in ``name`` of ``out``, None where there is none, or
    ``{"unreadable": why}`` where it cannot be read (cut short, not JSON, not an object)."""
    try:
        value = read_json(out, name)
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got {type(value).__name__}")
        return value
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError too
        return {"unreadable": f"{out.where(name)} is unreadable ({exc})"}


def _prepare_out_dir(out, replace):
    """Make ``out`` ready for the chunks: the different job it held removed (``replace``),
    what interrupted writes left behind removed."""
    if replace:
        logger.warning("replacing the different job in %s", out)
        for name in _OUTPUTS + ("chunks",):
            out.remove(name)
    out.make_folder("chunks")
    _remove_leftovers(out)
    _remove_leftovers(out, "chunks")


def _verified_chunk(chunks, index, rows, n_features, extractor_sha):
    """The record of chunk ``index`` if its files are there, its bytes match it and it was
    computed with this extractor, else None (the files removed: the chunk is computed again)."""
    array_name, record_name = chunk_names(index)
    record = None
    try:
        record = read_json(chunks, record_name)
        if record is not None and not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    except (ValueError, OSError) as exc:
        logger.warning("chunk %d: its record is unreadable (%s); computing it again", index, exc)
        record = {}
    if record is not None and chunks.has(array_name):
        expected = {"rows": list(rows), "shape": [rows[1] - rows[0], n_features], "extractor_sha256": extractor_sha}
        if {k: record.get(k) for k in expected} == expected and \
                read_chunk(chunks, array_name, record.get("sha256"), expected["shape"])[0] is not None:
            return record
        logger.warning("chunk %d (rows %d..%d) does not match its record (sha256, rows, shape or "
                       "extractor); computing it again", index, rows[0], rows[1] - 1)
    elif chunks.has(array_name):
        logger.warning("chunk %d (rows %d..%d) has no record of its bytes (written when the job stopped?); "
                       "computing it again", index, rows[0], rows[1] - 1)
    chunks.remove(array_name)
    chunks.remove(record_name)
    return None


def _assemble(out, chunks, records, n_rows, n_features):
    """Stream the chunks into features.npy (whole or not at all), checking each against its
    sha256 on the way; return the sha256 of the bytes written.

    Written with plain sequential writes, a chunk at a time, not through a memory map: the
    coordinator's memory stays the size of one chunk, whatever the size of the output.
    """
    header = npy_header((n_rows, n_features))
    digest = hashlib.sha256(header)
    with out.writer("features.npy") as fh:
        fh.write(header)
        for record in records:
            array_name, _ = chunk_names(record["index"])
            start, stop = record["rows"]
            data, wrong = read_chunk(chunks, array_name, record["sha256"], (stop - start, n_features))
            if wrong:
                raise ExtractionError(f"{chunks.where(array_name)}: changed after it was written ({wrong}); run "
                                      "the same command again to compute it anew")
            fh.write(data)
            digest.update(data)
    return digest.hexdigest()


def _save_extractor(extractor, out):
    """Save the fitted extractor as the folder ``extractor`` of ``out``; its sha256."""
    try:
        with out.staging_folder("extractor") as folder:
            sha256 = save_extractor(extractor, folder)
            out.put_folder(folder, "extractor")
    except ArtifactError as exc:
        raise ExtractionError(f"cannot save the extractor for the workers: {exc}") from exc
    return sha256


def _workers(records):
    """What each worker process did: its host and pid, chunks, images, the seconds spent on
    them, its peak memory, and when (Unix time on its host) its first chunk started and its
    last one finished."""
    workers = {}
    for r in records:
        key = (r.get("host"), r.get("pid"))
        w = workers.setdefault(key, {"host": key[0], "pid": key[1], "chunks": 0, "images": 0, "seconds": 0.0,
                                     "max_rss_mb": 0.0, "started": r.get("started"), "finished": r.get("finished")})
        w["chunks"] += 1
        w["images"] += r["rows"][1] - r["rows"][0]
        w["seconds"] = round(w["seconds"] + r.get("seconds", 0.0), 3)
        w["max_rss_mb"] = max(w["max_rss_mb"], round(r.get("max_rss_bytes", 0) / 2**20, 1))
        w["started"] = min(filter(None, (w["started"], r.get("started"))), default=None)
        w["finished"] = max(filter(None, (w["finished"], r.get("finished"))), default=None)
    return sorted(workers.values(), key=lambda w: (str(w["host"]), w["pid"] or 0))


def run_extraction(
    dataset,
    features,
    out_dir,
    *,
    split="train",
    fit_split="train",
    engine="local",
    scheduler=None,
    n_jobs=-1,
    chunk_size=1000,
    fit_samples=FIT_SAMPLES,
    seed=0,
    size=None,
    mode=None,
    progress=True,
    overwrite=False,
):
    """Extract features of one dataset split into ``out_dir``.

    Parameters
    ----------
    dataset : str, path or Dataset
        A dataset name or path for :func:`pipeline.data.open_dataset`, or a ``Dataset``.
    features : str, path, list, dict or transformer
        A feature spec (see ``pipeline.model.spec``) or an unfitted cvpipe extractor.
    out_dir : path or str
        A local or shared folder (with a Dask cluster, every worker must see it at the
        same path), or an fsspec URL (``s3://bucket/prefix``; the workers need its
        credentials) where the workers write their chunks and the job its output.
    split : str, default="train"
        The split to extract (ignored when ``dataset`` is a ``Dataset``).
    fit_split : str, default="train"
        The split extractors that learn (BoVW) are fitted on.
    engine : {"local", "dask"}
    scheduler : str, optional
        Dask scheduler address (``tcp://HOST:8786``); with ``engine="dask"`` and no
        address, a local Dask cluster is started for the job.
    n_jobs : int, default=-1
        Local processes, or workers of the local Dask cluster.
    chunk_size : int, default=1000
        Images per task.
    fit_samples : int, default=10000
        Images an extractor that learns is fitted on, drawn from the fit split with ``seed``.
    seed : int
    size, mode
        Image files only: the size and color mode (see :func:`pipeline.data.open_dataset`).
    progress : bool
        Show a progress bar.
    overwrite : bool
        Replace a different job found in ``out_dir``.

    Returns
    -------
    dict
        The manifest that was written (or found, for a job already complete).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    for name, value in (("chunk_size", chunk_size), ("fit_samples", fit_samples)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    t0 = time.perf_counter()
    given = isinstance(dataset, Dataset)
    data = dataset if given else open_dataset(dataset, split, size=size, mode=mode)
    extractor = features if hasattr(features, "transform") else build_extractor(features)
    _check_saveable(extractor)
    fit_data = data
    if _learns(extractor) and not given and data.split != fit_split:
        fixed = {"size": data.size, "mode": data.mode} if hasattr(data, "mode") else {}
        fit_data = open_dataset(dataset, fit_split, **fixed)
    rows, fit_plan = _fit_plan(extractor, fit_data, fit_samples, seed)
    description = describe_extractor(extractor)
    key = _job_key(data, fit_plan, description, chunk_size)
    out = open_store(out_dir)
    chunks = open_store(out.where("chunks"))
    finished, replace = _check_out_dir(out, key, overwrite)
    if finished is not None:
        logger.info("%s already holds this finished job; nothing to do", out)
        return finished
    saved = None if replace else _saved_extractor(out, key)
    if saved is not None:
        extractor, extractor_sha, unreadable = saved
        logger.info("resuming with the extractor the interrupted job saved")
        _prepare_out_dir(out, replace)
    else:
        extractor, unreadable = _fit(extractor, data, fit_data, rows)
        _prepare_out_dir(out, replace)
        extractor_sha = _save_extractor(extractor, out)
    fitted_on = None if fit_plan is None else fit_plan | {"unreadable": unreadable}
    fit_s = time.perf_counter() - t0
    n, n_features = len(data), int(extractor.n_features_out_)
    bounds = [(s, min(n, s + chunk_size)) for s in range(0, n, chunk_size)]
    write_json(out, "job.json", {"job_key": key, "dataset": data.describe(), "features": description,
                                  "extractor_sha256": extractor_sha, "fit_unreadable": unreadable,
                                  "chunk_size": chunk_size, "n_rows": n, "n_features": n_features})

    records = {}
    for index, rows in enumerate(bounds):
        record = _verified_chunk(chunks, index, rows, n_features, extractor_sha)
        if record is not None:
            records[index] = record
    todo = [i for i in range(len(bounds)) if i not in records]
    if records:
        logger.info("resuming: %d of %d chunks already done and verified", len(records), len(bounds))
    tasks = ({"index": i, "rows": list(bounds[i]), "data": data.task(*bounds[i]), "extractor": out.where("extractor"),
              "extractor_sha256": extractor_sha, "out": chunks.location} for i in todo)
    t1 = time.perf_counter()
    failures = []
    bar = tqdm(total=n, initial=sum(b - a for i, (a, b) in enumerate(bounds) if i in records),
               unit="img", desc="extract", disable=not progress)
    with bar:
        for result in run_tasks(engine, extract_chunk, tasks, n_jobs=n_jobs, scheduler=scheduler):
            start, stop = bounds[result["index"]]
            if "error" in result:
                failures.append({"chunk": result["index"], "items": [start, stop - 1], "error": result["error"]})
                logger.error("chunk %d (items %d..%d) failed: %s", result["index"], start, stop - 1, result["error"])
            else:
                records[result["index"]] = result
            bar.update(stop - start)
    transform_s = time.perf_counter() - t1
    computed = sum(bounds[i][1] - bounds[i][0] for i in todo)
    if failures:
        write_json(out, "errors.json", {"job_key": key, "failed_chunks": failures})
        raise ExtractionError(
            f"{len(failures)} of {len(bounds)} chunks failed (listed in {out.where('errors.json')}); "
            f"the {len(bounds) - len(failures)} finished chunks are kept, run the same command "
            f"again to retry the rest. First error: {failures[0]['error']}"
        )
    out.remove("errors.json")
    ordered = [records[i] for i in range(len(bounds))]
    features_sha = _assemble(out, chunks, ordered, n, n_features)
    labels_bytes = _npy_bytes(np.asarray(data.labels, dtype=np.int64))
    write_bytes(out, "labels.npy", labels_bytes)
    failed_items = [{"row": row, "item": item, "error": reason} for r in ordered for row, item, reason in r["failed"]]
    total_s = time.perf_counter() - t0
    manifest = {
        "format_version": FORMAT_VERSION,
        "job_key": key,
        "dataset": data.describe(),
        "fitted_on": fitted_on,
        "features": description,
        "extractor": {"folder": "extractor", "sha256": extractor_sha},
        "n_features": n_features,
        "files": {
            "features": {"name": "features.npy", "dtype": "float32", "shape": [n, n_features],
                         "sha256": features_sha},
            "labels": {"name": "labels.npy", "dtype": "int64", "shape": [n],
                       "sha256": hashlib.sha256(labels_bytes).hexdigest()},
        },
        "chunks": [{"rows": r["rows"], "sha256": r["sha256"]} for r in ordered],
        "workers": _workers(ordered),
        "failed_items": failed_items,
        "engine": engine,
        "chunk_size": chunk_size,
        "n_chunks": len(bounds),
        "resumed_chunks": len(bounds) - len(todo),
        "timings": {
            "fit_s": round(fit_s, 3),
            "transform_s": round(transform_s, 3),
            "total_s": round(total_s, 3),
            "images_per_s": round(computed / transform_s, 1) if computed and transform_s > 0 else None,
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cvpipe_version": package_version(),
    }
    write_json(out, "manifest.json", manifest)
    out.remove("chunks")
    out.remove("job.json")
    if failed_items:
        logger.warning("%d images could not be read: their rows are NaN (listed in %s, failed_items)",
                       len(failed_items), out.where("manifest.json"))
    logger.info("wrote %s: %d x %d features in %.1f s", out, n, n_features, total_s)
    return manifest


def load_features(out_dir, mmap=True, verify=False):
    """Read a finished job: ``(features, labels, manifest)``; features memory-mapped.

    With ``verify``, the sha256 of both files is checked against the manifest first
    (a full read of the features). A job written to an fsspec URL is read into memory
    (``mmap=False``); to memory-map it, copy its folder to a local disk first.

    Raises
    ------
    FileNotFoundError
        The folder holds no finished job.
    ExtractionError
        With ``verify``: a file whose bytes changed since the job wrote it. A URL with ``mmap``.
    """
    if mmap and is_url(out_dir):
        raise ExtractionError(f"{out_dir}: features at a URL cannot be memory-mapped; copy the folder to a local "
                              "disk first (fsspec's get, aws s3 cp --recursive, ...) or read it into memory with "
                              "mmap=False")
    out = open_store(out_dir)
    manifest = read_json(out, "manifest.json")
    if manifest is None:
        raise FileNotFoundError(f"{out} has no manifest.json: the job is not finished (or not a job folder)")
    if verify:
        for key in ("features", "labels"):
            info = manifest["files"][key]
            if info.get("sha256") and out.sha256(info["name"]) != info["sha256"]:
                raise ExtractionError(f"{out.where(info['name'])}: its sha256 differs from the manifest's: changed "
                                      "since the job wrote it")
    return _load_npy(out, "features.npy", mmap), _load_npy(out, "labels.npy", False), manifest


def _load_npy(store, name, mmap):
    if isinstance(store, LocalStore):
        return np.load(store.root / name, mmap_mode="r" if mmap else None, allow_pickle=False)
    data = store.read_bytes(name)
    if data is None:
        raise FileNotFoundError(f"{store.where(name)}: no such file")
    return np.load(io.BytesIO(data), allow_pickle=False)


def _npy_bytes(array):
    """The bytes ``np.save`` writes for ``array``."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()
