"""The schema of cvpipe's configuration files, and one-line errors for what breaks it.

Two documents, YAML or JSON mappings, checked by pydantic models that forbid unknown keys
and take values as written (strict: ``"5"`` is not an integer, ``true`` is not 1):

- a training config (``cvpipe train --config FILE``, :class:`TrainConfig`)::

      dataset: fashion-mnist
      features: hog:pixels_per_cell=7x7,raw        # or a list of {name, params}
      classifier: {name: softmax, params: {n_epochs: 30}}   # or "softmax:n_epochs=30"
      limit: 10000
      seed: 0
      search: {space: "learning_rate=log:1e-4:1e-1", trials: 10, stages: 2, folds: 0}

- a service config (``cvpipe serve --config FILE``, :class:`ServiceConfig`): the
  server's address and workers and the app's limits (the ``CVPIPE_*`` settings of
  :mod:`service.app`, named in lower case without the prefix).

A document that breaks the schema is a :class:`ConfigError` of one line naming the file,
the key, what was expected and what arrived, e.g.
``config.yaml: limit: expected an integer >= 1, got 'abc'``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.model.spec import SpecError, build_classifier, parse_feature_spec
from pipeline.selection import parse_space
from service.server import WORKER_CLASSES

__all__ = ["ConfigError", "ServiceConfig", "TrainConfig", "check_classifier", "check_features", "read_document",
           "service_options", "validate"]

PositiveInt = Annotated[int, Field(ge=1)]
Port = Annotated[int, Field(ge=0, le=65535)]


class ConfigError(ValueError):
    """A config file or value that breaks the schema; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SearchConfig(_Strict):
    """A coarse-to-fine random search of the classifier's parameters before training."""

    space: str = Field(description="a search space such as 'learning_rate=log:1e-4:1e-1,reg=log:1e-6:1e-2'")
    trials: PositiveInt = Field(10, description="an integer >= 1 (settings tried per stage)")
    stages: PositiveInt = Field(2, description="an integer >= 1 (one coarse stage, then fine ones)")
    folds: Annotated[int, Field(ge=0)] = Field(0, description="0 (a validation hold-out) or an integer >= 2")

    @field_validator("space")
    @classmethod
    def _space(cls, value):
        parse_space(value)
        return value

    @field_validator("folds")
    @classmethod
    def _folds(cls, value):
        if value == 1:
            raise ValueError("expected 0 (a validation hold-out) or an integer >= 2, got 1")
        return value


class TrainConfig(_Strict):
    """The arguments of :func:`cvpipe.commands.train` a config file may hold.

    Every key is optional in a file (the command line may give the rest);
    :func:`validate` with ``required`` checks the merged whole.
    """

    dataset: str | None = Field(None, description="a dataset name or path such as 'fashion-mnist'")
    features: Any = Field(None, description="a feature spec: a string such as 'hog:pixels_per_cell=7x7', a list "
                                            "of {name, params} or a mapping name -> params")
    classifier: Any = Field(None, description="a classifier spec: a string such as 'softmax:n_epochs=30' or a "
                                              "mapping {name, params}")
    out: str | None = Field(None, description="a model folder such as models/NAME")
    limit: PositiveInt | None = Field(None, description="an integer >= 1")
    seed: Annotated[int, Field(ge=0)] = Field(0, description="an integer >= 0")
    search: SearchConfig | None = Field(None, description="a mapping {space, trials, stages, folds}")
    test_split: str | None = Field("test", description="a split name such as 'test', or null")
    scaler: bool = Field(True, description="true (standardize each feature before the classifier) or false (the "
                                           "features as they are: raw pixels in [0, 1] for a convnet)")

    @field_validator("features")
    @classmethod
    def _features(cls, value):
        if value is None:
            return value
        if not isinstance(value, (str, list, dict)):
            raise ValueError(f"expected a feature spec string, a list of {{name, params}} or a mapping name -> "
                             f"params, got {_short(value)}")
        check_features(value)
        return value

    @field_validator("classifier")
    @classmethod
    def _classifier(cls, value):
        if value is None:
            return value
        if not isinstance(value, (str, dict)):
            raise ValueError(f"expected a classifier spec string or a mapping {{name, params}}, got {_short(value)}")
        check_classifier(value)
        return value


class ServiceConfig(_Strict):
    """The settings of ``cvpipe serve``: the server's, then the app's (``CVPIPE_<KEY>``).

    A key left out (or null) takes the command line's default, and for the app's keys
    the environment's ``CVPIPE_*`` value or the app's default (:mod:`service.app`).
    """

    models: str | None = Field(None, description="a folder of model folders (NAME/manifest.json)")
    host: str | None = Field(None, description="an address to listen on, such as 127.0.0.1")
    port: Port | None = Field(None, description="a port number in 0..65535")
    workers: PositiveInt | None = Field(None, description="an integer >= 1 (worker processes)")
    threads: PositiveInt | None = Field(None, description="an integer >= 1 (threads per worker)")
    worker_class: Literal[tuple(WORKER_CLASSES)] | None = Field(
        None, description=f"one of {', '.join(WORKER_CLASSES)}")
    timeout: PositiveInt | None = Field(None, description="an integer >= 1 (seconds before a silent worker "
                                                          "is replaced)")
    graceful_timeout: PositiveInt | None = Field(None, description="an integer >= 1 (seconds)")
    keepalive: Annotated[int, Field(ge=0)] | None = Field(None, description="an integer >= 0 (seconds)")
    max_requests: Annotated[int, Field(ge=0)] | None = Field(None, description="an integer >= 0 (0: never "
                                                                               "recycle a worker)")
    access_log: str | None = Field(None, description="'-' (stdout) or a file path")
    read_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="a number of seconds > 0")
    default_model: str | None = Field(None, description="a model name")
    api_token: str | None = Field(None, description="a bearer token")
    max_bytes: PositiveInt | None = Field(None, description="an integer >= 1 (bytes of a request body)")
    max_pixels: PositiveInt | None = Field(None, description="an integer >= 1 (pixels of one image)")
    max_request_pixels: PositiveInt | None = Field(None, description="an integer >= 1 (pixels of a request)")
    max_images: PositiveInt | None = Field(None, description="an integer >= 1 (images of a request)")
    buffer_bytes: PositiveInt | None = Field(None, description="an integer >= 1 (bytes of unfinished requests "
                                                               "a worker holds)")
    reload_interval: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="a number of seconds >= 0")
    device: Literal["cpu", "gpu"] | None = Field(None, description="cpu or gpu")

    @field_validator("access_log")
    @classmethod
    def _access_log(cls, value):  # else gunicorn's own two lines and exit status 1, after the start
        if value is not None and value != "-" and not Path(value).parent.is_dir():
            raise ValueError(f"expected '-' (stdout) or a file path in an existing folder, got {value!r}")
        return value

    @field_validator("read_timeout", "reload_interval", mode="before")
    @classmethod
    def _number(cls, value):  # strict floats refuse 15; an int is a number of seconds too
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: Keys of :class:`ServiceConfig` that :func:`service.server.serve` takes as keywords.
_SERVE_KEYWORDS = ("threads", "worker_class", "timeout", "graceful_timeout", "keepalive", "max_requests",
                   "access_log", "read_timeout", "default_model", "api_token", "max_bytes", "max_pixels")
#: Keys passed to the app through the environment only (``serve`` has no keyword for them).
_ENV_ONLY = ("max_request_pixels", "max_images", "buffer_bytes", "reload_interval", "device")


def check_features(spec):
    """Build the extractors of a feature spec and check their parameters, without fitting.

    Raises
    ------
    ValueError
        A :class:`~pipeline.model.spec.SpecError` (unknown name or key) or a parameter out
        of range (``orientations must be an integer >= 1, got 0``).
    """
    for _, extractor in parse_feature_spec(spec):
        _check_params(extractor)
    return spec


def check_classifier(spec):
    """Build the classifier of a spec and check its parameters, without fitting (see :func:`check_features`)."""
    _check_params(build_classifier(spec))
    return spec


def _check_params(estimator):
    # scikit-learn's own estimators and cvpipe's (compute.params.ParameterConstraintsMixin)
    # both check their declared constraints here, as fit would
    if hasattr(estimator, "_validate_params"):
        estimator._validate_params()


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _field(model, loc):
    """The pydantic field at ``loc`` (a path of keys) of ``model``, or None."""
    field = None
    for key in loc:
        fields = getattr(model, "model_fields", {})
        if key not in fields:
            return field if isinstance(key, int) else None
        field = fields[key]
        annotation = field.annotation
        model = next((a for a in getattr(annotation, "__args__", (annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return field


def _parent(model, loc):
    """The model class that holds the key at the end of ``loc``."""
    for key in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(key)
        if field is None:
            return model
        annotation = field.annotation
        model = next((a for a in getattr(annotation, "__args__", (annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)), model)
    return model


def _one_line(exc, model, source):
    """A pydantic ``ValidationError`` as one line: ``source: key: expected ..., got ...; key: ...``."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
        key = ".".join(str(p) for p in loc) or "(document)"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(_parent(model, loc).model_fields)
            problems.append(f"{key}: unknown key; expected one of {allowed}")
        elif error["type"] == "missing":
            field = _field(model, loc)
            problems.append(f"{key}: missing; expected {field.description if field else 'a value'}")
        elif error["type"] in ("value_error", "assertion_error"):
            reason = str(error.get("ctx", {}).get("error", error["msg"]))
            problems.append(f"{key}: {' '.join(reason.split())}")
        else:
            field = _field(model, loc)
            expected = field.description if field is not None and field.description else error["msg"].lower()
            problems.append(f"{key}: expected {expected}, got {_short(error['input'])}")
    prefix = f"{source}: " if source else ""
    return prefix + "; ".join(problems)


def validate(model, doc, source="", required=()):
    """Check the mapping ``doc`` against ``model``; return the resolved values (defaults filled in).

    Parameters
    ----------
    model : type
        :class:`TrainConfig` or :class:`ServiceConfig`.
    doc : dict
    source : str
        What to name in a message (the file, or ``"--config"``).
    required : sequence of str
        Keys that must be there and not null.

    Returns
    -------
    dict
        Every key of ``model``, as validated.

    Raises
    ------
    ConfigError
        One line: the source, each key at fault, what was expected and what arrived.
    """
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping of {', '.join(model.model_fields)}, got "
                          f"{type(doc).__name__} {_short(doc, 40)}")
    try:
        values = model.model_validate(doc).model_dump()
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, model, source)) from None
    except SpecError as exc:  # raised outside a validator's wrapping (never expected; kept one line)
        raise ConfigError(f"{source}: {' '.join(str(exc).split())}") from None
    missing = [k for k in required if values.get(k) is None]
    if missing:
        raise ConfigError(f"{source}: missing {', '.join(missing)}; expected "
                          + "; ".join(f"{k}: {model.model_fields[k].description}" for k in missing))
    return values


def read_document(path):
    """The mapping in a YAML or JSON file; a missing file or bad syntax is a one-line ``ConfigError``."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {path} {what}")
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: values nested deeper "
                          "than a config needs (Python's recursion limit)") from None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        problem = " ".join(str(exc).split())  # one line: YAML's messages span several
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {problem}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(doc).__name__} "
                          f"{_short(doc, 40)}")
    return doc


def service_options(config, environ=None):
    """Keyword arguments of :func:`service.server.serve` for a resolved :class:`ServiceConfig`.

    Settings the app reads only from the environment travel in ``env`` (a copy of
    ``environ``, default this process's, with ``CVPIPE_<KEY>`` set).
    """
    options = {k: config[k] for k in _SERVE_KEYWORDS if config.get(k) is not None}
    env = dict(os.environ if environ is None else environ)
    env.update({f"CVPIPE_{k.upper()}": str(config[k]) for k in _ENV_ONLY if config.get(k) is not None})
    options["env"] = env
    return options
