"""A gunicorn ``gthread`` worker that takes new connections when it is idle.

Every gunicorn worker polls the one listening socket and accepts whatever arrives,
busy or not; with keep-alive a connection then stays with the worker that accepted it.
When a client opens its connections at once (a load balancer's pool, ``wrk -c 32``),
one worker may take most or all of them and serve them with its threads alone while
the other workers idle, and /predict throughput halves when one worker holds them all
(BENCHMARKS.md, "Prediction service").

:class:`BalancedThreadWorker` keeps gunicorn's ``gthread`` worker and changes one rule:
it listens for new connections only while it has no request in flight, so a busy
worker leaves them in the kernel's backlog for an idle one. So that a worker that is never idle, under sustained
load on every worker, still takes new clients, it also accepts one connection whenever
``ACCEPT_WAIT`` seconds have passed since it was last idle or last accepted. Kept-alive
connections are served as before.

This module is imported by the gunicorn master (to load the worker class): it imports
gunicorn alone, never the app or numpy (see :mod:`service.gunicorn_conf`).
"""
from __future__ import annotations

import time

from gunicorn.workers.gthread import ThreadWorker

#: Longest a busy worker keeps new connections waiting in the backlog, in seconds.
ACCEPT_WAIT = 0.005


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker, accepting new connections when idle (or every
    ``ACCEPT_WAIT`` s when never idle)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_flight = 0  # requests submitted to the thread pool and not finished
        self._last_open = time.monotonic()  # when it was last idle or last accepted
        self._quitting = False

    def handle_quit(self, sig, frame):
        # Ctrl-C sends SIGINT to the whole process group, and the master, on its own SIGINT,
        # sends the workers SIGQUIT: two quit signals a few milliseconds apart. gthread's
        # handler, entered again by the second while the first held the thread pool's
        # shutdown lock, waited for that lock forever, until the master's SIGKILL
        # graceful_timeout (30 s) later ("Worker was sent SIGKILL! Perhaps out of memory?").
        # The first quit signal stops the worker; the ones after it have nothing to add.
        if self._quitting:
            return
        self._quitting = True
        super().handle_quit(sig, frame)

    def may_accept(self):
        now = time.monotonic()
        if self.in_flight == 0:
            self._last_open = now
            return True
        return now - self._last_open >= ACCEPT_WAIT

    def set_accept_enabled(self, enabled):
        # gunicorn's loop asks to accept whenever it holds fewer than worker_connections
        # connections; accept only if, besides, this worker may take one now.
        super().set_accept_enabled(enabled and self.may_accept())

    def accept(self, listener):
        self._last_open = time.monotonic()
        super().accept(listener)

    def enqueue_req(self, conn):
        # On the worker's main thread: after an accept, a readable keep-alive connection,
        # or a finished request whose client already sent the next one.
        self.in_flight += 1
        if not self.may_accept():
            super().set_accept_enabled(False)
        super().enqueue_req(conn)

    def finish_request(self, conn, fs):
        # On the main thread, through gunicorn's method queue, when a request is done.
        self.in_flight -= 1
        super().finish_request(conn, fs)
        if self.alive:
            self.set_accept_enabled(self.nr_conns < self.worker_connections)
