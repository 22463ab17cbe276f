import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score

from classifiers.knn import KNearestNeighbor
from classifiers.linear import LinearSVM, Softmax
from classifiers.net import TwoLayerNet
from features import HOG, ColorHistogram, FeatureStack
from pipeline.model import load, save
from pipeline.model.image_pipeline import ImagePipeline, rank_classes
from pipeline.model.spec import SpecError, build_classifier


# ------------------------------------------------------------- classifier specs
@pytest.mark.parametrize("spec, cls, params", [
    ("knn:n_neighbors=5,metric=l1", KNearestNeighbor, {"n_neighbors": 5, "metric": "l1"}),
    ("softmax", Softmax, {}),
    ("svm:reg=1e-4,learning_rate=0.01", LinearSVM, {"reg": 1e-4, "learning_rate": 0.01}),
    ("net:hidden_sizes=256", TwoLayerNet, {"hidden_sizes": (256,)}),
    ("net:hidden_sizes=256x128,batchnorm=true,dropout=0.5", TwoLayerNet,
     {"hidden_sizes": (256, 128), "batchnorm": True, "dropout": 0.5}),
    (" KNN : weights=distance ", KNearestNeighbor, {"weights": "distance"}),
])
def test_classifier_specs(spec, cls, params):
    clf = build_classifier(spec)
    assert type(clf) is cls
    assert {k: clf.get_params()[k] for k in params} == params


@pytest.mark.parametrize("spec, match", [
    ("forest", r"unknown classifier 'forest'.*expected one of"),
    ("knn:k=3", r"KNearestNeighbor has no parameter 'k'"),
    ("knn:n_neighbors", r"expected key=value"),
    ("", r"expected a classifier spec"),
])
def test_bad_classifier_specs(spec, match):
    with pytest.raises(SpecError, match=match):
        build_classifier(spec)


# -------------------------------------------------------------------- the estimator
def test_fit_records_the_input_contract(color_data):
    images, y = color_data
    pipe = ImagePipeline("hog:pixels_per_cell=8x8,color_hist:bins=8", "knn:n_neighbors=3")
    assert pipe.fit(images, y, class_names=["r", "g", "b"]) is pipe
    assert pipe.input_shape_ == (16, 16) and pipe.color_mode_ == "RGB"
    np.testing.assert_array_equal(pipe.classes_, [0, 1, 2])
    assert pipe.class_names_ == ["r", "g", "b"] and pipe.metrics_ == {}
    assert isinstance(pipe.features_, FeatureStack) and isinstance(pipe.classifier_, KNearestNeighbor)
    assert pipe.n_features_ == pipe.features_.n_features_out_ == 2 * 2 * 9 + 8  # one block of 2x2 cells, 8 colors
    assert pipe.features == "hog:pixels_per_cell=8x8,color_hist:bins=8"  # parameters untouched
    assert pipe.score(images, y) > 0.7


def test_grayscale_contract_and_one_channel_input():
    rng = np.random.default_rng(1)
    images, y = rng.integers(0, 256, (20, 10, 10), dtype=np.uint8), np.arange(20) % 2
    pipe = ImagePipeline("raw", "knn:n_neighbors=1").fit(images, y)
    assert (pipe.input_shape_, pipe.color_mode_) == ((10, 10), "L")
    np.testing.assert_array_equal(pipe.predict(images[..., None]), pipe.predict(images))
    with pytest.raises(ValueError, match=r"takes 10x10 grayscale \(L\) images .*got 10x10 color \(RGB\)"):
        pipe.predict(np.repeat(images[..., None], 3, axis=3))


@pytest.mark.parametrize("shape, match", [
    ((4, 20, 20, 3), r"takes 16x16 color \(RGB\) images \(an array of shape \(-1, 16, 16, 3\).*got 20x20 color"),
    ((4, 16, 16), r"takes 16x16 color \(RGB\) images .*got 16x16 grayscale \(L\) images"),
    ((16, 16, 3), r"got one image of shape \(16, 16, 3\); pass images\[None\]"),
    ((4, 16, 16, 3, 1), r"expected images of shape \(n_samples, height, width\)"),
])
def test_bad_input_to_predict_is_a_clear_error(color_data, shape, match):
    images, y = color_data
    pipe = ImagePipeline("color_hist", "softmax:n_epochs=1").fit(images, y)
    bad = np.zeros(shape, dtype=np.uint8)
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(ValueError, match=match):
            getattr(pipe, method)(bad)


def test_predict_before_fit_raises(color_data):
    with pytest.raises(NotFittedError):
        ImagePipeline("raw", "knn").predict(color_data[0])


def test_fit_checks_labels(color_data):
    images, y = color_data
    with pytest.raises(ValueError, match="got 48 images but 47 labels"):
        ImagePipeline("raw", "knn").fit(images, y[:-1])
    with pytest.raises(ValueError, match=r"indexed by integer label: expected labels in 0\.\.1"):
        ImagePipeline("raw", "knn", class_names=["a", "b"]).fit(images, y)


@pytest.mark.parametrize("class_names, expected", [
    (None, ["0", "1", "2"]),
    (["zero", "one", "two", "three"], ["zero", "one", "two"]),  # a dataset's names, by label
    ({0: "a", 1: "b", 2: "c"}, ["a", "b", "c"]),
    ({"0": "a", "1": "b", "2": "c"}, ["a", "b", "c"]),  # keys as JSON would give them
])
def test_class_names(color_data, class_names, expected):
    images, y = color_data
    pipe = ImagePipeline("color_hist", "knn", class_names=class_names).fit(images, y)
    assert pipe.class_names_ == expected


def test_probabilities_and_scores_follow_the_classifier(color_data):
    images, y = color_data
    svm = ImagePipeline("color_hist", LinearSVM(n_epochs=2, random_state=0))
    assert not hasattr(svm, "predict_proba") and hasattr(svm, "decision_function")
    svm.fit(images, y)
    assert not hasattr(svm, "predict_proba")
    with pytest.raises(AttributeError, match="predict_proba"):
        svm.predict_proba(images)
    assert svm.decision_function(images).shape == (48, 3)
    knn = ImagePipeline("color_hist", "knn").fit(images, y)
    assert not hasattr(knn, "decision_function")
    proba = knn.predict_proba(images)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(knn.classes_[proba.argmax(axis=1)], knn.predict(images))


def test_without_scaler_features_reach_the_classifier_as_they_are(color_data):
    images, y = color_data
    pipe = ImagePipeline(ColorHistogram(bins=5), "knn:n_neighbors=1", scaler=False).fit(images, y)
    assert pipe.scaler_ is None
    np.testing.assert_array_equal(pipe.extract_features(images), ColorHistogram(bins=5).fit_transform(images))


def test_list_of_named_extractors_is_stacked(color_data):
    images, y = color_data
    hog = HOG(pixels_per_cell=(4, 4))
    pipe = ImagePipeline([("hog", hog), ("color", ColorHistogram())], "knn").fit(images, y)
    assert isinstance(pipe.features_, FeatureStack) and not hasattr(hog, "image_shape_")  # cloned


def test_list_of_named_extractors_round_trips(tmp_path, color_data):
    images, y = color_data
    pipe = ImagePipeline([("hog", HOG(pixels_per_cell=(4, 4))), ("color", ColorHistogram())], "knn").fit(images, y)
    loaded = load(save(pipe, tmp_path / "m"))
    assert repr(loaded) == repr(pipe)
    np.testing.assert_array_equal(loaded.predict_proba(images), pipe.predict_proba(images))


# ------------------------------------------------------------- scikit-learn tools
def test_cross_val_score(color_data):
    images, y = color_data
    scores = cross_val_score(ImagePipeline("color_hist:bins=8", "knn:n_neighbors=3"), images, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8


def test_grid_search_over_nested_parameters_and_specs(color_data):
    images, y = color_data
    pipe = ImagePipeline(HOG(pixels_per_cell=(4, 4)), KNearestNeighbor())
    grid = GridSearchCV(pipe, {"classifier__n_neighbors": [1, 3], "classifier__metric": ["l1", "l2"],
                               "features__orientations": [6]}, cv=2).fit(images, y)
    assert grid.best_params_["features__orientations"] == 6
    assert grid.best_estimator_.classifier_.n_neighbors in (1, 3)
    specs = GridSearchCV(ImagePipeline("color_hist", "knn"),
                         {"classifier": ["knn:n_neighbors=1", "softmax:n_epochs=2,random_state=0"]}, cv=2)
    specs.fit(images, y)
    assert len(specs.cv_results_["params"]) == 2 and specs.best_score_ > 0.8


def test_predictions_order_ties_and_non_finite_scores():
    names = ["a", "b", "c", "d"]
    scores = np.array([[0.1, 0.4, 0.4, 0.1], [np.nan, np.inf, -np.inf, 0.5]])
    first, second = rank_classes(scores, 3, names, "decision")
    assert first["label"] == "b" and first["class_index"] == 1 and first["score"] == 0.4
    assert [t["class_index"] for t in first["top_k"]] == [1, 2, 0]  # ties: the lower index first
    assert first["score_kind"] == "decision"
    assert [t["class_index"] for t in second["top_k"]] == [1, 3, 2]  # +inf first, NaN last
    assert [t["score"] for t in second["top_k"]] == [None, 0.5, None]
    assert len(rank_classes(scores, 9, names, "decision")[0]["top_k"]) == 4


@pytest.mark.parametrize("with_mean, with_std", [(True, True), (False, True), (True, False)])
def test_the_short_standardization_equals_the_scalers_transform(digits_test, with_mean, with_std):
    """ImagePipeline standardizes with the scaler's arithmetic alone (a shortcut that
    BENCHMARKS.md measures): the same numbers as StandardScaler.transform, in float32 and
    float64, and the features it was given are left as they were."""
    from sklearn.preprocessing import StandardScaler

    images, labels = digits_test.images, digits_test.labels
    pipe = ImagePipeline("hog:pixels_per_cell=4x4,cells_per_block=1x1,raw", "softmax",
                         scaler=StandardScaler(with_mean=with_mean, with_std=with_std)).fit(images, labels)
    for dtype in (np.float32, np.float64):
        Z = pipe.features_.transform(images).astype(dtype)
        before = Z.copy()
        np.testing.assert_array_equal(pipe._standardize(Z), pipe.scaler_.transform(Z))
        assert pipe._standardize(Z).dtype == pipe.scaler_.transform(Z).dtype == dtype
        np.testing.assert_array_equal(Z, before)


# ------------------------------------------ the short standardization, attacked (red team)
@pytest.fixture(scope="module")
def standardized_pipe(digits_test):
    return ImagePipeline("hog:pixels_per_cell=4x4,cells_per_block=1x1,raw", "softmax:n_epochs=2").fit(
        digits_test.images, digits_test.labels)


@pytest.mark.parametrize("case", ["float16", "F-ordered", "strided", "negative zeros", "zeros", "NaN", "subnormals",
                                  "huge", "read-only", "int32", "uint8", "one row"])
def test_the_short_standardization_equals_the_scaler_on_odd_arrays(standardized_pipe, digits_test, case):
    pipe = standardized_pipe
    Z = pipe.features_.transform(digits_test.images[:6])
    Z = {"float16": lambda: Z.astype(np.float16), "F-ordered": lambda: np.asfortranarray(Z),
         "strided": lambda: np.repeat(Z, 2, axis=1)[:, ::2], "negative zeros": lambda: np.full_like(Z, -0.0),
         "zeros": lambda: np.zeros_like(Z), "NaN": lambda: np.where(Z > 0.5, np.nan, Z).astype(np.float32),
         "subnormals": lambda: np.full_like(Z, 1e-45), "huge": lambda: np.full_like(Z, 3e38),
         "read-only": lambda: (lambda a: (a.setflags(write=False), a)[1])(Z.copy()),
         "int32": lambda: (Z * 100).astype(np.int32), "uint8": lambda: (Z * 100).astype(np.uint8),
         "one row": lambda: Z[:1]}[case]()
    before = Z.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        fast, library = pipe._standardize(Z), pipe.scaler_.transform(Z)
    assert fast.dtype == library.dtype and fast.shape == library.shape
    np.testing.assert_array_equal(fast, library)
    assert np.array_equal(np.signbit(fast), np.signbit(library))
    np.testing.assert_array_equal(Z, before)  # with copy=True the features are left as they were


@pytest.mark.parametrize("case", ["C-ordered", "F-ordered", "strided", "read-only", "one image"])
def test_predictions_equal_the_library_paths_whatever_the_image_layout(standardized_pipe, digits_test, monkeypatch,
                                                                       case):
    images = digits_test.images[:8]
    images = {"C-ordered": lambda: images, "F-ordered": lambda: np.asfortranarray(images),
              "strided": lambda: np.repeat(images, 2, axis=2)[:, :, ::2],
              "read-only": lambda: (lambda a: (a.setflags(write=False), a)[1])(images.copy()),
              "one image": lambda: images[:1]}[case]()
    pipe = standardized_pipe
    fast = pipe.predict_proba(images)
    monkeypatch.setattr(pipe, "_standardize", pipe.scaler_.transform)
    np.testing.assert_array_equal(fast, pipe.predict_proba(images))


def test_what_the_short_standardization_does_not_take_gets_the_scalers_answer(digits_test):
    """Byte-swapped or long floats, infinities, a wrong width, read-only input to a scaler
    that does not copy: the scaler's own answer or error, never the arithmetic's."""
    from sklearn.preprocessing import StandardScaler

    images, labels = digits_test.images, digits_test.labels
    pipe = ImagePipeline("raw", "softmax", scaler=StandardScaler(copy=False)).fit(images, labels)
    Z = pipe.features_.transform(images)
    for odd in (Z.astype(">f4"), Z.astype(np.longdouble)):
        np.testing.assert_array_equal(pipe._standardize(odd.copy()), pipe.scaler_.transform(odd.copy()))
        assert pipe._standardize(odd.copy()).dtype == pipe.scaler_.transform(odd.copy()).dtype
    with pytest.raises(ValueError, match="infinity"):
        pipe._standardize(np.where(Z > 0.5, np.inf, Z))
    with pytest.raises(ValueError, match="features, but StandardScaler is expecting 64 features"):
        pipe._standardize(Z[:, :10].copy())
    read_only = Z.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(pipe._standardize(read_only), StandardScaler().fit(Z).transform(Z))
