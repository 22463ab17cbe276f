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

Slow clients. gunicorn's gthread worker hands a connection to a thread as soon as it is
accepted (or readable again, kept alive), and the thread then reads the request with
blocking reads: a client that sends its headers or body at 1 byte/s holds a thread for as
long as it likes, and 4 such clients held every thread of the default service (2
workers x 2 threads), ``/healthz`` included. This worker reads each request whole in its
event loop first, without blocking (:mod:`service.http_buffer` says when it is whole),
and only then gives it to a thread, which parses it from memory: slow clients cost a
buffer and a file descriptor each, never a thread. A request must arrive whole within
``CVPIPE_READ_TIMEOUT`` seconds (default 15) from its first byte (from the accept, for a
connection's first request); a client slower than that gets a 408 and the connection is
closed. Headers over 64 KiB get a 431; a chunked body over ``CVPIPE_MAX_BYTES`` a 413
(a Content-Length over it goes to the app at once, which answers 413 without reading the
body). The unfinished requests of one worker hold at most ``CVPIPE_BUFFER_BYTES``
(default 4 x ``CVPIPE_MAX_BYTES``) at once; a request that would take more gets a 503
(try again). HTTPS or HTTP/2 connections (not used by ``cvpipe serve``) keep gunicorn's
own reading.

This module is imported by the gunicorn master (to load the worker class): it imports
gunicorn alone, never the app or numpy (see :mod:`service.gunicorn_conf`).
"""
from __future__ import annotations

import io
import json
import os
import selectors
import time
from collections import deque
from functools import partial

from gunicorn.workers.gthread import ThreadWorker

from service.http_buffer import BODY_TOO_LARGE, HEAD_TOO_LARGE, INCOMPLETE, MAX_HEAD_BYTES, request_state

try:  # gunicorn 25 and later can speak HTTP/2 to chosen peers; those keep gunicorn's reading
    from gunicorn.http2 import negotiation as _h2
except ImportError:  # pragma: no cover - older gunicorn
    _h2 = None

#: Longest a busy worker keeps new connections waiting in the backlog, in seconds.
ACCEPT_WAIT = 0.005
#: Seconds a client has to send a whole request (``CVPIPE_READ_TIMEOUT``).
READ_TIMEOUT = 15.0
#: The app's default body limit (``CVPIPE_MAX_BYTES``; service.app.DEFAULTS, which the master
#: must not import: a test holds the two equal).
DEFAULT_MAX_BYTES = 10 * 2**20
#: Seconds a stopping worker still waits for the first bytes of a connection it accepted
#: (gunicorn's own STOP_KEEPALIVE_LINGER for kept-alive ones).
STOP_LINGER = 2.0
#: Bytes read from a socket at a time.
RECV_BYTES = 256 * 1024


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker, accepting new connections when idle (or every
    ``ACCEPT_WAIT`` s when never idle)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_flight = 0  # requests submitted to the thread pool and not finished
        self._last_open = time.monotonic()  # when it was last idle or last accepted
        self._quitting = False
        env = os.environ
        self.read_timeout = float(env.get("CVPIPE_READ_TIMEOUT") or READ_TIMEOUT)
        self.max_body = int(env.get("CVPIPE_MAX_BYTES") or DEFAULT_MAX_BYTES)
        self.buffer_budget = int(env.get("CVPIPE_BUFFER_BYTES") or 4 * self.max_body)
        self.incoming = deque()  # connections whose request is not whole yet, oldest first
        self.buffered = 0  # bytes those connections hold

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
        if self.in_flight == 0 and not self.incoming:  # a request being read is one in flight too
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

    def wait_for_and_dispatch_events(self, timeout):
        # While new connections wait only for ACCEPT_WAIT (this worker is reading or running
        # requests), look again after ACCEPT_WAIT rather than gunicorn's second: with no event
        # on the connections it holds (clients that have sent nothing yet), a worker would
        # otherwise take one new connection a second.
        if self.alive and not self._accepting and self.nr_conns < self.worker_connections:
            self.set_accept_enabled(True)  # may_accept decides
            if not self._accepting:
                timeout = min(timeout, ACCEPT_WAIT)
        super().wait_for_and_dispatch_events(timeout)

    def enqueue_req(self, conn):
        # On the worker's main thread: after an accept, a readable keep-alive connection,
        # or a finished request whose client already sent the next one. A request that is
        # not known to be whole is read first (see the module docstring).
        if not conn.__dict__.pop("cvpipe_whole", False) and self._reads_itself(conn):
            self._start_reading(conn)
            return
        self.in_flight += 1
        self._stop_accepting_if_busy()
        super().enqueue_req(conn)

    def _stop_accepting_if_busy(self):
        # Leave new connections to an idle worker: a request to run or to read is work.
        if not self.may_accept():
            super().set_accept_enabled(False)

    def finish_request(self, conn, fs):
        # On the main thread, through gunicorn's method queue, when a request is done.
        self.in_flight -= 1
        super().finish_request(conn, fs)
        if self.alive:
            self.set_accept_enabled(self.nr_conns < self.worker_connections)

    # ------------------------------------------------------- whole requests first
    def _reads_itself(self, conn):
        """Whether this worker reads ``conn``'s requests (plain HTTP/1.x: every connection
        of ``cvpipe serve``), or leaves them to gunicorn (HTTPS, HTTP/2)."""
        if self.cfg.is_ssl or getattr(conn, "is_http2", False):
            return False
        return _h2 is None or not _h2.prior_knowledge_allowed(self.cfg, conn.client)

    def _start_reading(self, conn):
        parser = getattr(conn, "parser", None)
        early = b""
        if parser is not None:  # kept alive: bytes of the next request read with the last one
            early = parser.unreader.buf.getvalue()
            parser.unreader.buf = io.BytesIO()
        conn.sock.setblocking(False)
        conn.cvpipe_buffer = bytearray(early)
        conn.cvpipe_started = time.monotonic()
        self.buffered += len(early)
        self.incoming.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        self._stop_accepting_if_busy()
        if early:
            self._advance(conn)

    def _on_readable(self, conn, _sock):
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client closed (or reset) the connection
            self._close_incoming(conn)
            return
        if self.buffered + len(data) > self.buffer_budget:
            self._answer_and_close(conn, 503, "service_busy",
                                   f"this worker holds {self.buffered} bytes of unfinished requests "
                                   f"(CVPIPE_BUFFER_BYTES: {self.buffer_budget}); try again")
            return
        conn.cvpipe_buffer += data
        self.buffered += len(data)
        self._advance(conn)

    def _advance(self, conn):
        state = request_state(conn.cvpipe_buffer, self.max_body)
        if state == INCOMPLETE:
            return
        if state == HEAD_TOO_LARGE:
            self._answer_and_close(conn, 431, "headers_too_large",
                                   f"request line and headers over {MAX_HEAD_BYTES} bytes")
            return
        if state == BODY_TOO_LARGE:
            self._answer_and_close(conn, 413, "payload_too_large", f"request body too large: expected at most "
                                   f"{self.max_body} bytes (CVPIPE_MAX_BYTES)")
            return
        data = self._forget(conn)
        conn.sock.setblocking(True)
        conn.init()  # the parser, on the socket; it reads these bytes first
        conn.parser.unreader.unread(data)
        conn.cvpipe_whole = True
        self.enqueue_req(conn)

    def _forget(self, conn):
        """Take ``conn`` out of the connections being read; its bytes."""
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.incoming.remove(conn)
        data = bytes(conn.cvpipe_buffer)
        self.buffered -= len(data)
        conn.cvpipe_buffer = None
        return data

    def _close_incoming(self, conn):
        self._forget(conn)
        self.nr_conns -= 1
        conn.close()
        if self.alive:
            self.set_accept_enabled(self.nr_conns < self.worker_connections)

    def _answer_and_close(self, conn, status, code, message):
        """Answer an error in the app's shape (``{"error": {"code", "message"}}``) and close."""
        reasons = {408: "Request Timeout", 413: "Content Too Large", 431: "Request Header Fields Too Large",
                   503: "Service Unavailable"}
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        head = (f"HTTP/1.1 {status} {reasons[status]}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        try:
            conn.sock.send(head + body)  # non-blocking: a client that reads nothing gets nothing
        except OSError:
            pass
        self._close_incoming(conn)

    def murder_pending(self):
        # Called by gunicorn's loop about once a second: requests not whole in time are dropped.
        super().murder_pending()
        now = time.monotonic()
        if not self.alive:
            # Stopping (TERM, HUP's graceful reload): a connection that has sent nothing for
            # STOP_LINGER s is not waited for; a client that connected just before the signal
            # still gets its request answered (closing at once reset it).
            for conn in [c for c in self.incoming if not c.cvpipe_buffer and now - c.cvpipe_started > STOP_LINGER]:
                self._close_incoming(conn)
        while self.incoming and self.incoming[0].cvpipe_started + self.read_timeout <= now:
            conn = self.incoming[0]
            self.log.debug("closing %s: no whole request in %s s (CVPIPE_READ_TIMEOUT)", conn.client,
                           self.read_timeout)
            self._answer_and_close(conn, 408, "request_timeout", f"no whole request within {self.read_timeout:g} s "
                                   "(CVPIPE_READ_TIMEOUT)")
