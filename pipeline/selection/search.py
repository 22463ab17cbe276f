"""Random hyperparameter search, coarse then fine, in parallel on joblib or Dask.

The space is written as text, one item per parameter::

    learning_rate=log:1e-4:1e-1, reg=log:1e-6:1e-2, hidden_sizes=choice:128|256|256x128,
    dropout=uniform:0:0.5, n_epochs=int:5:30

``log`` draws log-uniformly, ``uniform`` uniformly, ``int`` a uniform integer,
``choice`` one of the listed values (``256x128`` is the tuple ``(256, 128)``). The
coarse stage draws ``n_trials`` settings over the whole space; each fine stage draws as
many again in a box around the best so far: a quarter of the (log-)range of each
continuous parameter, centred on the best value and clipped to the bounds, with
``choice`` parameters fixed to their best value (cs231n's coarse-to-fine search).
Trials are scored on a held-out validation fraction of the training data, or by
k-fold cross-validation, after standardization.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed, parallel_config
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from pipeline.model.spec import SpecError, parse_value

logger = logging.getLogger(__name__)

KINDS = ("log", "uniform", "int", "choice")


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: ``kind`` in KINDS, bounds ``low``/``high`` or ``choices``."""

    name: str
    kind: str
    low: float = None
    high: float = None
    choices: tuple = ()

    def draw(self, rng, low=None, high=None):
        low, high = (self.low if low is None else low), (self.high if high is None else high)
        if self.kind == "log":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.kind == "uniform":
            return float(rng.uniform(low, high))
        if self.kind == "int":
            return int(rng.integers(int(round(low)), int(round(high)) + 1))
        return self.choices[int(rng.integers(len(self.choices)))]

    def narrow(self, best, fraction=0.25):
        """Bounds of the fine stage around ``best``: ``fraction`` of the (log-)range, clipped."""
        if self.kind == "choice":
            return None
        to, back = (math.log, math.exp) if self.kind == "log" else (float, float)
        half = fraction * (to(self.high) - to(self.low)) / 2
        centre = to(best)
        return back(max(to(self.low), centre - half)), back(min(to(self.high), centre + half))


def parse_space(text):
    """Parse a search space (see the module docstring) into a list of ``Dimension``."""
    dims = []
    for item in (t.strip() for t in text.replace("\n", ",").split(",")):
        if not item:
            continue
        name, eq, rest = item.partition("=")
        kind, _, args = rest.partition(":")
        name, kind = name.strip(), kind.strip()
        if not eq or not name or kind not in KINDS:
            raise SpecError(f"expected name=KIND:ARGS with KIND one of {KINDS}, got {item!r}")
        if kind == "choice":
            choices = tuple(parse_value(v.strip()) for v in args.split("|") if v.strip())
            if not choices:
                raise SpecError(f"{name}: choice needs values separated by '|', got {args!r}")
            dims.append(Dimension(name, kind, choices=choices))
            continue
        try:
            low, high = (float(v) for v in args.split(":"))
        except ValueError:
            raise SpecError(f"{name}: expected {kind}:LOW:HIGH with two numbers, got {args!r}") from None
        if not math.isfinite(high - low) or (kind == "int" and max(abs(low), abs(high)) >= 2**62):
            raise SpecError(f"{name}: expected finite bounds a finite distance apart (integers below 2**62 for "
                            f"int), got {low}, {high}")
        if not low < high or (kind == "log" and low <= 0):
            raise SpecError(f"{name}: expected 0 < LOW < HIGH for log, LOW < HIGH otherwise; got {low}, {high}")
        dims.append(Dimension(name, kind, low, high))
    if not dims:
        raise SpecError("the search space is empty; expected e.g. 'learning_rate=log:1e-4:1e-1'")
    return dims


@dataclass
class SearchResult:
    """Every trial (params, score, seconds, stage) and the best of them."""

    trials: list = field(default_factory=list)

    @property
    def best(self):
        return max(self.trials, key=lambda t: t["score"])

    def to_dict(self):
        """Best first, then every trial by score; a failed trial's score (-inf) is None (JSON has no infinity)."""
        def plain(trial):
            return {**trial, "score": trial["score"] if math.isfinite(trial["score"]) else None}

        return {"best": plain(self.best), "trials": [plain(t) for t in sorted(self.trials, key=lambda t: -t["score"])]}


def _score(model, X, y, params, folds, validation_fraction, seed):
    """Fit one setting and return (params, score, seconds); a failing fit scores -inf."""
    t0 = time.perf_counter()
    model = clone(model).set_params(**{f"classifier__{k}": v for k, v in params.items()})
    try:
        if folds:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            score = float(np.mean(cross_val_score(model, X, y, cv=cv)))
        else:
            X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=validation_fraction,
                                                      stratify=y, random_state=seed)
            score = float(model.fit(X_tr, y_tr).score(X_va, y_va))
        error = None
    except (ValueError, FloatingPointError, ArithmeticError) as exc:
        score, error = float("-inf"), f"{type(exc).__name__}: {exc}"
    return {"params": params, "score": score, "seconds": round(time.perf_counter() - t0, 3), "error": error}


def random_search(classifier, X, y, space, *, n_trials=10, n_stages=2, folds=0, validation_fraction=0.2,
                  n_jobs=1, scheduler=None, random_state=0, scaler=True, progress=True):
    """Coarse-to-fine random search of classifier hyperparameters on feature vectors.

    Parameters
    ----------
    classifier : estimator
        Unfitted; standardized features are fed to it (``StandardScaler`` first, fitted on
        each trial's training part), or with ``scaler=False`` the features as they are. One with
        a ``random_state`` parameter left at None gets the search's ``random_state``, so
        every trial is reproducible.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    space : str or list of Dimension
    n_trials : int
        Settings drawn per stage.
    n_stages : int
        1: coarse only; 2 or more: each further stage narrows around the best so far.
    folds : int
        0: score on a stratified ``validation_fraction`` hold-out; k >= 2: k-fold CV.
    n_jobs : int
        Trials run at once (joblib processes, or Dask workers when ``scheduler``). The
        result does not depend on it: trials are kept in the order they were drawn.
    scheduler : str, optional
        Dask scheduler address: trials run on the cluster through joblib's Dask backend.
    random_state : int
    scaler : bool, default=True

    Returns
    -------
    SearchResult
    """
    dims = parse_space(space) if isinstance(space, str) else list(space)
    if n_trials < 1 or n_stages < 1:
        raise ValueError(f"n_trials and n_stages must be >= 1, got {n_trials} and {n_stages}")
    known = classifier.get_params()
    unknown = [d.name for d in dims if d.name not in known]
    if unknown:
        raise SpecError(f"{type(classifier).__name__} has no parameter(s) {unknown}; expected some of {sorted(known)}")
    if classifier.get_params().get("random_state", 0) is None:
        classifier = clone(classifier).set_params(random_state=random_state)
    model = make_pipeline(*([StandardScaler()] if scaler else []), classifier)
    model.steps[-1] = ("classifier", classifier)
    rng = np.random.default_rng(random_state)
    result = SearchResult()
    client = None
    if scheduler is not None:
        from distributed import Client

        client = Client(scheduler)
    try:
        bar = tqdm(total=n_trials * n_stages, desc="search", unit="trial", disable=not progress)
        with bar, parallel_config(backend="dask" if client is not None else "loky"):
            for stage in range(n_stages):
                bounds = {} if stage == 0 else {d.name: d.narrow(result.best["params"][d.name]) for d in dims}
                settings = []
                for _ in range(n_trials):
                    params = {}
                    for d in dims:
                        if stage and d.kind == "choice":
                            params[d.name] = result.best["params"][d.name]
                        else:
                            params[d.name] = d.draw(rng, *(bounds.get(d.name) or (None, None)))
                    settings.append(params)
                runs = Parallel(n_jobs=n_jobs, return_as="generator")(  # in the order drawn
                    delayed(_score)(model, X, y, p, folds, validation_fraction, random_state) for p in settings)
                for trial in runs:
                    trial["stage"] = "coarse" if stage == 0 else f"fine{stage}"
                    result.trials.append(trial)
                    bar.update(1)
                logger.info("stage %d best %.4f with %s", stage, result.best["score"], result.best["params"])
    finally:
        if client is not None:
            client.close()
    if not np.isfinite(result.best["score"]):
        raise ValueError(f"every trial failed; first error: {result.trials[0]['error']}")
    return result
