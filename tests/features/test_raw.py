"""RawPixels: values, resize equal to skimage's per image, grayscale luma, errors."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.transform
from sklearn.exceptions import NotFittedError

from features.raw import LUMA_WEIGHTS, RawPixels, resize_batch, rgb_to_gray


def test_flattens_and_scales_uint8(color_images):
    feats = RawPixels().fit_transform(color_images)
    assert feats.dtype == np.float32
    assert feats.shape == (10, 32 * 32 * 3)
    np.testing.assert_allclose(feats, color_images.reshape(10, -1) / 255.0, rtol=1e-6)


def test_float_input_is_kept_on_its_scale(rng):
    images = rng.random((3, 5, 7))
    np.testing.assert_allclose(RawPixels().fit_transform(images), images.reshape(3, -1), rtol=1e-6)


def test_grayscale_is_bt601_luma(color_images):
    feats = RawPixels(grayscale=True).fit_transform(color_images)
    expected = (color_images / 255.0) @ np.array(LUMA_WEIGHTS)
    assert feats.shape == (10, 32 * 32)
    np.testing.assert_allclose(feats, expected.reshape(10, -1), atol=1e-6)


def test_grayscale_input_unchanged_by_grayscale_flag(gray_images):
    a = RawPixels(grayscale=True).fit_transform(gray_images)
    b = RawPixels().fit_transform(gray_images)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("size", [(14, 14), (10, 20), (40, 33), 16])
@pytest.mark.parametrize("fixture", ["gray_images", "color_images"])
def test_resize_equals_skimage_per_image(request, fixture, size):
    images = request.getfixturevalue(fixture)
    pair = (size, size) if isinstance(size, int) else size
    feats = RawPixels(size=size).fit_transform(images)
    expected = np.stack(
        [skimage.transform.resize(im, pair, anti_aliasing=True).ravel() for im in images]
    )
    assert feats.shape == expected.shape
    np.testing.assert_allclose(feats, expected, atol=1e-6)


def test_resize_batch_same_size_is_identity(rng):
    images = rng.random((2, 6, 6)).astype(np.float32)
    assert resize_batch(images, (6, 6)) is images


def test_resize_then_grayscale_order_is_documented_one(color_images):
    feats = RawPixels(size=(8, 8), grayscale=True).fit_transform(color_images)
    gray = rgb_to_gray(color_images.astype(np.float32) / 255)
    expected = np.stack([skimage.transform.resize(im, (8, 8), anti_aliasing=True) for im in gray])
    np.testing.assert_allclose(feats, expected.reshape(10, -1), atol=1e-6)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"size": 0}, r"size must be None, an integer >= 1 or a pair \(height, width\) of integers >= 1, got 0"),
        ({"size": True}, "size must be .* got True"),
        ({"size": (4,)}, "size must be"),
        ({"size": (4, 2.5)}, "size must be"),
        ({"grayscale": "yes"}, "grayscale must be"),
        ({"device": "tpu"}, "device must be"),
    ],
)
def test_bad_params_raise_in_fit(gray_images, params, match):
    est = RawPixels(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        est.fit(gray_images)


@pytest.mark.parametrize("size", [np.int64(4), [4, 4], np.array([4, 4])])
def test_size_as_numpy_int_list_or_array(gray_images, size):
    expected = RawPixels(size=(4, 4)).fit_transform(gray_images)
    np.testing.assert_array_equal(RawPixels(size=size).fit_transform(gray_images), expected)


def test_transform_before_fit(gray_images):
    with pytest.raises(NotFittedError):
        RawPixels().transform(gray_images)


def test_transform_checks_image_shape(gray_images, color_images):
    est = RawPixels().fit(gray_images)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(28, 28\)"):
        est.transform(color_images)


@pytest.mark.gpu
@pytest.mark.parametrize("params", [{}, {"size": (14, 14)}, {"size": (40, 20), "grayscale": True}])
def test_gpu_matches_cpu(color_images, params):
    cpu = RawPixels(device="cpu", **params).fit_transform(color_images)
    gpu = RawPixels(device="gpu", **params).fit_transform(color_images)
    assert isinstance(gpu, np.ndarray)
    np.testing.assert_allclose(gpu, cpu, atol=1e-5)
