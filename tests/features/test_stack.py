"""FeatureStack: the extractors' features side by side, as one float32 matrix."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import FeatureUnion

from features import HOG, BagOfVisualWords, ColorHistogram, FeatureStack, RawPixels


def _bovw():
    return BagOfVisualWords(n_words=4, patch_size=4, stride=4, random_state=0)


def test_stacks_columns_in_order(color_images):
    parts = [("hog", HOG()), ("color", ColorHistogram(bins=6)), ("raw", RawPixels(size=(4, 4)))]
    stack = FeatureStack(parts)
    feats = stack.fit_transform(color_images)
    expected = np.hstack([clone(est).fit_transform(color_images) for _, est in parts])
    assert isinstance(stack, FeatureUnion)
    assert feats.dtype == np.float32 and feats.shape == expected.shape
    np.testing.assert_array_equal(feats, expected)
    np.testing.assert_array_equal(stack.transform(color_images), expected)


def test_with_a_learning_extractor(gray_images):
    stack = FeatureStack([("color", ColorHistogram()), ("bovw", _bovw())]).fit(gray_images)
    bovw = _bovw().fit(gray_images)
    np.testing.assert_array_equal(stack["bovw"].codebook_, bovw.codebook_)
    np.testing.assert_array_equal(stack.transform(gray_images)[:, 10:], bovw.transform(gray_images))


def test_output_is_float32_even_if_a_part_is_not(gray_images):
    from sklearn.preprocessing import FunctionTransformer

    flat64 = FunctionTransformer(lambda X: np.asarray(X, dtype=np.float64).reshape(len(X), -1))
    feats = FeatureStack([("raw", RawPixels()), ("f64", flat64)]).fit_transform(gray_images)
    assert feats.dtype == np.float32 and feats.shape == (12, 2 * 28 * 28)


def test_params_are_nested_under_extractors(color_images):
    stack = FeatureStack([("color", ColorHistogram()), ("raw", RawPixels())])
    params = stack.get_params()
    assert params["extractors"] is stack.extractors
    assert params["color__bins"] == 10
    stack.set_params(color__bins=4, raw="drop")
    assert stack.fit_transform(color_images).shape == (10, 4)
    assert "transformer_list" not in params
    assert clone(stack).get_params()["color__bins"] == 4


def test_feature_names_are_prefixed(color_images):
    stack = FeatureStack([("color", ColorHistogram(bins=2)), ("raw", RawPixels(size=(1, 1)))])
    stack.fit(color_images)
    names = list(stack.get_feature_names_out())
    assert names == ["color__colorhistogram0", "color__colorhistogram1", "raw__rawpixels0",
                     "raw__rawpixels1", "raw__rawpixels2"]


def test_weights_scale_blocks_in_fit_transform_and_transform_alike(color_images):
    """A saved weighted stack predicts on the features it was trained on: transform weighs
    the blocks as fit_transform does (it once skipped the weights)."""
    parts = [("hog", HOG()), ("color", ColorHistogram())]
    plain = FeatureStack(parts).fit_transform(color_images)
    weighted = FeatureStack(parts, transformer_weights={"color": 2.0})
    trained = weighted.fit_transform(color_images)
    n_hog = HOG().fit(color_images).n_features_out_
    np.testing.assert_allclose(trained, np.hstack([plain[:, :n_hog], 2 * plain[:, n_hog:]]))
    np.testing.assert_array_equal(weighted.transform(color_images), trained)


@pytest.mark.parametrize("extractors", [[], "hog", [HOG()], [("hog",)]])
def test_bad_extractors_raise_in_fit(color_images, extractors):
    with pytest.raises(ValueError, match="extractors must be a non-empty list of"):
        FeatureStack(extractors).fit(color_images)


def test_errors_of_a_part_reach_the_caller(color_images):
    stack = FeatureStack([("color", ColorHistogram(bins=0))])
    with pytest.raises(ValueError, match="bins must be an integer >= 1, got 0"):
        stack.fit(color_images)


def test_learns_from_data_if_any_part_does():
    assert not FeatureStack([("color", ColorHistogram()), ("raw", RawPixels())]).learns_from_data
    assert FeatureStack([("color", ColorHistogram()), ("bovw", _bovw())]).learns_from_data
    assert _bovw().learns_from_data and not RawPixels().learns_from_data


def test_n_features_out_is_the_sum(color_images):
    from sklearn.exceptions import NotFittedError

    stack = FeatureStack([("hog", HOG()), ("color", ColorHistogram(bins=6)), ("raw", "drop")])
    assert not hasattr(stack, "n_features_out_")
    with pytest.raises(NotFittedError):
        _ = stack.n_features_out_
    stack.fit(color_images)
    assert stack.n_features_out_ == stack["hog"].n_features_out_ + 6
    assert stack.n_features_out_ == stack.transform(color_images).shape[1]


@pytest.mark.parametrize("weights", [None, {"color": 2.0}, {"hog": 0.5, "raw": 3.0}])
@pytest.mark.parametrize("drop", [False, True])
def test_the_one_process_path_equals_feature_unions(color_images, gray_images, weights, drop):
    """In one process FeatureStack calls its extractors itself (a shortcut that BENCHMARKS.md
    measures): the same bytes as FeatureUnion.transform, weights and "drop" included."""
    for images in (color_images, gray_images):
        stack = FeatureStack([("hog", HOG(pixels_per_cell=(4, 4))), ("color", ColorHistogram(bins=6)),
                              ("raw", "drop" if drop else RawPixels(size=(4, 4)))],
                             transformer_weights=weights).fit(images)
        library = np.asarray(FeatureUnion.transform(stack, images), dtype=np.float32)
        np.testing.assert_array_equal(stack.transform(images), library)
        np.testing.assert_array_equal(stack.transform(images[:1]), library[:1])


def test_several_processes_go_through_feature_union(color_images):
    two = FeatureStack([("color", ColorHistogram(bins=6)), ("hog", HOG())], n_jobs=2).fit(color_images)
    np.testing.assert_array_equal(two.transform(color_images),
                                  np.asarray(FeatureUnion.transform(two, color_images), dtype=np.float32))


# ------------------------------------------- the one-process path, attacked (red team)
def _both_paths(stack, images):
    """``(fast, library)``: each a float32 array, or the exception it raised."""
    out = []
    for transform in (stack.transform, lambda X: np.asarray(FeatureUnion.transform(stack, X), dtype=np.float32)):
        try:
            out.append(transform(images))
        except Exception as exc:  # compared below
            out.append(exc)
    return out


def _assert_same(fast, library):
    if isinstance(library, Exception):
        assert type(fast) is type(library), (fast, library)
        return
    assert isinstance(fast, np.ndarray), fast
    assert fast.dtype == library.dtype == np.float32 and fast.shape == library.shape
    np.testing.assert_array_equal(fast, library)  # NaN in the same places


@pytest.mark.parametrize("weight", [np.float64(0.1), np.float32(0.1), np.float16(0.3), 3, True, 0, -0.0, -2.5, 1e-45,
                                    1e39, 1e308, float("nan"), float("inf"), np.array([2.0]), np.array(0.5)])
def test_the_one_process_path_equals_feature_unions_for_any_weight(color_images, weight):
    stack = FeatureStack([("hog", HOG(pixels_per_cell=(4, 4))), ("color", ColorHistogram(bins=6))],
                         transformer_weights={"hog": weight}).fit(color_images)
    with np.errstate(over="ignore", invalid="ignore"):
        _assert_same(*_both_paths(stack, color_images))


@pytest.mark.parametrize("part", ["float64", "int", "list", "float16"])
@pytest.mark.parametrize("weights", [None, {"x": 0.5}, {"x": 2}])
def test_the_one_process_path_equals_feature_unions_for_parts_of_other_types(gray_images, part, weights):
    from sklearn.preprocessing import FunctionTransformer

    flat = {"float64": lambda X: np.asarray(X, np.float64).reshape(len(X), -1) / 3,
            "int": lambda X: np.asarray(X).reshape(len(X), -1),
            "list": lambda X: np.asarray(X, np.float32).reshape(len(X), -1).tolist(),
            "float16": lambda X: np.asarray(X, np.float16).reshape(len(X), -1) / 7}[part]
    stack = FeatureStack([("color", ColorHistogram(bins=6)), ("x", FunctionTransformer(flat))],
                         transformer_weights=weights).fit(gray_images)
    _assert_same(*_both_paths(stack, gray_images))


@pytest.mark.parametrize("layout", ["drop first", "drop last", "drop middle", "one left", "weights of a dropped step",
                                    "empty weights"])
def test_the_one_process_path_equals_feature_unions_for_any_layout(color_images, layout):
    hog, color, raw = HOG(pixels_per_cell=(4, 4)), ColorHistogram(bins=6), RawPixels(size=(2, 2))
    parts, weights = {
        "drop first": ([("hog", "drop"), ("color", color), ("raw", raw)], {"raw": 3.0}),
        "drop last": ([("hog", hog), ("color", color), ("raw", "drop")], {"hog": 0.5}),
        "drop middle": ([("hog", hog), ("color", "drop"), ("raw", raw)], {"raw": 2.0}),
        "one left": ([("hog", "drop"), ("color", color)], {"color": 4.0}),
        "weights of a dropped step": ([("hog", "drop"), ("color", color)], {"hog": 9.0}),
        "empty weights": ([("hog", hog), ("color", color)], {}),
    }[layout]
    stack = FeatureStack(parts, transformer_weights=weights).fit(color_images)
    for images in (color_images, color_images[:1], color_images[::-1], np.asfortranarray(color_images)):
        _assert_same(*_both_paths(stack, images))


def test_the_one_process_path_raises_what_feature_union_raises(color_images, gray_images):
    unfitted = FeatureStack([("color", ColorHistogram(bins=6)), ("hog", HOG())])
    _assert_same(*_both_paths(unfitted, color_images))
    stack = FeatureStack([("color", ColorHistogram(bins=6)), ("hog", HOG())]).fit(color_images)
    _assert_same(*_both_paths(stack, gray_images))  # fitted on color images
    stack.set_params(color__bins=0)
    fast, library = _both_paths(stack, color_images)
    _assert_same(fast, library)
    assert str(fast) == str(library) == "bins must be an integer >= 1, got 0"


def test_n_jobs_one_takes_the_one_process_path_with_the_same_result(color_images):
    parts = [("color", ColorHistogram(bins=6)), ("hog", HOG())]
    one = FeatureStack(parts, n_jobs=1, transformer_weights={"hog": 0.25}).fit(color_images)
    _assert_same(*_both_paths(one, color_images))


def test_a_part_from_outside_goes_through_feature_union_and_its_checks(gray_images):
    """The one-process path takes cvpipe's extractors only: a part that returns 1-D output
    gets FeatureUnion's error, as fit_transform gives it."""
    from sklearn.preprocessing import FunctionTransformer

    flat_mean = FunctionTransformer(lambda X: np.asarray(X, dtype=np.float64).reshape(len(X), -1).mean(1))
    stack = FeatureStack([("hog", HOG()), ("mean", flat_mean)])
    with pytest.raises(ValueError, match="1 dimensions"):
        stack.fit_transform(gray_images)
    stack = FeatureStack([("hog", HOG())]).fit(gray_images)
    stack.set_params(extractors=[("hog", HOG()), ("mean", flat_mean)])
    with pytest.raises(Exception, match="1 dimensions|not fitted"):
        stack.transform(gray_images)


def test_transform_checks_the_parameters_as_fit_does(gray_images):
    stack = FeatureStack([("hog", HOG())]).fit(gray_images)
    stack.set_params(extractors=[])
    with pytest.raises(ValueError, match="extractors must be a non-empty list"):
        stack.transform(gray_images)
