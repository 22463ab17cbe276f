"""The service app with one extra route for ``bench_service.py`` only; not part of the public API.

``GET /hello`` goes through the same gunicorn worker, Flask app and request hooks as
``/predict`` but does no work, so comparing the two shows what a prediction costs on
top of serving a request.
"""
from service.wsgi import app


def _hello():
    return "hello\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


app.add_url_rule("/hello", "bench_hello", _hello, methods=["GET"])
