"""compute.params: each constraint accepts, refuses and describes; check_params says which failed."""
import math
from numbers import Integral, Real

import numpy as np
import pytest

from compute.params import Boolean, FloatDtype, Interval, Satisfies, StrOptions, TupleOf, check_params, describe

AT_LEAST_ONE = Interval(Integral, 1, None, closed="left")


@pytest.mark.parametrize("constraint, good, bad, description", [
    (AT_LEAST_ONE, [1, 7, np.int64(3), np.uint8(1)], [0, -2, 1.0, 2.5, True, np.bool_(True), "3", None],
     "an integer >= 1"),
    (Interval(Integral, 0, 10, closed="neither"), [1, 9], [0, 10], "an integer in (0, 10)"),
    (Interval(Real, 0, None, closed="neither"), [1e-9, 3, np.float32(0.5), math.inf], [0, -1.0, math.nan, False],
     "a positive number"),
    (Interval(Real, 0, None, closed="left"), [0, 0.0, 5], [-1e-12, math.nan], "a number >= 0"),
    (Interval(Real, None, 2, closed="right"), [-5, 2], [2.5], "a number <= 2"),
    (Interval(Real, 0, 1, closed="right"), [1, 0.5, np.float64(1.0)], [0, 1.5, True], "a number in (0, 1]"),
    (Interval(Real, 0, 1, closed="left"), [0, 0.99], [1.0, -0.1], "a number in [0, 1)"),
    (Interval(Real, -math.inf, math.inf, closed="neither"), [-1e300, 0, 7], [math.inf, -math.inf, math.nan],
     "a finite number"),
    (Interval(Real, None, None, closed="neither"), [math.inf, -3], [math.nan, "1"], "a number"),
    (StrOptions(("l1", "l2")), ["l1", "l2"], ["L1", "cosine", None, 1, ["l1"]], "one of ('l1', 'l2')"),
    (Boolean(), [True, False, np.bool_(False)], [0, 1, "yes", None], "True or False"),
    (FloatDtype(), ["float32", "float64", "f4", np.float32, np.float64, np.dtype("float32"), float],
     ["float16", np.float16, "int32", int, "no-such-type", None, 32], "'float32' or 'float64'"),
    (TupleOf(AT_LEAST_ONE, length=2), [(8, 8), [3, 4], np.array([2, 5]), (np.int64(1), 2)],
     [8, (8,), (8, 8, 8), (0, 8), (8.0, 8), (True, 8), "88", np.array([[8, 8]]), None],
     "a pair of integers >= 1"),
    (TupleOf(AT_LEAST_ONE), [(), (10,), [100, 50, 10]], [(10, 0), 10, ("a",)], "a tuple of integers >= 1"),
    (TupleOf(AT_LEAST_ONE, length=3), [(1, 2, 3)], [(1, 2)], "a tuple of 3 integers >= 1"),
    (TupleOf(AT_LEAST_ONE, names=("height", "width")), [(4, 6)], [(4,), 4], "a pair (height, width) of integers >= 1"),
    (TupleOf(Interval(Real, -math.inf, math.inf, closed="neither"), names=("low", "high"), increasing=True),
     [(0, 1), [0.2, 0.8], (-1, np.float32(0.5))], [(0.5, 0.5), (1, 0), (0, math.inf), "wide", (0, "1")],
     "a pair (low, high) of finite numbers with low < high"),
    (TupleOf(AT_LEAST_ONE, increasing=True), [(1, 2, 5)], [(1, 1)], "a tuple of integers >= 1, increasing"),
    (Satisfies(lambda v: isinstance(v, list) and len(v) > 0, "a non-empty list"), [[0]], [[], (0,)],
     "a non-empty list"),
])
def test_constraint_accepts_refuses_and_describes(constraint, good, bad, description):
    for value in good:
        assert constraint.accepts(value), value
    for value in bad:
        assert not constraint.accepts(value), value
    assert constraint.describe() == description


def test_interval_describes_plural_for_tuples():
    assert AT_LEAST_ONE.describe(plural=True) == "integers >= 1"
    assert Interval(Real, 0, None, closed="neither").describe(plural=True) == "positive numbers"


@pytest.mark.parametrize("args, closed", [((float, 0, 1), "left"), ((Integral, 0, 1), "open")])
def test_interval_refuses_a_bad_declaration(args, closed):
    with pytest.raises(ValueError, match="expected type Integral or Real and closed in"):
        Interval(*args, closed=closed)


def test_describe_joins_the_alternatives():
    assert describe([AT_LEAST_ONE]) == "an integer >= 1"
    assert describe([None, AT_LEAST_ONE]) == "None or an integer >= 1"
    assert describe([None, AT_LEAST_ONE, TupleOf(AT_LEAST_ONE, length=2)]) == (
        "None, an integer >= 1 or a pair of integers >= 1")


class _Estimator:
    _parameter_constraints = {
        "size": [None, AT_LEAST_ONE],
        "mode": [StrOptions(("hue", "joint"))],
        "init": [StrOptions(("he", "xavier")), Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, size=None, mode="hue", init="he", free="anything"):
        self.size, self.mode, self.init, self.free = size, mode, init, free


class _Extended(_Estimator):
    _parameter_constraints = {**_Estimator._parameter_constraints, "free": [Boolean()]}


@pytest.mark.parametrize("params", [{}, {"size": 3}, {"size": np.int32(3)}, {"init": 0.01}, {"init": "xavier"}])
def test_check_params_passes_valid_parameters(params):
    check_params(_Estimator(**params))  # "free" is declared nowhere: not checked


@pytest.mark.parametrize("params, message", [
    ({"size": 0}, "size must be None or an integer >= 1, got 0"),
    ({"size": True}, "size must be None or an integer >= 1, got True"),
    ({"mode": "rgb"}, "mode must be one of ('hue', 'joint'), got 'rgb'"),
    ({"init": -0.1}, "init must be one of ('he', 'xavier') or a positive number, got -0.1"),
    ({"init": "zeros", "mode": "rgb"}, "mode must be one of ('hue', 'joint'), got 'rgb'"),  # the dict's order
])
def test_check_params_names_the_first_bad_parameter(params, message):
    with pytest.raises(ValueError) as info:
        check_params(_Estimator(**params))
    assert str(info.value) == message


def test_check_params_reads_the_class_dict_a_subclass_extended():
    check_params(_Extended(free=True))
    with pytest.raises(ValueError, match=r"^free must be True or False, got 1$"):
        check_params(_Extended(free=1))


def test_scikit_learns_validate_params_runs_the_same_checks():
    """scikit-learn's fit machinery calls ``_validate_params``; every estimator here answers it
    with its own constraints and messages."""
    from classifiers import KNearestNeighbor, LinearSVM, Softmax, TwoLayerNet
    from features import HOG, BagOfVisualWords, ColorHistogram, FeatureStack, RawPixels

    estimators = [KNearestNeighbor(n_neighbors=0), LinearSVM(reg=-1), Softmax(reg=-1), TwoLayerNet(dropout=1.5),
                  HOG(orientations=0), BagOfVisualWords(n_words=0), ColorHistogram(bins=0), RawPixels(size=0),
                  FeatureStack([])]
    for est in estimators:
        with pytest.raises(ValueError, match=r" must be .*, got "):
            est._validate_params()
