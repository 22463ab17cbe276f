"""The WSGI entry point for gunicorn and other servers: ``service.wsgi:app``.

The app reads its settings from the environment (``CVPIPE_MODELS``,
``CVPIPE_DEFAULT_MODEL``, ``CVPIPE_API_TOKEN``, ``CVPIPE_MAX_BYTES``,
``CVPIPE_MAX_PIXELS``). Importing this module builds the app and loads the models,
so under gunicorn it runs in each worker after the fork (no ``--preload``; see
:mod:`service.gunicorn_conf`).
"""
from service.app import create_app

app = create_app()
