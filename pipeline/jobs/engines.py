"""Where chunks of a batch job run: local processes (joblib) or a Dask cluster.

Both engines call the same ``transform_chunk`` on the same fitted extractor and the
same slices of images, so they produce the same bytes. A chunk that raises is
reported (index, None, message) and the job goes on with the others.
"""
from __future__ import annotations

import logging
import os
import traceback

import numpy as np
from joblib import Parallel, delayed

logger = logging.getLogger(__name__)

ENGINES = ("local", "dask")


def transform_chunk(extractor, index, images):
    """Run one chunk: ``(index, float32 features, None)`` or ``(index, None, error)``."""
    try:
        return index, np.ascontiguousarray(extractor.transform(images), dtype=np.float32), None
    except Exception as exc:  # recorded by the job, never fatal for the other chunks
        logger.debug("chunk %d failed:\n%s", index, traceback.format_exc())
        return index, None, f"{type(exc).__name__}: {exc}"


def _n_local_workers(n_jobs):
    cpus = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, cpus + 1 + n_jobs) if n_jobs < 0 else int(n_jobs)


def _run_local(extractor, images, bounds, todo, n_jobs):
    parallel = Parallel(n_jobs=_n_local_workers(n_jobs), return_as="generator_unordered")
    yield from parallel(delayed(transform_chunk)(extractor, i, images[slice(*bounds[i])]) for i in todo)


def _run_dask(extractor, images, bounds, todo, n_jobs, scheduler):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("engine='dask' needs the 'dist' extra: pip install 'cvpipe[dist]'") from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=_n_local_workers(n_jobs), threads_per_worker=1,
                               processes=True, dashboard_address=None)
        scheduler = cluster.scheduler_address
        logger.info("started a local Dask cluster at %s", scheduler)
    client = Client(scheduler)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        window = 4 * n_workers  # chunks in flight: bounds driver and scheduler memory
        remote_extractor = client.scatter(extractor, broadcast=True)
        pending = iter(todo)
        ac = as_completed()
        for i in pending:
            ac.add(client.submit(transform_chunk, remote_extractor, i, images[slice(*bounds[i])], pure=False))
            if ac.count() >= window:
                break
        for future in ac:
            result = future.result()
            future.release()
            nxt = next(pending, None)
            if nxt is not None:
                ac.add(client.submit(transform_chunk, remote_extractor, nxt,
                                     images[slice(*bounds[nxt])], pure=False))
            yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_chunks(engine, extractor, images, bounds, todo, *, n_jobs=-1, scheduler=None):
    """Yield ``(index, features or None, error or None)`` for each chunk in ``todo``.

    Parameters
    ----------
    engine : {"local", "dask"}
    extractor : fitted transformer
    images : ndarray of shape (n_images, height, width[, channels])
    bounds : list of (start, stop)
        Row range of each chunk.
    todo : list of int
        Chunk indices to run, in any order; results come back as they finish.
    n_jobs : int
        Local processes, or workers of a local Dask cluster when ``scheduler`` is None.
    scheduler : str, optional
        Address of a running Dask scheduler.
    """
    if not todo:
        return
    if engine == "local":
        yield from _run_local(extractor, images, bounds, todo, n_jobs)
    elif engine == "dask":
        yield from _run_dask(extractor, images, bounds, todo, n_jobs, scheduler)
    else:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
