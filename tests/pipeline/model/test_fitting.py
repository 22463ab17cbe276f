"""Fitting a pipeline in its steps (for progress bars) gives what ``ImagePipeline.fit`` gives."""
import numpy as np
import pytest

from pipeline.model import ImagePipeline, build_classifier, build_extractor
from pipeline.model.artifacts import build_manifest
from pipeline.model.fitting import extract_features, fit_on_features


@pytest.mark.parametrize("features, classifier, scaler", [
    ("hog:pixels_per_cell=4x4,cells_per_block=1x1,raw", "softmax:n_epochs=3,batch_size=32,random_state=0", True),
    ("bovw:n_words=8,patch_size=3,random_state=0", "net:hidden_sizes=16,n_epochs=2,random_state=0", True),
    ("raw", "knn:n_neighbors=3", True),
    ("raw", "convnet:filters=4,kernel_sizes=3,hidden_sizes=8,n_epochs=2,tol=None,random_state=0", False),
    ("hog:pixels_per_cell=4x4,cells_per_block=1x1", "net:hidden_sizes=16,n_epochs=2,random_state=0", False),
])
def test_training_from_extracted_features_equals_image_pipeline_fit(digits_test, features, classifier, scaler):
    images, labels = digits_test.images[:300], digits_test.labels[:300]
    names = digits_test.class_names
    expected = ImagePipeline(features, build_classifier(classifier), scaler=scaler).fit(images, labels,
                                                                                        class_names=names)
    extractor = build_extractor(features)
    Z = extract_features(extractor, images, labels, chunk_size=64)  # several chunks, the last one short
    np.testing.assert_array_equal(Z, build_extractor(features).fit_transform(images, labels))
    got = fit_on_features(features, build_classifier(classifier), extractor, Z, images, labels, names, scaler=scaler)
    assert (got.scaler_ is None) is (not scaler) and got.get_params()["scaler"] is scaler
    np.testing.assert_array_equal(got.predict(digits_test.images), expected.predict(digits_test.images))
    np.testing.assert_array_equal(got.class_scores(digits_test.images)[0],
                                  expected.class_scores(digits_test.images)[0])
    (m1, a1), (m2, a2) = build_manifest(got), build_manifest(expected)
    assert m1["steps"] == m2["steps"] and m1["class_names"] == m2["class_names"] and m1["input"] == m2["input"]
    assert a1.keys() == a2.keys() and all(np.array_equal(a1[k], a2[k]) for k in a1)
