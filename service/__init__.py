"""The prediction service: a Flask application factory and its API blueprint.

``create_app`` is imported on first use: the gunicorn master imports
``service.gunicorn_worker`` to load the worker class and must not import the app or
numpy (see :mod:`service.gunicorn_conf`).
"""

__all__ = ["create_app"]


def __getattr__(name):
    if name == "create_app":
        from service.app import create_app

        return create_app
    raise AttributeError(f"module 'service' has no attribute {name!r}")
