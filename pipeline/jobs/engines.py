"""Where the tasks of a batch job run: local processes, or a Dask cluster.

Both engines call the same function on the same small task dicts (never arrays) and
yield its results as they finish, with a bounded number of tasks in flight: the
coordinator holds the plan and the results, nothing more. A task's function reports its
own failures in its result; a worker process that dies is reported for the tasks it
held.

- ``"local"``: a ``ProcessPoolExecutor`` of fresh (spawned) processes, each of which asks
  the kernel to kill it when the coordinator dies, so a killed job leaves no worker
  behind.
- ``"dask"``: the scheduler at ``scheduler`` (``tcp://HOST:8786``), whose workers must
  see the same dataset and output paths (a shared filesystem); without an address, a
  local cluster is started for the job (Dask's worker processes exit when the process
  that started them dies).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from pipeline.jobs.chunk import die_with_parent

logger = logging.getLogger(__name__)

ENGINES = ("local", "dask")
#: Tasks in flight per worker: enough to keep every worker busy, few enough that the
#: coordinator holds little.
IN_FLIGHT_PER_WORKER = 2
#: Why the workers of a local engine may die before finishing anything.
SPAWN_HINT = ("; if no task ever finished: the local engine starts its workers with 'spawn', which imports the "
              "calling script again, so a script must start the job under `if __name__ == \"__main__\":`")


def n_local_workers(n_jobs):
    """Workers for ``n_jobs`` (joblib's convention: -1 all cores, -2 all but one, ...)."""
    cpus = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, cpus + 1 + n_jobs) if n_jobs < 0 else int(n_jobs)


def run_tasks(engine, function, tasks, *, n_jobs=-1, scheduler=None):
    """Yield ``function(task)`` for each of ``tasks`` (an iterable of dicts with an ``index``),
    in the order they finish.

    Parameters
    ----------
    engine : {"local", "dask"}
    function : callable
        Importable by name (the workers import it), taking one task and returning a
        JSON-able dict; it reports its own errors in that dict.
    tasks : iterable of dict
    n_jobs : int
        Local processes, or the workers of a local Dask cluster.
    scheduler : str, optional
        The address of a running Dask scheduler.
    """
    if engine == "local":
        yield from _run_local(function, tasks, n_local_workers(n_jobs))
    elif engine == "dask":
        yield from _run_dask(function, tasks, n_jobs, scheduler)
    else:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def _run_local(function, tasks, workers):
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads and BLAS pools
    tasks = iter(tasks)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        pending, finished = {}, 0
        while True:
            while len(pending) < IN_FLIGHT_PER_WORKER * workers:
                task = next(tasks, None)
                if task is None:
                    break
                pending[pool.submit(function, task)] = task
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    # A worker died (killed, out of memory): this task and every one in flight are lost.
                    hint = "" if finished else SPAWN_HINT
                    for t in [task, *pending.values()]:
                        yield {"index": t["index"], "rows": t.get("rows"),
                               "error": f"the worker process died ({exc}); run the job again to retry{hint}"}
                    for t in tasks:
                        yield {"index": t["index"], "rows": t.get("rows"), "error": "not run: a worker process died"}
                    return
                finished += 1
                yield result
    finally:
        # Stopped early (an error, the consumer closed the generator): the queued tasks are
        # dropped; the ones running finish (a chunk at most per worker) before the workers exit.
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(function, tasks, n_jobs, scheduler):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("engine='dask' needs the 'dist' extra: pip install 'cvpipe[dist]'") from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_local_workers(n_jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        scheduler = cluster.scheduler_address
        logger.info("started a local Dask cluster at %s", scheduler)
    client = Client(scheduler)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        tasks, running, submitted = iter(tasks), as_completed(), {}

        def submit(task):
            future = client.submit(function, task, pure=False)
            submitted[future.key] = task
            running.add(future)

        for task in tasks:
            submit(task)
            if running.count() >= IN_FLIGHT_PER_WORKER * workers:
                break
        for future in running:
            task = submitted.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # the cluster lost the task (a worker died, KilledWorker)
                result = {"index": task["index"], "rows": task.get("rows"), "error": f"{type(exc).__name__}: {exc}"}
            future.release()
            following = next(tasks, None)
            if following is not None:
                submit(following)
            yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
