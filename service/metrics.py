"""Prometheus metrics of one app: requests, errors and latency by endpoint and model.

Each app gets its own :class:`prometheus_client.CollectorRegistry`, so tests (or
one process) can create many apps without "Duplicated timeseries" errors.

Under gunicorn with several workers, ``PROMETHEUS_MULTIPROC_DIR`` names an empty,
writable folder set *before the workers start* (before ``prometheus_client`` is first
imported): each worker writes its values there, and ``GET /metrics`` on any worker sums
all of them (:class:`prometheus_client.multiprocess.MultiProcessCollector`).
:mod:`service.gunicorn_conf` (``cvpipe serve``, the Docker image) sets it up itself, in
the folder its workers share, and drops a dead worker's live gauges in ``child_exit``.

Labels stay bounded: ``endpoint`` is the Flask endpoint name (``"unmatched"`` for
unknown routes, never the raw path) and ``model`` a loaded model's name or ``""``
(a name a client made up is never a label value).
"""
from __future__ import annotations

import logging
import os
import time

from flask import g, request

logger = logging.getLogger("service")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir():
    """The multiprocess folder when ``PROMETHEUS_MULTIPROC_DIR`` is set, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The metric objects of one app and the registry that exposes them."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry(auto_describe=True)
        if self.multiprocess:
            if not getattr(values.ValueClass, "_multiprocess", False):
                logger.warning("%s is set but prometheus_client was imported before it was: this process "
                               "keeps its metrics in memory; set it before the server starts", MULTIPROC_ENV)
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)
            own = None  # values live in the folder's files; the collector reads them all
        else:
            from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
            own = self.registry
        self.requests = Counter("cvpipe_requests", "HTTP requests answered, by endpoint, model, method and status.",
                                ["endpoint", "model", "method", "status"], registry=own)
        self.errors = Counter("cvpipe_errors", "Error answers (4xx and 5xx), by endpoint, model and error code.",
                              ["endpoint", "model", "code"], registry=own)
        self.latency = Histogram("cvpipe_request_duration_seconds", "Time to answer a request, by endpoint and model.",
                                 ["endpoint", "model"], buckets=_LATENCY_BUCKETS, registry=own)
        self.images = Counter("cvpipe_images_predicted", "Images classified, by model.", ["model"], registry=own)
        self.batch = Histogram("cvpipe_batch_size", "Images per predict request, by model.", ["model"],
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=own)
        self.models = Gauge("cvpipe_models", "Model folders by load status.", ["status"], registry=own,
                            multiprocess_mode="livemax")

    def exposition(self):
        """``(body, content_type)`` of the Prometheus text format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def count_batch(self, model, n):
        """Count one predict request of ``n`` images for ``model``."""
        self.images.labels(model).inc(n)
        self.batch.labels(model).observe(n)

    def set_models(self, entries):
        for status in ("ready", "error"):
            self.models.labels(status).set(sum(e.status == status for e in entries))

    # ----------------------------------------------------------- request hooks
    def install(self, app):
        """Time and count every request of ``app``."""
        app.before_request(_start_timer)
        app.after_request(self._observe)

    def _observe(self, response):
        start = g.pop("cvpipe_t0", None)
        endpoint = request.endpoint or "unmatched"
        model = g.get("cvpipe_model", "")
        self.requests.labels(endpoint, model, request.method, str(response.status_code)).inc()
        if response.status_code >= 400:
            self.errors.labels(endpoint, model, g.get("cvpipe_error_code") or str(response.status_code)).inc()
        if start is not None:
            self.latency.labels(endpoint, model).observe(time.perf_counter() - start)
        return response


def _start_timer():
    g.cvpipe_t0 = time.perf_counter()
