"""A pipeline ending in a ConvNet saves and loads as an artifact and predicts the same."""
from __future__ import annotations

import numpy as np
import pytest

from classifiers import ConvNet
from pipeline.model import ImagePipeline, load, save
from pipeline.model.artifacts import read_manifest


@pytest.fixture(scope="module")
def digits():
    from pipeline.data.datasets import load_dataset

    return load_dataset("digits")


@pytest.mark.parametrize("params", [{}, {"batchnorm": True, "dropout": 0.2, "early_stopping": True}],
                         ids=["plain", "batchnorm"])
def test_round_trip_predicts_exactly_the_same(tmp_path, digits, params):
    clf = ConvNet(filters=(4, 8), kernel_sizes=(3, 3), hidden_sizes=(16,), n_epochs=2, tol=None, random_state=0,
                  **params)
    pipe = ImagePipeline("raw", clf).fit(digits.images[:300], digits.labels[:300], class_names=digits.class_names)
    save(pipe, tmp_path / "cnn")
    loaded = load(tmp_path / "cnn")
    fitted, back = pipe.classifier_, loaded.classifier_
    assert type(back) is ConvNet and back.get_params() == fitted.get_params()
    assert back.input_shape_ == fitted.input_shape_ == (8, 8, 1)
    assert back.architecture_ == fitted.architecture_ and back.n_params_ == fitted.n_params_
    assert sorted(back.params_) == sorted(fitted.params_) and sorted(back.running_) == sorted(fitted.running_)
    for name, array in {**fitted.params_, **fitted.running_}.items():
        restored = {**back.params_, **back.running_}[name]
        assert restored.dtype == array.dtype
        np.testing.assert_array_equal(restored, array)
    assert back.loss_history_ == fitted.loss_history_ and back.val_acc_history_ == fitted.val_acc_history_
    images = digits.images[300:400]
    np.testing.assert_array_equal(loaded.predict(images), pipe.predict(images))
    np.testing.assert_array_equal(loaded.predict_proba(images), pipe.predict_proba(images))
    step = next(s for s in read_manifest(tmp_path / "cnn")["steps"] if s["class"].endswith("ConvNet"))
    assert step["class"] == "classifiers.convnet.ConvNet"
    assert step["params"]["filters"] == {"__tuple__": [4, 8]}


def test_spec_name_builds_a_convnet():
    from pipeline.model.spec import build_classifier, names

    assert "convnet" in names("classifier")
    clf = build_classifier("convnet:filters=8x16,kernel_sizes=3,hidden_sizes=32,input_shape=28x28")
    assert isinstance(clf, ConvNet)
    assert (clf.filters, clf.kernel_sizes, clf.hidden_sizes, clf.input_shape) == ((8, 16), (3, 3), (32,), (28, 28))
