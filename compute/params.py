"""Hyperparameter constraints declared as data, and the one helper that checks them.

An estimator lists what each parameter may be, as scikit-learn's do::

    _parameter_constraints = {
        "n_words": [Interval(Integral, 1, None, closed="left")],
        "size": [None, Interval(Integral, 1, None, closed="left"), TupleOf(...)],
    }

and calls :func:`check_params` where it validates (in ``fit``, never in ``__init__``).
A value is valid when any one constraint of its list accepts it; ``None`` in a list
accepts ``None``. Each constraint describes itself, so that the error says what was
expected and what arrived. Booleans are never numbers here, NumPy scalars are.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

_CLOSED = ("left", "right", "both", "neither")


class Interval:
    """Numbers of ``type`` between ``left`` and ``right`` (``None``: unbounded).

    Parameters
    ----------
    type : {numbers.Integral, numbers.Real}
    left, right : int, float or None
        ``None``: unbounded on that side over the finite numbers (an infinite value belongs
        to an interval only as one of its closed ends).
    closed : {"left", "right", "both", "neither"}
        Which ends belong to the interval.
    """

    def __init__(self, type, left, right, *, closed):
        if type not in (Integral, Real) or closed not in _CLOSED:
            raise ValueError(f"expected type Integral or Real and closed in {_CLOSED}, "
                             f"got {type!r} and {closed!r}")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def accepts(self, value):
        if not isinstance(value, self.type) or isinstance(value, (bool, np.bool_)) or value != value:
            return False  # (value != value: NaN)
        low = self.closed in ("left", "both")
        high = self.closed in ("right", "both")
        if isinstance(value, Real) and not isinstance(value, Integral) and math.isinf(value):
            # An unbounded end (None) is unbounded over the finite numbers: inf is a value only
            # where the interval names it as a closed end.
            return bool((value == self.left and low) or (value == self.right and high))
        return bool((self.left is None or (value >= self.left if low else value > self.left))
                    and (self.right is None or (value <= self.right if high else value < self.right)))

    def describe(self, plural=False):
        """``"an integer >= 1"``, ``"a number in (0, 1]"``; ``plural``: ``"integers >= 1"``."""
        noun = ("integer" if self.type is Integral else "number") + ("s" if plural else "")
        low, high = self.closed in ("left", "both"), self.closed in ("right", "both")
        if self.left == 0 and not low and self.right is None:
            words = f"positive {noun}"
        elif self.left == -math.inf and self.right == math.inf:
            words = f"finite {noun}"
        elif self.left is None and self.right is None:
            words = noun
        elif self.right is None:
            words = f"{noun} {'>=' if low else '>'} {self.left}"
        elif self.left is None:
            words = f"{noun} {'<=' if high else '<'} {self.right}"
        else:
            words = f"{noun} in {'[' if low else '('}{self.left}, {self.right}{']' if high else ')'}"
        return words if plural else ("an " if words[0] in "aeiou" else "a ") + words


class StrOptions:
    """One of the strings ``options`` (a tuple: the message lists them in its order)."""

    def __init__(self, options):
        self.options = tuple(options)

    def accepts(self, value):
        return isinstance(value, str) and value in self.options

    def describe(self):
        return f"one of {self.options}"


class Boolean:
    """``True`` or ``False`` (Python or NumPy booleans; not 0 and 1)."""

    def accepts(self, value):
        return isinstance(value, (bool, np.bool_))

    def describe(self):
        return "True or False"


class FloatDtype:
    """float32 or float64, as a name (``"float32"``), a NumPy dtype or a scalar type."""

    def accepts(self, value):
        try:  # (np.dtype(None) is float64: None is refused first)
            return value is not None and np.dtype(value) in (np.float32, np.float64)
        except (TypeError, ValueError):
            return False

    def describe(self):
        return "'float32' or 'float64'"


class TupleOf:
    """A tuple (or list, or 1-d array) of numbers that each meet ``element``.

    Parameters
    ----------
    element : Interval
    length : int, optional
        The required length (any length, ``()`` included, if None).
    names : tuple of str, optional
        Names of the entries, for the message (``("height", "width")``); sets ``length``.
    increasing : bool, default=False
        Entries must increase strictly (``low < high``).
    """

    def __init__(self, element, *, length=None, names=None, increasing=False):
        self.element, self.names, self.increasing = element, names, increasing
        self.length = len(names) if names else length

    def accepts(self, value):
        if not (isinstance(value, (tuple, list)) or isinstance(value, np.ndarray) and value.ndim == 1):
            return False
        items = list(value)
        return ((self.length is None or len(items) == self.length)
                and all(self.element.accepts(v) for v in items)
                and (not self.increasing or all(a < b for a, b in zip(items, items[1:]))))

    def describe(self):
        kind = "a pair" if self.length == 2 else "a tuple"
        names = f" ({', '.join(self.names)})" if self.names else ""
        count = "" if self.length in (None, 2) else f"{self.length} "
        order = "" if not self.increasing else f" with {' < '.join(self.names)}" if self.names else ", increasing"
        return f"{kind}{names} of {count}{self.element.describe(plural=True)}{order}"


class Satisfies:
    """Values for which ``test(value)`` is true; ``description`` says which, for the message."""

    def __init__(self, test, description):
        self.test, self.description = test, description

    def accepts(self, value):
        return bool(self.test(value))

    def describe(self):
        return self.description


def describe(constraints):
    """``"None, an integer >= 1 or a pair (height, width) of integers >= 1"``."""
    words = ["None" if c is None else c.describe() for c in constraints]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def check_params(estimator):
    """Check ``estimator``'s parameters against ``type(estimator)._parameter_constraints``.

    Parameters
    ----------
    estimator : object
        Its class maps parameter names to lists of constraints; a parameter is valid
        when one of its constraints accepts it. Parameters not in the dict are not checked.

    Raises
    ------
    ValueError
        ``"<name> must be <what the constraints accept>, got <value>"``, for the first
        parameter (in the dict's order) that no constraint accepts.
    """
    for name, constraints in type(estimator)._parameter_constraints.items():
        value = getattr(estimator, name)
        if not any(value is None if c is None else c.accepts(value) for c in constraints):
            raise ValueError(f"{name} must be {describe(constraints)}, got {value!r}")


class ParameterConstraintsMixin:
    """Gives an estimator scikit-learn's ``_validate_params`` in this module's terms.

    scikit-learn's fit machinery (``sklearn.base._fit_context``) calls
    ``estimator._validate_params()``, which reads ``_parameter_constraints`` in scikit-learn's
    own vocabulary. An estimator here declares its constraints in this module's, so this
    mixin, placed before ``BaseEstimator``, makes that call run :func:`check_params`: the
    same checks and messages, whichever of the two asks.
    """

    def _validate_params(self):
        check_params(self)

