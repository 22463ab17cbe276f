"""The application factory: :func:`create_app`.

Configuration: each key is read from the ``config`` mapping when it has it (not
None or ""), else from the environment, else the default.

=========================  ==========  ==============================================
key                        default     meaning
=========================  ==========  ==============================================
``CVPIPE_MODELS``          ``models``  folder of model folders (``NAME/manifest.json``)
``CVPIPE_DEFAULT_MODEL``   (none)      model of ``POST /predict``; none: ``default``
                                       when loaded, else the first loaded by name
``CVPIPE_API_TOKEN``       (none)      bearer token required by ``/predict`` and ``/v1``
``CVPIPE_MAX_BYTES``       10 MiB      request body limit (Flask ``MAX_CONTENT_LENGTH``)
``CVPIPE_MAX_PIXELS``      40 000 000  width x height limit per image (decompression bombs)
``CVPIPE_MAX_REQUEST_PIXELS`` 40 000 000  width x height of all the images of one request,
                                       checked from their headers before any is decoded
``CVPIPE_MAX_IMAGES``      64          images per request
``CVPIPE_RELOAD_INTERVAL`` 0           seconds between background checks of the models
                                       folder (0: only ``POST /v1/models/reload``)
``CVPIPE_DEVICE``          (none)      ``cpu`` or ``gpu``: where every model runs, whatever
                                       device it was saved with (none: its own, where
                                       ``auto`` picks a GPU when there is one)
``CVPIPE_RUN_DIR``         (none)      the folder a server's workers share (set by
                                       :mod:`service.gunicorn_conf`): reloads reach
                                       every worker through it
=========================  ==========  ==============================================

Other keys of ``config`` (``TESTING``, ...) go to ``app.config`` as they are.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from flask import Flask

from service.api import api
from service.docs import docs
from service.errors import register_error_handlers
from service.metrics import Metrics
from service.oip import v2
from service.ops import ops
from service.page import page
from service.registry import ModelRegistry

logger = logging.getLogger("service")

DEFAULTS = {
    "CVPIPE_MODELS": "models",
    "CVPIPE_DEFAULT_MODEL": None,
    "CVPIPE_API_TOKEN": None,
    "CVPIPE_MAX_BYTES": 10 * 2**20,
    "CVPIPE_MAX_PIXELS": 40_000_000,
    "CVPIPE_MAX_REQUEST_PIXELS": 40_000_000,
    "CVPIPE_MAX_IMAGES": 64,
    "CVPIPE_RELOAD_INTERVAL": 0,
    "CVPIPE_RUN_DIR": None,
    "CVPIPE_DEVICE": None,
}
#: The file in ``CVPIPE_RUN_DIR`` whose replacement tells every worker to reload.
GENERATION_FILE = "models-generation"


@dataclass(frozen=True)
class Settings:
    """The service configuration, read once by :func:`create_app`."""

    models: str
    default_model: str | None
    api_token: str | None
    max_bytes: int
    max_pixels: int
    max_request_pixels: int
    max_images: int
    reload_interval: float
    run_dir: str | None
    device: str | None

    @classmethod
    def read(cls, config=None):
        """Settings from ``config`` (a mapping), else the environment, else :data:`DEFAULTS`."""
        config = dict(config or {})

        def get(key):  # None or "" means "not set here": look further
            for value in (config.get(key), os.environ.get(key), DEFAULTS[key]):
                if value is not None and value != "":
                    return value
            return None

        def positive(key, kind=int):
            value = get(key)
            try:
                number = kind(value)
            except (TypeError, ValueError):
                number = None
            if number is None or isinstance(value, bool) or number < (0 if kind is float else 1):
                raise ValueError(f"{key}: expected a positive {'number' if kind is float else 'integer'}, "
                                 f"got {value!r}")
            return number

        def device(value):
            if value not in (None, "cpu", "gpu"):
                raise ValueError(f"CVPIPE_DEVICE: expected cpu or gpu (or unset: each model's own), got {value!r}")
            return value

        return cls(models=str(get("CVPIPE_MODELS")), default_model=get("CVPIPE_DEFAULT_MODEL"),
                   api_token=get("CVPIPE_API_TOKEN"), max_bytes=positive("CVPIPE_MAX_BYTES"),
                   max_pixels=positive("CVPIPE_MAX_PIXELS"),
                   max_request_pixels=positive("CVPIPE_MAX_REQUEST_PIXELS"), max_images=positive("CVPIPE_MAX_IMAGES"),
                   reload_interval=positive("CVPIPE_RELOAD_INTERVAL", float), run_dir=get("CVPIPE_RUN_DIR"),
                   device=device(get("CVPIPE_DEVICE")))


@dataclass(frozen=True)
class ServiceState:
    """What the blueprints share: ``app.extensions["cvpipe"]``."""

    settings: Settings
    registry: ModelRegistry
    metrics: Metrics


def create_app(config=None):
    """Build the Flask app: load the models, register the API, the operations endpoints and the upload page.

    Parameters
    ----------
    config : mapping, optional
        ``CVPIPE_*`` keys (see the module docstring) and Flask settings; keys it lacks
        come from the environment.

    Returns
    -------
    flask.Flask
    """
    settings = Settings.read(config)
    app = Flask(__name__, static_folder=None)  # the upload page serves its own files
    app.config.update({k: v for k, v in (config or {}).items() if not k.startswith("CVPIPE_")})
    app.config["MAX_CONTENT_LENGTH"] = settings.max_bytes
    app.json.sort_keys = False  # answers keep the documented key order

    generation = os.path.join(settings.run_dir, GENERATION_FILE) if settings.run_dir else None
    registry = ModelRegistry(settings.models, default=settings.default_model, generation_file=generation,
                             device=settings.device)
    changes = registry.reload(publish=False)  # a worker's start: the others need not look
    metrics = Metrics()
    metrics.set_models(registry.entries())
    app.extensions["cvpipe"] = ServiceState(settings, registry, metrics)
    logger.info("serving %d models from %s (%d failed); default %s", len(changes["added"]), settings.models,
                len(changes["failed"]), registry.default_name())

    register_error_handlers(app)
    metrics.install(app)
    if generation is not None:
        @app.before_request
        def _follow_other_workers():
            if registry.follow():
                metrics.set_models(registry.entries())
    if settings.reload_interval:
        @app.before_request
        def _check_models_folder():
            registry.maybe_reload(settings.reload_interval)  # never blocks; returns None: go on
    app.register_blueprint(api)
    app.register_blueprint(v2)
    app.register_blueprint(ops)
    app.register_blueprint(page)
    app.register_blueprint(docs)
    return app
