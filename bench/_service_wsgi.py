"""The service app with one extra route for ``bench_service.py`` only; not part of the public API.

``GET /hello`` goes through the same gunicorn worker, Flask app and request hooks as
``/predict`` but does no work, so comparing the two shows what a prediction costs on
top of serving a request.

With ``CVPIPE_BENCH_SWITCH`` set (``bench_service.py --switch``), the worker switches the
shortcuts it names to their other paths (see ``bench_shortcuts.py``) for its whole life.
"""
import os
from contextlib import ExitStack

from service.wsgi import app

if os.environ.get("CVPIPE_BENCH_SWITCH"):
    from bench_shortcuts import apply

    apply(os.environ["CVPIPE_BENCH_SWITCH"], ExitStack())  # never closed: the worker's whole life


def _hello():
    return "hello\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


app.add_url_rule("/hello", "bench_hello", _hello, methods=["GET"])
