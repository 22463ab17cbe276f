"""Gunicorn settings for the cvpipe service: ``gunicorn -c service/gunicorn_conf.py service.wsgi:app``.

Give it as a file path (``service.server`` does): ``-c python:service.gunicorn_conf``
would import the ``service`` package, hence the app and numpy, into the master.

Every setting has a default here and an environment variable to change it (the
Dockerfile and docker-compose.yml use those); options on gunicorn's command line
override both (that is how :func:`service.server.serve` passes its arguments).

Why these defaults:

- ``gthread`` workers, in cvpipe's balanced form (:mod:`service.gunicorn_worker`): a
  slow client occupies one thread instead of a whole worker, keep-alive connections are
  served, and a worker takes new connections only when idle, so clients that open
  their connections at once spread over the workers instead of piling onto one.
- Two threads per worker: predictions are short and CPU-bound and hold the GIL most of
  the time; with more threads they spend it handing the GIL around (``bench/bench_service.py``;
  the figures are in BENCHMARKS.md, "Prediction service"). 1 thread was a little slower than 2.
  Raise ``CVPIPE_THREADS`` for many slow clients, or put a buffering proxy in front.
- ``preload_app = False``: each worker imports ``service.wsgi`` and loads the models
  itself, *after* the fork; the master never imports numpy. Numba's parallel kernels and OpenMP/OpenBLAS start thread
  pools that do not survive ``fork()``; loading in the master would hand every worker a
  copy of pools whose threads are gone. It also means a restarted worker, or a
  ``kill -HUP`` of the master (graceful reload: new workers start, old ones finish their
  requests), reads the models folder afresh.
- One native thread per worker (``OMP_NUM_THREADS`` and friends, unless already set):
  parallelism comes from the workers; N workers × M BLAS threads on N cores only thrash.
- A folder the workers share, made by the master before the first worker starts
  (``CVPIPE_RUN_DIR``, in ``/dev/shm`` where there is one) and removed when it exits:
  its ``models-generation`` file carries a reload to every worker
  (:mod:`service.registry`), and its ``metrics/`` folder is prometheus_client's
  multiprocess folder (``PROMETHEUS_MULTIPROC_DIR``, unless the environment sets one), so
  ``GET /metrics`` on any worker reports the sum over all of them; a dead worker's live
  gauges are dropped (``child_exit``), its counts kept.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile

_env = os.environ.get

# One native thread per worker; set before any worker imports numpy or numba.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, _env("CVPIPE_NATIVE_THREADS", "1"))

bind = _env("CVPIPE_BIND", "127.0.0.1:8000")
workers = int(_env("CVPIPE_WORKERS", "2"))
worker_class = _env("CVPIPE_WORKER_CLASS", "service.gunicorn_worker.BalancedThreadWorker")
threads = int(_env("CVPIPE_THREADS", "2"))
preload_app = False

# A worker that has not notified the master for `timeout` s is killed and replaced;
# on TERM or HUP, workers get `graceful_timeout` s to finish their requests.
timeout = int(_env("CVPIPE_TIMEOUT", "30"))
graceful_timeout = int(_env("CVPIPE_GRACEFUL_TIMEOUT", "30"))
keepalive = int(_env("CVPIPE_KEEPALIVE", "5"))
backlog = int(_env("CVPIPE_BACKLOG", "2048"))
# Recycle a worker after this many requests (0: never); jitter keeps them from all restarting at once.
max_requests = int(_env("CVPIPE_MAX_REQUESTS", "0"))
max_requests_jitter = max(0, max_requests // 10)

# Request-line and header limits (the body size limit is the app's CVPIPE_MAX_BYTES).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# The heartbeat file lives in memory: a container's disk may be slow or overlay-backed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

# Newer gunicorn opens a control socket at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl):
# two servers of one user (tests, a bench beside a dev server) would fight over it. Signals do its job.
control_socket_disable = True

proc_name = "cvpipe"
errorlog = "-"
loglevel = _env("CVPIPE_LOG_LEVEL", "info")
accesslog = _env("CVPIPE_ACCESS_LOG") or None  # "-" for stdout
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms'
# Behind a proxy on another host, set FORWARDED_ALLOW_IPS (gunicorn reads it itself).


def on_starting(server):
    """In the master, before any worker: the workers' shared folder (see the module docstring)."""
    run_dir = tempfile.mkdtemp(prefix="cvpipe-run-", dir=worker_tmp_dir)
    os.environ["CVPIPE_RUN_DIR"] = run_dir
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.mkdir(os.path.join(run_dir, "metrics"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(run_dir, "metrics")
    server.log.info("cvpipe: workers share %s (metrics in %s)", run_dir, os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker):
    """In the master, when a worker has exited: drop its live gauges (its counters stay counted)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # no numpy: the master stays light

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """In the master, last: remove the shared folder it made."""
    run_dir = os.environ.get("CVPIPE_RUN_DIR")
    if run_dir and os.path.basename(run_dir).startswith("cvpipe-run-"):
        shutil.rmtree(run_dir, ignore_errors=True)


def when_ready(server):
    server.log.info("cvpipe: master %s listening on %s, %s %s worker(s) x %s thread(s), models from %s",
                    os.getpid(), ", ".join(str(s) for s in server.LISTENERS), server.cfg.workers,
                    server.cfg.worker_class_str, server.cfg.threads, _env("CVPIPE_MODELS", "models"))


def post_fork(server, worker):
    """In the new worker, before it loads the app: the app's log lines go to gunicorn's error log.

    Model loads and load failures ("model broken: failed to load: ...") are logged by
    the ``service`` and ``pipeline`` loggers, a kernel that cannot be cached by
    ``compute`` (through ``features`` and ``classifiers``); without this they would only
    reach Python's last-resort handler (warnings and worse, no time or pid).
    """
    gunicorn_log = logging.getLogger("gunicorn.error")
    for name in ("service", "pipeline", "compute", "features", "classifiers"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            for handler in gunicorn_log.handlers:
                logger.addHandler(handler)
            logger.setLevel(gunicorn_log.level)
            logger.propagate = False


def worker_abort(worker):
    worker.log.warning("cvpipe: worker %s timed out (no heartbeat in %s s) and is being replaced",
                       worker.pid, worker.cfg.timeout)
