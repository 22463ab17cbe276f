"""The harness tests and benches use to run the real service: start gunicorn in the
background, wait until it is ready, find its workers and their connections, stop it.

:func:`start` runs the same command as ``cvpipe serve`` (:func:`service.server.gunicorn_command`)
in a new session, so :func:`stop` can end the master and its workers together. The
``/proc`` readers are Linux only.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from service.server import gunicorn_command

__all__ = ["connections_per_worker", "free_port", "logged", "start", "stop", "wait_until_ready", "worker_pids"]


def start(models_dir=None, host="127.0.0.1", port=None, workers=2, *, ready_timeout=60.0,
          stdout=None, stderr=None, **options):
    """Start gunicorn in the background and wait until ``/readyz`` answers.

    Returns the :class:`subprocess.Popen` of the master, with ``base_url`` set on it
    (``http://HOST:PORT``). ``port=None`` picks a free port. Stop it with :func:`stop`.
    ``ready_timeout=0`` returns at once.
    """
    port = free_port(host) if port is None else port
    argv, env = gunicorn_command(models_dir, host, port, workers, **options)
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    proc.base_url = f"http://{_url_host(host)}:{port}"
    if ready_timeout:
        try:
            wait_until_ready(proc.base_url, ready_timeout, proc=proc)
        except BaseException:
            stop(proc)
            raise
    return proc


@contextmanager
def logged(models_dir, log_path, **options):
    """:func:`start` with the server's output in ``log_path`` (``proc.log_path``): stopped on
    leaving the block, the end of its log printed (pytest shows it for a failed test)."""
    with open(log_path, "wb") as log:
        proc = start(models_dir, stdout=log, stderr=subprocess.STDOUT, **options)
    proc.log_path = Path(log_path)
    try:
        yield proc
    finally:
        code = stop(proc)
        print(f"gunicorn exited with {code}; log:\n{proc.log_path.read_text()[-4000:]}")


def stop(proc, timeout=30.0):
    """Stop a server from :func:`start` gracefully (TERM), killing it after ``timeout`` s; returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the master's session: its workers too
    return proc.wait()


def wait_until_ready(base_url, timeout=60.0, *, path="/readyz", proc=None):
    """Poll ``base_url + path`` until it answers 200; returns its JSON (or text).

    Raises ``RuntimeError`` with the last answer when ``timeout`` s pass, or at once
    when ``proc`` (the server's process) has exited.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {proc.returncode} before {base_url}{path} "
                               f"was ready (last answer: {last})")
        try:
            with urllib.request.urlopen(base_url + path, timeout=5) as response:
                body = response.read().decode("utf-8", "replace")
                try:
                    return json.loads(body)
                except ValueError:
                    return body
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read(500).decode('utf-8', 'replace')}"
        except (urllib.error.URLError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    raise RuntimeError(f"{base_url}{path} not ready after {timeout:g} s (last answer: {last})")


def free_port(host="127.0.0.1"):
    """A TCP port free on ``host`` right now (the OS picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _url_host(host):
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def worker_pids(master):
    """PIDs of the live children of the gunicorn ``master`` (read from /proc: Linux only)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == master and state != "Z":
            pids.add(int(entry))
    return pids


def connections_per_worker(master, port):
    """``{worker pid: established TCP connections on local port}`` (from /proc: Linux only).

    Shows how clients' keep-alive connections are spread over the workers.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    counts = {}
    for pid in worker_pids(master):
        count = 0
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            count += target.startswith("socket:[") and target[8:-1] in inodes
        counts[pid] = count
    return counts
