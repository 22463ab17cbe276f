"""The scikit-learn estimator contract for every classifier and extractor, in one place.

CI runs this module twice, the second time under other OpenBLAS kernels
(``make test-estimators``): float32 results differ there in their last bits.

Two halves:

1. scikit-learn's own suite (``sklearn.utils.estimator_checks``) on every classifier
   and extractor. Its checks build their own input, and that input is 2-D tabular data
   ``(n_samples, n_features)``, not a batch of images. Every check applies to the
   classifiers. The checks that feed such data cannot apply to an image extractor:
   they are skipped BY NAME with the reason, in ``NOT_APPLICABLE`` below, the one place
   where checks are set aside. ``test_not_applicable_checks_do_fail``
   runs those and asserts each still fails, so the list cannot go stale (a check
   that starts passing must leave it). Every other check runs and must pass.
2. ``test_image_contract_*``: the properties the skipped checks are about (fit
   returns self, parameters untouched, idempotent fit, pickling, sample order and
   subset invariance, read-only and F-ordered input, errors for bad input,
   pipelines, cross-validation and grid search) checked here with images.

(The skipped checks are skipped, not ``xfail``-ed: pytest renders the long
traceback of each expected failure, which cost ~30 s for these 160.)
"""
from __future__ import annotations

import functools
import pickle

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._testing import create_memmap_backed_data
from sklearn.utils.estimator_checks import estimator_checks_generator
from sklearn.utils.validation import check_is_fitted

from classifiers import ConvNet, KNearestNeighbor, LinearSVM, Softmax, TwoLayerNet
from features import HOG, BagOfVisualWords, ColorHistogram, FeatureStack, RawPixels

pytestmark = pytest.mark.estimator_checks

_TABULAR = "feeds 2-D tabular data, not images; see test_image_contract_*"
_MESSAGE = (
    "feeds invalid 2-D data and expects scikit-learn's wording; extractors reject 2-D "
    "input first; see test_image_contract_rejects_bad_input"
)

#: scikit-learn checks that cannot apply to image extractors, by name, with the reason.
IMAGES_ONLY = {
    "check_dict_unchanged": _TABULAR,
    "check_dont_overwrite_parameters": _TABULAR,
    "check_estimators_dtypes": _TABULAR,
    "check_estimators_fit_returns_self": _TABULAR,
    "check_estimators_overwrite_params": _TABULAR,
    "check_estimators_pickle": _TABULAR,
    "check_f_contiguous_array_estimator": _TABULAR,
    "check_fit2d_1feature": _TABULAR,
    "check_fit2d_1sample": _TABULAR,
    "check_fit2d_predict1d": _TABULAR,
    "check_fit_check_is_fitted": _TABULAR,
    "check_fit_idempotent": _TABULAR,
    "check_fit_score_takes_y": _TABULAR,
    "check_methods_sample_order_invariance": _TABULAR,
    "check_methods_subset_invariance": _TABULAR,
    "check_n_features_in": _TABULAR,
    "check_n_features_in_after_fitting": (
        "n_features_in_ counts columns of 2-D input; extractors record image_shape_; " + _TABULAR
    ),
    "check_pipeline_consistency": _TABULAR,
    "check_positive_only_tag_during_fit": _TABULAR,
    "check_readonly_memmap_input": _TABULAR,
    "check_transformer_data_not_an_array": _TABULAR,
    "check_transformer_general": _TABULAR,
    "check_transformer_preserve_dtypes": "features are always float32 (contract); " + _TABULAR,
    "check_complex_data": _MESSAGE,
    "check_dtype_object": "expects object arrays of numbers accepted; " + _MESSAGE,
    "check_estimators_empty_data_messages": _MESSAGE,
    "check_estimators_nan_inf": _MESSAGE,
}

EXTRACTOR_SUITE = [
    RawPixels(),
    ColorHistogram(),
    HOG(),
    BagOfVisualWords(n_words=2, random_state=0),
    FeatureStack([("hog", HOG()), ("color", ColorHistogram())]),
]
#: The trained classifiers with their default parameters (the checks that need a seed set
#: ``random_state=0`` themselves); tests/classifiers/test_convergence.py holds the accuracy bar
#: of ``check_classifiers_train`` for other seeds.
CLASSIFIER_SUITE = [
    KNearestNeighbor(n_neighbors=3, device="cpu"),
    LinearSVM(),
    Softmax(),
    TwoLayerNet(),
    ConvNet(),  # on tabular check data its rows are 1 x 1 images, one channel per feature
]
_BLAS_ROW_ORDER = (
    "asks float32 predict_proba to be equal to rtol 1e-7 whatever the rows' order; the ConvNet's "
    "products over every image's receptive fields round in their last bits by where a row falls in "
    "OpenBLAS's blocks (under OPENBLAS_CORETYPE=Haswell: 4e-9 on 1e-3, 1 of 60 values); "
    "tests/classifiers/test_convnet.py holds the property at float32's tolerance"
)
#: The checks set aside, by estimator class, with the reason: the extractors' (images only)
#: and two of the ConvNet's (float32 row-order rounding).
NOT_APPLICABLE = {type(est).__name__: IMAGES_ONLY for est in EXTRACTOR_SUITE} | {
    "ConvNet": {"check_methods_sample_order_invariance": _BLAS_ROW_ORDER,
                "check_methods_subset_invariance": _BLAS_ROW_ORDER},
}


def _check_name(check):
    while hasattr(check, "__wrapped__"):
        check = check.__wrapped__
    if isinstance(check, functools.partial):
        keywords = ",".join(f"{k}={v}" for k, v in check.keywords.items())
        return check.func.__name__ + (f"({keywords})" if keywords else "")
    return check.__name__


def _suite_id(value):
    return type(value).__name__ if hasattr(value, "get_params") else _check_name(value)


@pytest.mark.parametrize(
    "estimator, check",
    [
        pair
        for est in CLASSIFIER_SUITE + EXTRACTOR_SUITE
        for pair in estimator_checks_generator(
            est, legacy=True, expected_failed_checks=NOT_APPLICABLE.get(type(est).__name__, {}), mark="skip"
        )
    ],
    ids=_suite_id,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", EXTRACTOR_SUITE, ids=_suite_id)
def test_not_applicable_checks_do_fail(estimator):
    seen, passing = set(), []
    for est, check in estimator_checks_generator(clone(estimator), legacy=True, mark=None):
        name = _check_name(check).split("(")[0]
        if name not in IMAGES_ONLY:
            continue
        seen.add(name)
        try:
            check(est)
        except Exception:
            continue
        passing.append(_check_name(check))
    assert not passing, f"these checks pass now: remove them from IMAGES_ONLY: {passing}"
    assert seen == set(IMAGES_ONLY), f"not in scikit-learn's suite: {set(IMAGES_ONLY) - seen}"


# ------------------------------------------------------------ the same, with images
def _small_bovw():
    return BagOfVisualWords(n_words=3, patch_size=4, stride=3, n_fit_descriptors=200, random_state=0)


EXTRACTORS = {
    "raw": lambda: RawPixels(size=(8, 8)),
    "raw_gray": lambda: RawPixels(grayscale=True),
    "color_hue": lambda: ColorHistogram(bins=6),
    "color_joint": lambda: ColorHistogram(bins=3, mode="joint"),
    "hog": lambda: HOG(pixels_per_cell=(4, 4)),
    "bovw_hard": _small_bovw,
    "bovw_soft_hog": lambda: _small_bovw().set_params(
        descriptor="hog", assignment="soft", spatial_pyramid=True
    ),
    "stack": lambda: FeatureStack(
        [("hog", HOG(pixels_per_cell=(4, 4))), ("color", ColorHistogram()), ("bovw", _small_bovw())]
    ),
}

extractors = pytest.mark.parametrize("make", list(EXTRACTORS.values()), ids=list(EXTRACTORS))


@pytest.fixture(params=["color", "gray"])
def images(request):
    rng = np.random.default_rng(0)
    shape = (9, 16, 16, 3) if request.param == "color" else (9, 16, 16)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _param_values(est):
    """Deep parameters, nested estimators (fitted in place by a union) left out."""
    params = est.get_params(deep=True)
    return {k: v for k, v in params.items() if not hasattr(v, "get_params") and k != "extractors"}


def _public_state(est):
    return {k: v for k, v in vars(est).items() if not k.startswith("_")}


@extractors
def test_image_contract_fit(make, images):
    est = make()
    params = joblib.hash(_param_values(est))
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    before = set(_public_state(est))
    assert est.fit(images) is est
    check_is_fitted(est)
    assert joblib.hash(_param_values(est)) == params, "fit changed a parameter"
    added = set(_public_state(est)) - before
    assert all(name.endswith("_") for name in added), f"fit set public attributes {added}"


@extractors
def test_image_contract_transform(make, images):
    original = images.copy()
    est = make().fit(images)
    state = joblib.hash(vars(est))
    feats = est.transform(images)
    assert joblib.hash(vars(est)) == state, "transform changed the estimator"
    np.testing.assert_array_equal(images, original)
    assert isinstance(feats, np.ndarray) and feats.dtype == np.float32 and feats.ndim == 2
    assert feats.shape[0] == len(images)
    assert feats.shape[1] == len(est.get_feature_names_out())
    np.testing.assert_allclose(make().fit_transform(images), feats, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(clone(est).fit(images).transform(images), feats, rtol=1e-6, atol=1e-7)


@extractors
def test_image_contract_invariances(make, images):
    est = make().fit(images)
    feats = est.transform(images)
    order = np.random.default_rng(1).permutation(len(images))
    np.testing.assert_allclose(est.transform(images[order]), feats[order], rtol=1e-6, atol=1e-7)
    one_by_one = np.concatenate([est.transform(images[i : i + 1]) for i in range(len(images))])
    np.testing.assert_allclose(one_by_one, feats, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(est.transform(np.asfortranarray(images)), feats, rtol=1e-6, atol=1e-7)
    single = make().fit(images[:1])  # one image is enough to fit
    assert single.transform(images).shape == feats.shape


@extractors
def test_image_contract_pickle_and_readonly(make, images):
    est = make().fit(images)
    feats = est.transform(images)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.transform(images), feats)
    readonly = create_memmap_backed_data(images)
    assert not readonly.flags.writeable
    np.testing.assert_allclose(make().fit(readonly).transform(readonly), feats, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((0, 16, 16), np.uint8), "at least one image"),
        (np.zeros((3, 256), np.uint8), r"expected images of shape .* got an array of shape \(3, 256\)"),
        (np.zeros((3, 16, 16, 2), np.uint8), "1, 3 or 4 channels"),
        (np.full((3, 16, 16), np.nan), "NaN or infinite"),
        (np.full((3, 16, 16), np.inf), "NaN or infinite"),
        (np.zeros((3, 16, 16), np.complex128), "uint8 or floating-point"),
        (np.zeros((3, 16, 16), np.int64), "uint8 or floating-point"),
        (np.array([np.zeros((16, 16)), np.zeros((8, 8))], dtype=object), "dtype=object"),
    ],
    ids=["empty", "2d", "channels", "nan", "inf", "complex", "int64", "ragged"],
)
@extractors
def test_image_contract_rejects_bad_input(make, bad, match):
    with pytest.raises(ValueError, match=match):
        make().fit(bad)
    good = np.zeros((2, 16, 16), np.uint8)
    good[:, 4:12, 4:12] = 200
    est = make().fit(good)
    with pytest.raises(ValueError, match=match):
        est.transform(bad)


@extractors
def test_image_contract_rejects_sparse(make):
    from scipy import sparse

    with pytest.raises(TypeError, match="sparse input is not supported"):
        make().fit(sparse.csr_matrix(np.ones((3, 256))))


@pytest.mark.parametrize("make", [m for k, m in EXTRACTORS.items() if k != "stack"],
                         ids=[k for k in EXTRACTORS if k != "stack"])
def test_image_contract_checks_parameters_in_fit_and_transform(make, images):
    bad = r"device must be one of \('auto', 'cpu', 'gpu'\), got 'tpu'"
    with pytest.raises(ValueError, match=bad):
        make().set_params(device="tpu").fit(images)
    est = make().fit(images).set_params(device="tpu")
    with pytest.raises(ValueError, match=bad):
        est.transform(images)


@extractors
def test_image_contract_unfitted_and_shape(make, images):
    with pytest.raises(NotFittedError):
        make().transform(images)
    est = make().fit(images)
    with pytest.raises(ValueError, match=r"fitted on images of shape"):
        est.transform(images[:, :12, :12])


@extractors
def test_image_contract_in_pipeline_and_cross_validation(make):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(12) % 2
    images[labels == 1, :8] //= 4  # a darker top half for one class
    model = make_pipeline(make(), StandardScaler(), LogisticRegression(max_iter=200))
    scores = cross_val_score(model, images, labels, cv=2)
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


def test_grid_search_reaches_nested_extractor_parameters():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(12) % 2
    model = make_pipeline(
        FeatureStack([("color", ColorHistogram()), ("raw", RawPixels(size=(4, 4)))]),
        LogisticRegression(max_iter=200),
    )
    search = GridSearchCV(model, {"featurestack__color__bins": [3, 5]}, cv=2).fit(images, labels)
    assert search.best_params_["featurestack__color__bins"] in (3, 5)
    assert search.best_estimator_[0].transform(images).shape[1] == search.best_params_[
        "featurestack__color__bins"
    ] + 16 * 3
