"""ConvNet: the image shape it reads the features as, its architecture and parameter count,
learning, early stopping and histories, reproducibility, and its place in an ImagePipeline."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from classifiers import ConvNet
from classifiers._cnn import infer_input_shape

SMALL = {"filters": (8,), "kernel_sizes": (3,), "hidden_sizes": (32,), "n_epochs": 2, "tol": None, "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


@pytest.mark.parametrize("n_features, expected", [(784, (28, 28, 1)), (3072, (32, 32, 3)), (64, (8, 8, 1)),
                                                  (48, (4, 4, 3)), (1, (1, 1, 1)), (10, (1, 1, 10)),
                                                  (3, (1, 1, 3))])
def test_input_shape_inferred_from_the_feature_count(n_features, expected):
    assert infer_input_shape(n_features) == expected


def test_learns_digits_as_8x8_images(digits):
    X, y = digits
    clf = ConvNet(**{**SMALL, "n_epochs": 3}).fit(X[:1200], y[:1200])
    assert clf.input_shape_ == (8, 8, 1)
    assert clf.score(X[1200:], y[1200:]) > 0.9
    assert clf.n_params_ == (3 * 3 * 8 + 8) + (4 * 4 * 8 * 32 + 32) + (32 * 10 + 10)
    assert clf.architecture_[:2] == ["conv 3x3, 1 -> 8 channels: 8x8x8, 80 parameters", "max pool 2x2: 4x4x8"]
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X[:5]))
    assert len(clf.train_acc_history_) == clf.n_iter_ == 3 and clf.val_acc_history_ == []
    assert {name for ratios in clf.update_ratio_history_ for name in ratios} == {"W1", "W2", "W3"}


def test_given_input_shape_and_its_errors(digits):
    X, y = digits
    clf = ConvNet(**{**SMALL, "n_epochs": 1, "input_shape": (4, 16)}).fit(X[:200], y[:200])
    assert clf.input_shape_ == (4, 16, 1)
    with pytest.raises(ValueError, match=r"input_shape \(5, 5\) takes a multiple of 5\*5 = 25 features, got 64"):
        ConvNet(input_shape=(5, 5)).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"input_shape \(8, 8, 3\) takes 192 features .*got 64"):
        ConvNet(input_shape=(8, 8, 3)).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"input_shape must be None, a pair \(height, width\)"):
        ConvNet(input_shape=8).fit(X[:20], y[:20])


def test_an_architecture_that_does_not_fit_names_the_numbers(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"\(1 - 4 \+ 2\*1\) / 1 \+ 1 = 0"):
        ConvNet(filters=(2,), kernel_sizes=(4,), input_shape=(1, 64)).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"one entry per convolution, got 2 filters \(4, 4\) and 1 kernel"):
        ConvNet(filters=(4, 4), kernel_sizes=(3,)).fit(X[:20], y[:20])


def test_pooling_left_out_where_its_windows_do_not_tile(digits):
    X, y = digits
    clf = ConvNet(filters=(4, 4, 4), kernel_sizes=(3, 3, 3), hidden_sizes=(), n_epochs=1, tol=None,
                  random_state=0).fit(X[:100], y[:100])
    assert "(no max pool: 2x2 windows do not tile a 2x2 map)" not in clf.architecture_  # 8 -> 4 -> 2 -> 1
    assert clf.architecture_[-2] == "max pool 2x2: 1x1x4"
    tabular = ConvNet(n_epochs=1, tol=None, random_state=0).fit(X[:100, :10], y[:100])
    assert tabular.input_shape_ == (1, 1, 10)
    assert "(no max pool: 2x2 windows do not tile a 1x1 map)" in tabular.architecture_


def test_early_stopping_keeps_the_best_epoch(digits):
    X, y = digits
    clf = ConvNet(**{**SMALL, "n_epochs": 4, "early_stopping": True, "validation_fraction": 0.2,
                     "n_iter_no_change": 2}).fit(X[:600], y[:600])
    assert len(clf.val_acc_history_) == clf.n_iter_
    assert clf.best_epoch_ == int(np.argmax(clf.val_acc_history_))


def test_same_seed_same_model_and_float64(digits):
    X, y = digits
    a = ConvNet(**{**SMALL, "n_epochs": 1, "batchnorm": True, "dropout": 0.2}).fit(X[:300], y[:300])
    b = ConvNet(**{**SMALL, "n_epochs": 1, "batchnorm": True, "dropout": 0.2}).fit(X[:300], y[:300])
    for name in a.params_:
        np.testing.assert_array_equal(a.params_[name], b.params_[name])
    assert sorted(a.running_) == ["running_mean1", "running_var1"]
    c = ConvNet(**{**SMALL, "n_epochs": 1, "dtype": "float64"}).fit(X[:300], y[:300])
    assert c.params_["W1"].dtype == np.float64 and c.predict_proba(X[:2]).dtype == np.float64


def test_architecture_changed_after_fit_is_refused(digits):
    X, y = digits
    clf = ConvNet(**{**SMALL, "n_epochs": 1}).fit(X[:100], y[:100])
    clf.set_params(filters=(16,))
    with pytest.raises(ValueError, match="no longer describe the fitted network"):
        clf.predict(X[:2])


def test_in_an_image_pipeline_after_raw_pixels():
    from pipeline.model import ImagePipeline

    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, size=(60, 8, 8, 3), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 20)
    images[y == 1, :4, :, 0] = 255  # a red top half
    images[y == 2, :, :4, 2] = 255  # a blue left half
    pipe = ImagePipeline("raw", "convnet:filters=4,kernel_sizes=3,hidden_sizes=16,n_epochs=2,tol=null,random_state=0")
    pipe.fit(images[::2], y[::2])
    assert pipe.classifier_.input_shape_ == (8, 8, 3)
    assert pipe.score(images[1::2], y[1::2]) == 1.0


def test_the_pipeline_passes_the_shape_of_images_that_are_not_square():
    from pipeline.model import ImagePipeline

    rng = np.random.default_rng(0)
    images = rng.integers(0, 100, size=(40, 6, 10), dtype=np.uint8)
    y = np.repeat([0, 1], 20)
    images[y == 1, :, :3] = 255
    spec = "convnet:filters=4,kernel_sizes=3,hidden_sizes=8,n_epochs=1,tol=null,random_state=0"
    pipe = ImagePipeline("raw", spec).fit(images, y)
    assert pipe.classifier_.input_shape_ == (6, 10, 1) and pipe.classifier_.input_shape is None
    assert pipe.classifier_.architecture_[1] == "max pool 2x2: 3x5x4"
    # Resized pixels are not the images' shape: the feature count decides (12 * 12 = 144).
    resized = ImagePipeline("raw:size=12", spec).fit(images, y)
    assert resized.classifier_.input_shape_ == (12, 12, 1)
    # An explicit input_shape wins over the pipeline's.
    given = ImagePipeline("raw", spec + ",input_shape=3x20").fit(images, y)
    assert given.classifier_.input_shape_ == (3, 20, 1)


def test_fit_on_features_gives_the_convnet_the_same_image_shape():
    """``cvpipe train`` fits the classifier on features extracted apart (pipeline.model.fitting)."""
    from pipeline.model import ImagePipeline
    from pipeline.model.fitting import extract_features, fit_on_features
    from pipeline.model.spec import build_classifier, build_extractor

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(30, 4, 6, 3), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 10)
    spec = "convnet:filters=2,kernel_sizes=3,hidden_sizes=4,n_epochs=1,tol=null,random_state=0"
    extractor = build_extractor("raw")
    Z = extract_features(extractor, images, y)
    model = fit_on_features("raw", build_classifier(spec), extractor, Z, images, y)
    direct = ImagePipeline("raw", spec).fit(images, y)
    assert model.classifier_.input_shape_ == direct.classifier_.input_shape_ == (4, 6, 3)
    np.testing.assert_array_equal(model.predict_proba(images), direct.predict_proba(images))


def test_predictions_do_not_depend_on_the_rows_order_or_company(digits):
    """scikit-learn's sample-order and subset invariance, at float32's tolerance: the checks
    themselves ask rtol 1e-7, which OpenBLAS's blocking of the products breaks in the last bits
    (tests/test_estimator_checks.py sets them aside for the ConvNet, with this reason)."""
    X, y = digits
    clf = ConvNet(**SMALL).fit(X[:600], y[:600])
    test = X[600:760]
    proba = clf.predict_proba(test)
    order = np.random.default_rng(0).permutation(len(test))
    np.testing.assert_allclose(clf.predict_proba(test[order]), proba[order], rtol=1e-4, atol=1e-6)
    parts = np.concatenate([clf.predict_proba(part) for part in np.array_split(test, 7)])
    np.testing.assert_allclose(parts, proba, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(test[order]), clf.predict(test)[order])
