"""The prediction service: a Flask application factory and its API blueprint."""
from service.app import create_app

__all__ = ["create_app"]
