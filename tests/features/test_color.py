"""ColorHistogram against per-image np.histogram references (cs231n's recipe)."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.color
from sklearn.exceptions import NotFittedError

from features.color import ColorHistogram, bin_index, rgb_to_hsv


def _hue_reference(images, bins=10, value_range=(0.0, 1.0), normalize=True):
    """cs231n's color_histogram_hsv, one image at a time (skimage's HSV = matplotlib's)."""
    out = []
    for im in images:
        hue = skimage.color.rgb2hsv(im / 255.0)[..., 0]
        edges = np.linspace(*value_range, bins + 1)
        hist, edges = np.histogram(hue, bins=edges, density=normalize)
        out.append(hist * np.diff(edges) if normalize else hist)
    return np.array(out)


def _joint_reference(images, bins, normalize=True):
    out = []
    for im in images:
        hsv = skimage.color.rgb2hsv(im / 255.0).reshape(-1, 3)
        hist, _ = np.histogramdd(hsv, bins=[np.linspace(0, 1, bins + 1)] * 3)
        hist = hist.ravel()
        out.append(hist / hist.sum() if normalize else hist)
    return np.array(out)


@pytest.fixture
def tricky_images(color_images):
    """Random colors plus gray pixels and two-channel ties (hue on bin edges)."""
    images = color_images.copy()
    images[:, :4] = images[:, :4, :, :1]  # gray: hue 0
    images[:, 4:8, :, 1] = images[:, 4:8, :, 2]  # g == b: ties in the max
    images[:, 8:10, :, 0] = images[:, 8:10, :, 1]  # r == g
    return images


def test_rgb_to_hsv_equals_skimage(tricky_images):
    x = tricky_images / 255.0
    np.testing.assert_array_equal(rgb_to_hsv(x), skimage.color.rgb2hsv(x))


@pytest.mark.parametrize("bins", [1, 3, 6, 10, 12, 360])
@pytest.mark.parametrize("value_range", [(0.0, 1.0), (0.1, 0.7)])
def test_bin_index_equals_np_histogram(rng, bins, value_range):
    values = np.concatenate([rng.random(500), np.linspace(-0.2, 1.2, 141), np.linspace(0, 1, bins + 1)])
    index, inside = bin_index(values, bins, value_range)
    counts = np.bincount(index[inside], minlength=bins)
    np.testing.assert_array_equal(counts, np.histogram(values, bins=bins, range=value_range)[0])


@pytest.mark.parametrize("bins", [4, 10, 18])
def test_hue_mode_equals_cs231n_reference(tricky_images, bins):
    feats = ColorHistogram(bins=bins).fit_transform(tricky_images)
    assert feats.dtype == np.float32 and feats.shape == (10, bins)
    np.testing.assert_allclose(feats, _hue_reference(tricky_images, bins), atol=1e-6)
    np.testing.assert_allclose(feats.sum(axis=1), 1.0, rtol=1e-6)


def test_hue_mode_counts_and_value_range(tricky_images):
    est = ColorHistogram(bins=5, value_range=(0.2, 0.8), normalize=False)
    feats = est.fit_transform(tricky_images)
    expected = _hue_reference(tricky_images, 5, (0.2, 0.8), normalize=False)
    np.testing.assert_array_equal(feats, expected)
    normalized = ColorHistogram(bins=5, value_range=(0.2, 0.8)).fit_transform(tricky_images)
    np.testing.assert_allclose(normalized, expected / expected.sum(axis=1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("bins", [2, 4, 8])
@pytest.mark.parametrize("normalize", [True, False])
def test_joint_mode_equals_histogramdd(tricky_images, bins, normalize):
    feats = ColorHistogram(bins=bins, mode="joint", normalize=normalize).fit_transform(tricky_images)
    assert feats.shape == (10, bins**3)
    np.testing.assert_allclose(feats, _joint_reference(tricky_images, bins, normalize), atol=1e-6)


def test_gray_pixels_fall_in_first_hue_bin():
    images = np.full((2, 4, 4, 3), 77, dtype=np.uint8)
    feats = ColorHistogram(bins=4).fit_transform(images)
    np.testing.assert_array_equal(feats, [[1, 0, 0, 0]] * 2)


def test_grayscale_hue_mode_is_intensity_histogram(gray_images):
    feats = ColorHistogram(bins=8).fit_transform(gray_images)
    expected = np.stack(
        [np.histogram(im / 255.0, bins=np.linspace(0, 1, 9))[0] / im.size for im in gray_images]
    )
    np.testing.assert_allclose(feats, expected, atol=1e-6)


def test_grayscale_joint_mode_equals_replicated_rgb(gray_images):
    est = ColorHistogram(bins=4, mode="joint")
    gray = est.fit_transform(gray_images)
    rgb = ColorHistogram(bins=4, mode="joint").fit_transform(np.repeat(gray_images[..., None], 3, axis=3))
    np.testing.assert_array_equal(gray, rgb)
    assert np.all(gray.reshape(-1, 4, 4, 4)[:, 1:, :, :] == 0)  # no hue
    assert np.all(gray.reshape(-1, 4, 4, 4)[:, :, 1:, :] == 0)  # no saturation


def test_float_input_equals_uint8(tricky_images):
    a = ColorHistogram(mode="joint", bins=3).fit_transform(tricky_images)
    b = ColorHistogram(mode="joint", bins=3).fit_transform(tricky_images / 255.0)
    np.testing.assert_array_equal(a, b)


def test_chunking_does_not_change_results(monkeypatch, tricky_images):
    import features.color

    whole = ColorHistogram(bins=7).fit_transform(tricky_images)
    monkeypatch.setattr(features.color, "_CHUNK_PIXELS", 3 * 32 * 32)
    np.testing.assert_array_equal(ColorHistogram(bins=7).fit_transform(tricky_images), whole)


def test_empty_value_range_gives_zeros():
    images = np.zeros((1, 3, 3, 3), dtype=np.uint8)  # black: hue 0
    feats = ColorHistogram(bins=2, value_range=(0.5, 1.0)).fit_transform(images)
    np.testing.assert_array_equal(feats, [[0, 0]])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"bins": 0}, r"bins must be an integer >= 1, got 0"),
        ({"bins": 2.0}, r"bins must be an integer >= 1, got 2.0"),
        ({"mode": "rgb"}, r"mode must be one of \('hue', 'joint'\), got 'rgb'"),
        ({"value_range": (0.5, 0.5)}, "value_range must be"),
        ({"value_range": "wide"}, "value_range must be"),
        ({"value_range": (0, np.inf)}, "value_range must be"),
        ({"normalize": None}, "normalize must be"),
    ],
)
def test_bad_params_raise_in_fit(color_images, params, match):
    with pytest.raises(ValueError, match=match):
        ColorHistogram(**params).fit(color_images)


def test_value_range_as_list_or_array(color_images):
    expected = ColorHistogram(value_range=(0.25, 0.75)).fit_transform(color_images)
    for value_range in ([0.25, 0.75], np.array([0.25, 0.75]), (np.float32(0.25), 0.75)):
        np.testing.assert_array_equal(ColorHistogram(value_range=value_range).fit_transform(color_images), expected)


def test_transform_before_fit(color_images):
    with pytest.raises(NotFittedError):
        ColorHistogram().transform(color_images)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["hue", "joint"])
@pytest.mark.parametrize("fixture", ["tricky_images", "gray_images"])
def test_gpu_matches_cpu(request, fixture, mode):
    images = request.getfixturevalue(fixture)
    cpu = ColorHistogram(bins=6, mode=mode, device="cpu").fit_transform(images)
    gpu = ColorHistogram(bins=6, mode=mode, device="gpu").fit_transform(images)
    assert isinstance(gpu, np.ndarray)
    np.testing.assert_array_equal(gpu, cpu)
