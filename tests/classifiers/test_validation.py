"""The shortened predict-input check answers exactly as scikit-learn's full one."""
import numpy as np
import pytest
from sklearn.utils.validation import validate_data

from classifiers import KNearestNeighbor, LinearSVM, Softmax, TwoLayerNet
from classifiers._validation import check_predict_input


@pytest.fixture(params=[Softmax, LinearSVM, TwoLayerNet, KNearestNeighbor])
def fitted(request, rng):
    X, y = rng.standard_normal((40, 6)).astype(np.float32), np.arange(40) % 3
    kwargs = {} if request.param is KNearestNeighbor else {"n_epochs": 1, "random_state": 0}
    return request.param(**kwargs).fit(X, y)


def test_a_ready_array_is_returned_as_is(fitted, rng):
    X = rng.standard_normal((5, 6)).astype(np.float32)
    assert check_predict_input(fitted, X, np.float32) is X


@pytest.mark.parametrize("case", ["wrong_width", "nan", "inf", "float64", "list", "1d", "empty", "overflowing_sum"])
def test_anything_else_gets_the_full_check(fitted, rng, case):
    X = rng.standard_normal((5, 6)).astype(np.float32)
    X = {"wrong_width": X[:, :4], "nan": np.where(X > 1, np.nan, X), "inf": np.where(X > 1, np.inf, X),
         "float64": X.astype(np.float64), "list": X.tolist(), "1d": X[0], "empty": X[:0],
         "overflowing_sum": np.full((5, 6), 3e38, np.float32)}[case]
    try:
        expected = validate_data(fitted, X, reset=False, dtype=np.float32)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)[:30].replace("(", r"\(").replace(")", r"\)")):
            check_predict_input(fitted, X, np.float32)
        return
    got = check_predict_input(fitted, X, np.float32)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_an_estimator_fitted_with_feature_names_still_warns(fitted, rng):
    """Fitted on a dataframe, an estimator warns when it predicts a bare array: the
    shortcut must leave that to scikit-learn's check."""
    fitted.feature_names_in_ = np.array(list("abcdef"), dtype=object)
    X = rng.standard_normal((5, 6)).astype(np.float32)
    with pytest.warns(UserWarning, match="feature names"):
        check_predict_input(fitted, X, np.float32)


# ------------------------------------------------- inputs of every kind (red team)
def _memmap(tmp_path, array, mode):
    path = tmp_path / "x.npy"
    np.save(path, array)
    return np.load(path, mmap_mode=mode)


CASES = {
    "float32 F-ordered": lambda X, tmp: np.asfortranarray(X),
    "float64 F-ordered": lambda X, tmp: np.asfortranarray(X.astype(np.float64)),
    "read-only memmap": lambda X, tmp: _memmap(tmp, X, "r"),
    "copy-on-write memmap": lambda X, tmp: _memmap(tmp, X, "c"),
    "read-only array": lambda X, tmp: (lambda a: (a.setflags(write=False), a)[1])(X.copy()),
    "strided view": lambda X, tmp: np.repeat(np.repeat(X, 2, axis=0), 2, axis=1)[::2, ::2],
    "transposed view": lambda X, tmp: np.ascontiguousarray(X.T).T,
    "negative strides": lambda X, tmp: X[::-1, ::-1],
    "int64": lambda X, tmp: (X * 10).astype(np.int64),
    "uint8": lambda X, tmp: np.abs(X * 10).astype(np.uint8),
    "bool": lambda X, tmp: X > 0,
    "float16": lambda X, tmp: X.astype(np.float16),
    "longdouble": lambda X, tmp: X.astype(np.longdouble),
    "big-endian float32": lambda X, tmp: X.astype(">f4"),
    "big-endian float64": lambda X, tmp: X.astype(">f8"),
    "object": lambda X, tmp: X.astype(object),
    "complex": lambda X, tmp: X.astype(np.complex64),
    "matrix": lambda X, tmp: np.asmatrix(X),
    "negative zeros": lambda X, tmp: np.full_like(X, -0.0),
    "subnormals": lambda X, tmp: np.full_like(X, 1e-45),
    "largest float32": lambda X, tmp: np.full((1, X.shape[1]), np.finfo(np.float32).max, np.float32),
    "one row": lambda X, tmp: X[:1],
    "3-d": lambda X, tmp: X[None],
    "tuple of rows": lambda X, tmp: tuple(map(tuple, X)),
    "strings": lambda X, tmp: X.astype(str),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, [np.float32, np.float64]])
def test_every_kind_of_input_gets_what_the_full_check_gives(fitted, rng, tmp_path, case, dtype):
    """The same array (type, dtype, values), the same warnings, or the same error as
    validate_data, whichever path the input takes."""
    import warnings

    X = CASES[case](rng.standard_normal((5, 6)).astype(np.float32), tmp_path)
    results = []
    for check in (check_predict_input, lambda est, A, dt: validate_data(est, A, reset=False, dtype=dt)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                results.append((check(fitted, X, dtype), [str(w.message) for w in caught]))
            except Exception as exc:  # compared below
                results.append((exc, [str(w.message) for w in caught]))
    (got, got_warnings), (expected, expected_warnings) = results
    assert got_warnings == expected_warnings
    if isinstance(expected, Exception):
        assert type(got) is type(expected) and str(got) == str(expected)
        return
    assert type(got) is type(expected) and got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))


def test_a_dataframe_gets_what_the_full_check_gives(fitted, rng):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(rng.standard_normal((5, 6)).astype(np.float32))
    np.testing.assert_array_equal(check_predict_input(fitted, X, np.float32),
                                  validate_data(fitted, X, reset=False, dtype=np.float32))


@pytest.mark.parametrize("case", ["F-ordered", "strided", "read-only", "int64", "float16"])
def test_predictions_do_not_depend_on_the_path_the_input_took(fitted, rng, case):
    X = rng.standard_normal((7, 6)).astype(np.float32)
    odd = {"F-ordered": np.asfortranarray(X), "strided": np.repeat(X, 2, axis=0)[::2],
           "read-only": (lambda a: (a.setflags(write=False), a)[1])(X.copy()),
           "int64": (X * 10).astype(np.int64), "float16": X.astype(np.float16)}[case]
    plain = np.ascontiguousarray(np.asarray(odd, dtype=np.float32))
    np.testing.assert_array_equal(fitted.predict(odd), fitted.predict(plain))
