"""One chunk of a batch extraction, as a worker runs it: read, transform, write, checksum.

A task is a small dict, never an array: the chunk's index and rows, the dataset's
description of those rows (:meth:`pipeline.data.Dataset.task`), the folder of the fitted
extractor and the sha256 of its manifest, and the folder the chunk goes to (each a local
or shared path, or an fsspec URL: :mod:`pipeline.jobs.store`). The worker reads its rows
where the data lives (:func:`pipeline.data.read_task`), loads the extractor from the
job's folder (safe artifacts, no pickle; checked against the sha256 the task carries),
and writes its own output:

- ``NNNNN.npy``: float32 ``(rows, n_features)``, written atomically; a row whose image
  could not be read is NaN;
- ``NNNNN.json``: the chunk's record, written after the array: its rows, shape, the
  sha256 of the ``.npy`` bytes as written, and the items that failed.

What comes back to the coordinator is that record (or the error), a few hundred bytes.
"""
from __future__ import annotations

import ctypes
import hashlib
import io
import logging
import os
import resource
import signal
import sys
import time
import traceback

import numpy as np

from pipeline.data import read_task
from pipeline.jobs.store import open_store, write_json
from pipeline.model import load_extractor

logger = logging.getLogger(__name__)


def chunk_names(index):
    """``(array, record)`` file names of chunk ``index`` in a job's chunks folder."""
    return f"{index:05d}.npy", f"{index:05d}.json"


def npy_header(shape):
    """The header ``np.save`` writes before a C-ordered float32 array of ``shape``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": tuple(int(n) for n in shape)})
    return buf.getvalue()


def write_chunk(store, name, features):
    """Write float32 ``features`` as the ``.npy`` file ``name`` of ``store`` (whole or not at
    all); return the sha256 of the bytes written. The same bytes as ``np.save``, hashed and
    written without a copy."""
    header, data = npy_header(features.shape), memoryview(np.ascontiguousarray(features, np.float32)).cast("B")
    digest = hashlib.sha256(header)
    digest.update(data)
    # Not synced to disk (durable=False): a chunk is checked against its sha256 before it is
    # used, so one a crash left empty or partial is computed again; an fsync per chunk cost
    # about a fifth of a HOG worker's time (BENCHMARKS.md, "Batch extraction at scale").
    with store.writer(name, durable=False) as fh:
        fh.write(header)
        fh.write(data)
    return digest.hexdigest()


def read_chunk(store, name, sha256, shape):
    """The data bytes (after the header) of the chunk ``name`` of ``store``, or a reason why
    they are not the ones recorded: ``(data, None)`` or ``(None, reason)``."""
    raw = store.read_bytes(name)
    if raw is None:
        return None, "it is missing"
    if hashlib.sha256(raw).hexdigest() != sha256:
        return None, "its sha256 differs from its record"
    header = npy_header(shape)
    if raw[:len(header)] != header or len(raw) != len(header) + 4 * int(np.prod(shape)):
        return None, f"it is not a float32 array of shape {tuple(shape)}"
    return memoryview(raw)[len(header):], None


_EXTRACTORS = {}  # per process: the extractor a job's chunks use, by its folder and sha256


def _extractor(location, sha256):
    key = (location, sha256)
    if key not in _EXTRACTORS:
        with open_store(location).local_folder("") as folder:  # a URL's files are copied here first
            extractor, found = load_extractor(folder)
        if found != sha256:
            raise RuntimeError(f"{location}: the extractor changed since the job started (sha256 {found[:12]}, "
                               f"the job's {sha256[:12]}); run the job again")
        _EXTRACTORS.clear()
        _EXTRACTORS[key] = extractor
    return _EXTRACTORS[key]


def extract_chunk(task):
    """Run one task; returns its record, or ``{"index", "rows", "error"}``. Never raises."""
    t0, started = time.perf_counter(), time.time()
    index, (start, stop) = task["index"], task["rows"]
    try:
        extractor = _extractor(task["extractor"], task["extractor_sha256"])
        batch = read_task(task["data"])
        if len(batch.labels) != stop - start:
            raise RuntimeError(f"read {len(batch.labels)} rows where the task asks for {stop - start}")
        features = np.ascontiguousarray(extractor.transform(batch.images), dtype=np.float32)
        if batch.failed:
            features[[row - start for row, _, _ in batch.failed]] = np.nan
        chunks = open_store(task["out"])
        array_name, record_name = chunk_names(index)
        sha256 = write_chunk(chunks, array_name, features)
        record = {"index": index, "rows": [start, stop], "shape": list(features.shape), "sha256": sha256,
                  "extractor_sha256": task["extractor_sha256"],
                  "failed": [list(f) for f in batch.failed], "resized": int(batch.resized),
                  "seconds": round(time.perf_counter() - t0, 3), "host": os.uname().nodename, "pid": os.getpid(),
                  "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}  # Linux: KiB
        record["started"], record["finished"] = started, time.time()
        write_json(chunks, record_name, record, durable=False)  # a record lost in a crash: the chunk is computed again
        return record
    except Exception as exc:  # recorded by the job, never fatal for the other chunks
        logger.debug("chunk %d failed:\n%s", index, traceback.format_exc())
        return {"index": index, "rows": [start, stop], "error": f"{type(exc).__name__}: {exc}"}


def die_with_parent(parent_pid=None):
    """Ask the kernel to kill this process when the process that started it dies (Linux).

    A worker of a local engine calls it first thing: a coordinator killed with SIGKILL then
    leaves no worker behind. Elsewhere, or where it cannot be set, nothing happens.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent_pid is not None and os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

