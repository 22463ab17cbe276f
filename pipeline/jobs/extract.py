"""The batch feature-extraction job: chunks in parallel on joblib or Dask, resumable.

Layout of an output folder while the job runs and once it is done::

    OUT/job.json          what this job is (its key); written first
    OUT/chunks/00012.npy  one finished chunk each (atomic), removed at the end
    OUT/features.npy      float32 (n_images, n_features), memory-mappable
    OUT/labels.npy        int64 (n_images,)
    OUT/manifest.json     written last: its presence means the job is complete

A killed job, started again with the same arguments, keeps the chunks it finished and
computes only the rest; the bytes of ``features.npy`` and ``labels.npy`` are the same as
an uninterrupted run's, on either engine.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.base import clone
from tqdm.auto import tqdm

from pipeline._io import atomic_path, read_json, save_npy_atomic, write_json
from pipeline.data import Dataset, load_dataset
from pipeline.jobs.engines import ENGINES, run_chunks
from pipeline.model.spec import build_extractor, describe_extractor
from pipeline.version import package_version

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


class ExtractionError(RuntimeError):
    """A job that could not finish; the message lists what failed and how to go on."""


def _learns(extractor):
    """Whether ``fit`` learns from images (every extractor, FeatureStack too, says so itself)."""
    return bool(getattr(extractor, "learns_from_data", False))


def _job_key(dataset, fit_fingerprint, description, chunk_size):
    blob = json.dumps(
        {
            "dataset": dataset.fingerprint(),
            "fitted_on": fit_fingerprint,
            "features": description,
            "chunk_size": chunk_size,
            "format": FORMAT_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _as_dataset(dataset, split):
    return dataset if isinstance(dataset, Dataset) else load_dataset(dataset, split=split)


def _fit(extractor, dataset, fit_dataset):
    """Fit on the training split for extractors that learn, else on the data itself."""
    extractor = clone(extractor)
    learns = _learns(extractor)
    source = fit_dataset if learns else dataset
    extractor.fit(source.images, source.labels)
    return extractor, (source.split, source.fingerprint()) if learns else None


def _check_out_dir(out, key, overwrite):
    """Return the manifest of a finished identical job, else prepare ``out`` for this one."""
    manifest, job = read_json(out / "manifest.json"), read_json(out / "job.json")
    previous = (manifest or {}).get("job_key") or (job or {}).get("job_key")
    if previous is not None and previous != key:
        if not overwrite:
            raise ExtractionError(
                f"{out} holds a different extraction job (key {previous[:12]}, this one "
                f"{key[:12]}); choose another --out or pass --overwrite to replace it"
            )
        logger.warning("replacing the different job in %s", out)
        for name in ("manifest.json", "features.npy", "labels.npy", "job.json"):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "chunks", ignore_errors=True)
        manifest = None
    if manifest is not None:
        return manifest
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    return None


def _chunk_path(out, index):
    return out / "chunks" / f"{index:05d}.npy"


def _done_chunks(out, bounds, n_features):
    """Indices of chunk files already on disk with the right shape and dtype."""
    done = set()
    for index, (start, stop) in enumerate(bounds):
        path = _chunk_path(out, index)
        if not path.is_file():
            continue
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            if arr.shape == (stop - start, n_features) and arr.dtype == np.float32:
                done.add(index)
                continue
        except (ValueError, OSError) as exc:
            logger.warning("chunk file %s is unreadable (%s); computing it again", path, exc)
        path.unlink(missing_ok=True)
    return done


def _assemble(out, bounds, n_rows, n_features):
    """Stream the chunk files into features.npy (atomic)."""
    with atomic_path(out / "features.npy") as tmp:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_rows, n_features))
        for index, (start, stop) in enumerate(bounds):
            mm[start:stop] = np.load(_chunk_path(out, index), allow_pickle=False)
        mm.flush()
        del mm


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
    progress=True,
    overwrite=False,
):
    """Extract features of one dataset split into ``out_dir``.

    Parameters
    ----------
    dataset : str, path or Dataset
        A dataset name or path for ``load_dataset``, or a loaded ``Dataset``.
    features : str, path, list, dict or transformer
        A feature spec (see ``pipeline.model.spec``) or an unfitted extractor.
    out_dir : path
    split : str, default="train"
        The split to extract (ignored when ``dataset`` is a ``Dataset``).
    fit_split : str, default="train"
        The split extractors that learn (BoVW) are fitted on.
    engine : {"local", "dask"}
    scheduler : str, optional
        Dask scheduler address (``tcp://HOST:8786``); with ``engine="dask"`` and no
        address, a local Dask cluster is started for the job.
    n_jobs : int, default=-1
        Local processes (joblib), or workers of the local Dask cluster.
    chunk_size : int, default=1000
        Images per task.
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
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    t0 = time.perf_counter()
    data = _as_dataset(dataset, split)
    extractor = features if hasattr(features, "transform") else build_extractor(features)
    fit_data = data
    if _learns(extractor) and not isinstance(dataset, Dataset) and data.split != fit_split:
        fit_data = load_dataset(dataset, split=fit_split)
    extractor, fitted_on = _fit(extractor, data, fit_data)
    fit_s = time.perf_counter() - t0
    description = describe_extractor(extractor)
    key = _job_key(data, fitted_on, description, chunk_size)
    out = Path(out_dir)
    finished = _check_out_dir(out, key, overwrite)
    if finished is not None:
        logger.info("%s already holds this finished job; nothing to do", out)
        return finished
    write_json(out / "job.json", {"job_key": key, "features": description, "chunk_size": chunk_size})

    n = len(data)
    n_features = int(extractor.n_features_out_)
    bounds = [(s, min(n, s + chunk_size)) for s in range(0, n, chunk_size)]
    done = _done_chunks(out, bounds, n_features)
    todo = [i for i in range(len(bounds)) if i not in done]
    if done:
        logger.info("resuming: %d of %d chunks already done", len(done), len(bounds))
    t1 = time.perf_counter()
    failures = []
    bar = tqdm(total=n, initial=sum(b - a for i, (a, b) in enumerate(bounds) if i in done),
               unit="img", desc="extract", disable=not progress)
    with bar:
        for index, result, error in run_chunks(
            engine, extractor, data.images, bounds, todo, n_jobs=n_jobs, scheduler=scheduler
        ):
            start, stop = bounds[index]
            if error is not None:
                failures.append({"chunk": index, "items": [start, stop - 1], "error": error})
                logger.error("chunk %d (items %d..%d) failed: %s", index, start, stop - 1, error)
            else:
                save_npy_atomic(_chunk_path(out, index), result)
            bar.update(stop - start)
    transform_s = time.perf_counter() - t1
    computed = sum(bounds[i][1] - bounds[i][0] for i in todo)
    if failures:
        write_json(out / "errors.json", {"job_key": key, "failed_chunks": failures})
        raise ExtractionError(
            f"{len(failures)} of {len(bounds)} chunks failed (listed in {out / 'errors.json'}); "
            f"the {len(bounds) - len(failures)} finished chunks are kept, run the same command "
            f"again to retry the rest. First error: {failures[0]['error']}"
        )
    (out / "errors.json").unlink(missing_ok=True)
    _assemble(out, bounds, n, n_features)
    save_npy_atomic(out / "labels.npy", data.labels.astype(np.int64))
    total_s = time.perf_counter() - t0
    manifest = {
        "format_version": FORMAT_VERSION,
        "job_key": key,
        "dataset": {
            "name": data.name,
            "split": data.split,
            "source": str(data.source),
            "fingerprint": data.fingerprint(),
            "n_images": n,
            "image_shape": list(data.images.shape[1:]),
            "class_names": list(data.class_names),
            "skipped": [list(item) for item in data.skipped],
        },
        "fitted_on": None if fitted_on is None else {"split": fitted_on[0], "fingerprint": fitted_on[1]},
        "features": description,
        "n_features": n_features,
        "files": {
            "features": {"name": "features.npy", "dtype": "float32", "shape": [n, n_features]},
            "labels": {"name": "labels.npy", "dtype": "int64", "shape": [n]},
        },
        "engine": engine,
        "chunk_size": chunk_size,
        "n_chunks": len(bounds),
        "resumed_chunks": len(done),
        "timings": {
            "fit_s": round(fit_s, 3),
            "transform_s": round(transform_s, 3),
            "total_s": round(total_s, 3),
            "images_per_s": round(computed / transform_s, 1) if computed else None,
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cvpipe_version": package_version(),
    }
    write_json(out / "manifest.json", manifest)
    shutil.rmtree(out / "chunks", ignore_errors=True)
    (out / "job.json").unlink(missing_ok=True)
    logger.info("wrote %s: %d x %d features in %.1f s", out, n, n_features, total_s)
    return manifest


def load_features(out_dir, mmap=True):
    """Read a finished job: ``(features, labels, manifest)``; features memory-mapped."""
    out = Path(out_dir)
    manifest = read_json(out / "manifest.json")
    if manifest is None:
        raise FileNotFoundError(f"{out} has no manifest.json: the job is not finished (or not a job folder)")
    features = np.load(out / "features.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    labels = np.load(out / "labels.npy", allow_pickle=False)
    return features, labels, manifest
