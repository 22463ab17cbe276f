"""Run the service under gunicorn: :func:`serve` for ``cvpipe serve`` and ``python -m service.server``.

It runs ``python -m gunicorn -c .../service/gunicorn_conf.py service.wsgi:app`` (see
:mod:`service.gunicorn_conf` for why: ``gthread`` workers, models loaded in each worker
after the fork, one native thread per worker) with the models folder and the app's
settings passed as ``CVPIPE_*`` environment variables, which ``service.create_app``
reads. The config is passed as a *file*, not as ``python:service.gunicorn_conf``:
importing the ``service`` package imports the app and numpy, and the gunicorn master
must not (see :mod:`service.gunicorn_conf`); a test holds the master free of numpy.

``python -m service.server --models DIR [--host H] [--port P] [--workers N]`` does
what ``serve`` does (the Dockerfile's command).

Signals go to the gunicorn master: ``TERM`` or ``INT`` stop it gracefully (workers finish
their requests, ``graceful_timeout`` s at most), ``HUP`` reloads (new workers read the
models folder again, then the old ones stop), ``TTIN``/``TTOU`` add or remove a worker.
A worker that dies is replaced by the master.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["gunicorn_command", "serve"]

CONFIG = str(Path(__file__).resolve().with_name("gunicorn_conf.py"))
APP = "service.wsgi:app"
#: Threads per worker; see :mod:`service.gunicorn_conf` for why so few.
DEFAULT_THREADS = 2
#: ``worker_class`` names -> gunicorn's setting. "balanced" (the default) is gunicorn's
#: gthread worker accepting connections only with a thread free (:mod:`service.gunicorn_worker`).
WORKER_CLASSES = {"balanced": "service.gunicorn_worker.BalancedThreadWorker", "gthread": "gthread", "sync": "sync"}
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def gunicorn_command(models_dir=None, host="127.0.0.1", port=8000, workers=2, *, threads=DEFAULT_THREADS,
                     worker_class="balanced", timeout=30, graceful_timeout=30, keepalive=5,
                     max_requests=0, access_log=None, default_model=None, api_token=None,
                     max_bytes=None, max_pixels=None, read_timeout=None, app=APP, pythonpath=None, env=None):
    """``(argv, env)`` that run the service under gunicorn.

    Parameters
    ----------
    models_dir : path, optional
        Folder of model folders (``models/NAME``); ``None`` keeps ``$CVPIPE_MODELS``.
    host, port : str, int
        Address to listen on. Keep ``127.0.0.1`` unless a proxy or container needs more.
    workers : int
        Worker processes (one per core is the rule of thumb for CPU-bound predictions).
    threads : int
        Threads per ``gthread`` worker (ignored by ``sync``).
    worker_class : {"balanced", "gthread", "sync"}
        "balanced" (gunicorn's ``gthread`` worker, accepting new connections only while
        it has a thread free, so keep-alive connections spread over the workers), the
        stock "gthread", or "sync" (one request at a time, no keep-alive).
    timeout, graceful_timeout, keepalive : int
        Seconds: silent worker is killed / grace on stop and reload / idle keep-alive.
    max_requests : int
        Recycle a worker after this many requests (0: never).
    access_log : str, optional
        ``"-"`` logs each request to stdout; a path logs to that file.
    default_model, api_token, max_bytes, max_pixels
        The app's ``CVPIPE_DEFAULT_MODEL``, ``CVPIPE_API_TOKEN``, ``CVPIPE_MAX_BYTES``,
        ``CVPIPE_MAX_PIXELS`` (``None`` keeps the environment's value or the app's default).
    read_timeout : float, optional
        ``CVPIPE_READ_TIMEOUT``: seconds a client has to send a whole request
        (:mod:`service.gunicorn_worker`; default 15).
    app : str
        WSGI ``module:variable``; benches point it at their own module.
    pythonpath : str or list of str, optional
        Folders gunicorn adds to ``sys.path`` before importing ``app``.
    env : dict, optional
        Base environment (default: this process's).
    """
    if worker_class not in WORKER_CLASSES:
        raise ValueError(f"worker_class must be one of {sorted(WORKER_CLASSES)}, got {worker_class!r}")
    if int(workers) < 1 or int(threads) < 1:
        raise ValueError(f"workers and threads must be >= 1, got workers={workers!r}, threads={threads!r}")
    if not 0 <= int(port) < 65536:
        raise ValueError(f"port must be in 0..65535, got {port!r}")
    argv = [sys.executable, "-m", "gunicorn", "--config", CONFIG,
            "--bind", _bind(host, port), "--workers", str(int(workers)), "--threads", str(int(threads)),
            "--worker-class", WORKER_CLASSES[worker_class], "--timeout", str(int(timeout)),
            "--graceful-timeout", str(int(graceful_timeout)), "--keep-alive", str(int(keepalive)),
            "--max-requests", str(int(max_requests))]
    if access_log:
        argv += ["--access-logfile", str(access_log)]
    paths = [str(_SOURCE_ROOT)] + ([pythonpath] if isinstance(pythonpath, (str, Path)) else list(pythonpath or []))
    argv += ["--pythonpath", ",".join(str(p) for p in paths), app]
    env = dict(os.environ if env is None else env)
    settings = {"CVPIPE_MODELS": None if models_dir is None else Path(models_dir).resolve(),
                "CVPIPE_DEFAULT_MODEL": default_model, "CVPIPE_API_TOKEN": api_token,
                "CVPIPE_MAX_BYTES": max_bytes, "CVPIPE_MAX_PIXELS": max_pixels, "CVPIPE_READ_TIMEOUT": read_timeout}
    env.update({k: str(v) for k, v in settings.items() if v is not None})
    # gunicorn's config module is imported by name: the checkout must be importable.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH")) if p)
    return argv, env


def serve(models_dir=None, host="127.0.0.1", port=8000, workers=2, **options):
    """Run the service in the foreground: this process *becomes* the gunicorn master.

    The process is replaced (``exec``), so signals from a terminal, systemd or a
    container runtime reach gunicorn directly (see the module docstring). Keyword
    options are those of :func:`gunicorn_command`. Does not return.
    """
    models = Path(models_dir) if models_dir is not None else None
    if models is not None and not models.is_dir():
        raise FileNotFoundError(f"models folder {models} does not exist (expected models/NAME/manifest.json)")
    argv, env = gunicorn_command(models_dir, host, port, workers, **options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)


def _bind(host, port):
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def main(argv=None):
    """``python -m service.server``: :func:`serve` from the command line."""
    parser = argparse.ArgumentParser(prog="python -m service.server", description=serve.__doc__.split("\n")[0])
    parser.add_argument("--models", default=os.environ.get("CVPIPE_MODELS", "models"), help="models folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--worker-class", choices=sorted(WORKER_CLASSES), default="balanced")
    parser.add_argument("--timeout", type=int, default=30)
    parser.add_argument("--access-log", help="'-' for stdout")
    args = parser.parse_args(argv)
    serve(args.models, args.host, args.port, args.workers, threads=args.threads, worker_class=args.worker_class,
          timeout=args.timeout, access_log=args.access_log)


if __name__ == "__main__":  # pragma: no cover
    main()
