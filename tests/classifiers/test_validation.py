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
