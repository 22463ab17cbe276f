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
    (Interval(Real, 0, None, closed="neither"), [1e-9, 3, np.float32(0.5), 1e300], [0, -1.0, math.nan, False,
                                                                                 math.inf, np.float32("inf")],
     "a positive number"),
    (Interval(Real, 0, None, closed="left"), [0, 0.0, 5], [-1e-12, math.nan], "a number >= 0"),
    (Interval(Real, None, 2, closed="right"), [-5, 2], [2.5], "a number <= 2"),
    (Interval(Real, 0, 1, closed="right"), [1, 0.5, np.float64(1.0)], [0, 1.5, True], "a number in (0, 1]"),
    (Interval(Real, 0, 1, closed="left"), [0, 0.99], [1.0, -0.1], "a number in [0, 1)"),
    (Interval(Real, -math.inf, math.inf, closed="neither"), [-1e300, 0, 7], [math.inf, -math.inf, math.nan],
     "a finite number"),
    (Interval(Real, None, None, closed="neither"), [-1e300, -3], [math.nan, "1", math.inf, -math.inf], "a number"),
    (Interval(Real, 0, math.inf, closed="both"), [0, math.inf], [-1, math.nan], "a number in [0, inf]"),
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


# --------------------------------------------------------- odd value types (red team)
@pytest.mark.parametrize("value", [np.int8(3), np.int16(3), np.int32(3), np.uint16(3), np.uint64(3), 10**30])
def test_numpy_and_huge_integers_are_integers(value):
    assert AT_LEAST_ONE.accepts(value)
    check_params(_Estimator(size=value))


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 3.0, np.float32(3.0), np.float64(3.0), math.nan,
                                   math.inf, "3", b"3", [3], (3,), np.array(3), np.array([3]), 3 + 0j])
def test_what_is_not_an_integer_is_refused_with_its_repr(value):
    assert not AT_LEAST_ONE.accepts(value)
    with pytest.raises(ValueError, match=r"^size must be None or an integer >= 1, got "):
        check_params(_Estimator(size=value))


def test_negative_zero_is_zero():
    assert Interval(Real, 0, None, closed="left").accepts(-0.0)  # a number >= 0
    assert not Interval(Real, 0, None, closed="neither").accepts(-0.0)  # a positive number
    assert not Interval(Real, 0, None, closed="neither").accepts(np.float32(-0.0))
    assert Interval(Real, 0, 1, closed="left").accepts(np.float64(-0.0))


@pytest.mark.parametrize("value", [np.float32(math.nan), np.float64(math.nan), np.float16(math.nan)])
def test_numpy_nans_are_refused(value):
    assert not Interval(Real, None, None, closed="neither").accepts(value)
    assert not Interval(Real, 0, None, closed="left").accepts(value)


def test_fractions_are_numbers_and_decimals_are_not():
    from decimal import Decimal
    from fractions import Fraction

    positive = Interval(Real, 0, None, closed="neither")
    assert positive.accepts(Fraction(1, 1000)) and not positive.accepts(Decimal("0.001"))


@pytest.mark.parametrize("value, ok", [((4, 4), True), ([4, 4], True), (np.array([4, 4]), True),
                                       ((np.int64(4), np.uint8(4)), True), (np.array([[4, 4]]), False),
                                       (np.array([4.0, 4.0]), False), ((4, True), False), ((4, 4.0), False),
                                       ({4, 5}, False), ("44", False), (range(4, 6), False), ((4, math.nan), False)])
def test_pairs_are_tuples_lists_or_flat_arrays_of_integers(value, ok):
    assert TupleOf(AT_LEAST_ONE, length=2).accepts(value) is ok


@pytest.mark.parametrize("make, param, value, message", [
    ("hog", "orientations", True, "orientations must be an integer >= 1, got True"),
    ("hog", "pixels_per_cell", (4.0, 4.0), r"pixels_per_cell must be a pair of integers >= 1, got \(4\.0, 4\.0\)"),
    ("hog", "transform_sqrt", 1, "transform_sqrt must be True or False, got 1"),
    ("hog", "device", "tpu", r"device must be one of \('auto', 'cpu', 'gpu'\), got 'tpu'"),
    ("raw", "grayscale", 0, "grayscale must be True or False, got 0"),
    ("raw", "size", np.float64(4.0), "size must be None, an integer >= 1 or a pair"),
    ("color", "value_range", (0.0, math.nan), "value_range must be None or a pair .* got \\(0\\.0, nan\\)"),
    ("color", "value_range", (-0.0, 0.0), "with low < high, got \\(-0\\.0, 0\\.0\\)"),
    ("color", "bins", np.bool_(True), "bins must be an integer >= 1, got "),
    ("stack", "raw__size", 0, "size must be None, an integer >= 1 or a pair"),
])
def test_set_params_after_fit_is_checked_again_in_transform(make, param, value, message):
    from features import HOG, ColorHistogram, FeatureStack, RawPixels

    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    extractor = {"hog": lambda: HOG(pixels_per_cell=(4, 4)), "raw": RawPixels, "color": ColorHistogram,
                 "stack": lambda: FeatureStack([("raw", RawPixels(size=2))])}[make]().fit(images)
    extractor.set_params(**{param: value})
    with pytest.raises(ValueError, match=message):
        extractor.transform(images)


@pytest.mark.parametrize("value, ok", [(np.int64(3), True), (np.uint8(3), True), (3.0, False), (True, False),
                                       (0, False), (-0, False)])
def test_knn_checks_n_neighbors_again_in_predict(value, ok):
    from classifiers import KNearestNeighbor

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 4)).astype(np.float32), np.arange(20) % 2
    knn = KNearestNeighbor().fit(X, y).set_params(n_neighbors=value)
    if ok:
        assert knn.predict(X).shape == (20,)
    else:
        with pytest.raises(ValueError, match=r"n_neighbors must be an integer >= 1, got "):
            knn.predict(X)


@pytest.mark.parametrize("cls", ["Softmax", "LinearSVM", "TwoLayerNet", "KNearestNeighbor"])
def test_a_bad_device_set_after_fit_is_refused_in_predict(cls):
    import classifiers

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 4)).astype(np.float32), np.arange(20) % 2
    kwargs = {} if cls == "KNearestNeighbor" else {"n_epochs": 1, "random_state": 0}
    model = getattr(classifiers, cls)(**kwargs).fit(X, y).set_params(device="bogus")
    with pytest.raises(ValueError, match=r"device must be one of \('auto', 'cpu', 'gpu'\), got 'bogus'"):
        model.predict(X)


@pytest.mark.parametrize("param, value, message", [
    ("batch_size", 7.0, "batch_size must be an integer >= 1, got 7.0"),
    ("batch_size", True, "batch_size must be an integer >= 1, got True"),
    ("learning_rate", math.nan, "learning_rate must be a positive number, got nan"),
    ("learning_rate", -0.0, "learning_rate must be a positive number, got -0.0"),
    ("reg", -1e-12, "reg must be a number >= 0"),
    ("learning_rate_decay", np.float32(0.0), "learning_rate_decay must be a number in \\(0, 1\\]"),
    ("dtype", "float16", "dtype must be 'float32' or 'float64'"),
    ("dtype", np.dtype(">f4"), "dtype must be 'float32' or 'float64'"),
])
def test_training_parameters_of_the_wrong_type_are_refused_in_fit(param, value, message):
    from classifiers import LinearSVM, Softmax, TwoLayerNet

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 4)).astype(np.float32), np.arange(20) % 2
    for cls in (Softmax, LinearSVM, TwoLayerNet):
        with pytest.raises(ValueError, match=message):
            cls(n_epochs=1, **{param: value}).fit(X, y)


@pytest.mark.parametrize("param, value", [("batch_size", np.int64(7)), ("n_epochs", np.uint8(1)),
                                          ("learning_rate_decay", np.float32(1.0)), ("reg", -0.0),
                                          ("batch_size", 10**30)])
def test_numpy_scalars_and_negative_zero_train(param, value):
    from classifiers import Softmax

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 4)).astype(np.float32), np.arange(20) % 2
    params = {"n_epochs": 1, "random_state": 0, param: value}
    assert Softmax(**params).fit(X, y).predict(X).shape == (20,)
