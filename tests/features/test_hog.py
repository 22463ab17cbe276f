"""HOG: equal to skimage.feature.hog image by image, fast path and float path alike."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import features._hog_histograms as histograms_module
import features.hog as hog_module
from features.hog import BLOCK_NORMS, HOG, hog_reference

ATOL = 1e-5

# (image height, width), pixels_per_cell, cells_per_block: even, uneven, non-square.
GEOMETRIES = [
    ((28, 28), (7, 7), (2, 2)),
    ((30, 27), (8, 8), (2, 2)),
    ((28, 28), (6, 6), (2, 2)),
    ((33, 40), (5, 7), (3, 2)),
]


def _images(rng, size, color, n=4, high=256):
    shape = (n, *size, 3) if color else (n, *size)
    return rng.integers(0, high, size=shape, dtype=np.uint8)


def _assert_matches_skimage(images, **params):
    ours = HOG(device="cpu", **params).fit_transform(images)
    expected = hog_reference(images, **params)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g[0]}-cell{g[1]}-block{g[2]}")
@pytest.mark.parametrize("transform_sqrt", [False, True], ids=["plain", "sqrt"])
@pytest.mark.parametrize("color", [False, True], ids=["gray", "color"])
@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
def test_matches_skimage_on_uint8(rng, geometry, transform_sqrt, color, block_norm):
    size, cell, block = geometry
    _assert_matches_skimage(_images(rng, size, color), orientations=9, pixels_per_cell=cell,
                            cells_per_block=block, block_norm=block_norm,
                            transform_sqrt=transform_sqrt)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("color", [False, True], ids=["gray", "color"])
@pytest.mark.parametrize("transform_sqrt", [False, True], ids=["plain", "sqrt"])
def test_matches_skimage_on_float_images(rng, dtype, color, transform_sqrt):
    images = (_images(rng, (30, 27), color) / 255.0).astype(dtype)
    _assert_matches_skimage(images, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                            block_norm="L2-Hys", transform_sqrt=transform_sqrt)


@pytest.mark.parametrize("orientations", [1, 2, 4, 7, 12, 36])
@pytest.mark.parametrize("color", [False, True], ids=["gray", "color"])
def test_matches_skimage_on_bin_edges(rng, orientations, color):
    """Few grey levels: many gradients at exactly 0, 45, 90, 135 degrees, and ties."""
    images = _images(rng, (24, 24), color, n=8, high=3)
    _assert_matches_skimage(images, orientations=orientations, pixels_per_cell=(4, 4),
                            cells_per_block=(2, 2), block_norm="L1")


@pytest.mark.parametrize(
    "size, cell, block",
    [((2, 9), (1, 3), (2, 1)), ((3, 7), (1, 1), (1, 1)), ((5, 5), (2, 2), (2, 2)),
     ((64, 48), (16, 16), (3, 3))],
)
@pytest.mark.parametrize("color", [False, True], ids=["gray", "color"])
def test_matches_skimage_on_small_and_large_geometries(rng, size, cell, block, color):
    """Images two pixels high (no inner gradient row), 1x1 cells, and big cells."""
    _assert_matches_skimage(_images(rng, size, color, n=3), orientations=5, pixels_per_cell=cell,
                            cells_per_block=block, block_norm="L2")


@pytest.mark.parametrize("order", [[0, 1, 2], [1, 0, 2]])
@pytest.mark.parametrize("orientations", [4, 9, 18])
def test_color_channel_choice_follows_float_hypot(order, orientations):
    """1**2 + 189**2 == 99**2 + 161**2, but np.hypot differs by one ulp: skimage's argmax
    over hypot picks (99, 161) in either channel order, and so must we (an exact integer
    comparison of squared magnitudes would call it a tie and pick the first channel)."""
    assert np.hypot(1.0, 189.0) < np.hypot(99.0, 161.0)
    image = np.zeros((1, 3, 3, 3), dtype=np.uint8)
    image[0, 2, 1, 0], image[0, 1, 2, 0] = 1, 189
    image[0, 2, 1, 1], image[0, 1, 2, 1] = 99, 161
    image = image[..., order]
    _assert_matches_skimage(image, orientations=orientations, pixels_per_cell=(3, 3),
                            cells_per_block=(1, 1), block_norm="L1")


def test_constant_images_give_zeros():
    images = np.full((3, 16, 16), 7, dtype=np.uint8)
    features = HOG(pixels_per_cell=(4, 4), device="cpu").fit_transform(images)
    assert not features.any()


def test_lookup_path_equals_float_path(rng, gray_images, color_images):
    """The 511x511 table route and the direct float64 route give the same histograms
    (to float32 rounding: gray images gather float32 magnitudes)."""
    for images, cell in [(gray_images, (7, 7)), (color_images, (5, 6))]:
        cells = (images.shape[1] // cell[0], images.shape[2] // cell[1])
        lookup = histograms_module._LookupHistograms(np, len(images), images.shape[1:], cell, cells, 9)
        direct = histograms_module._float_histograms(images, cell, cells, 9, transform_sqrt=False)
        np.testing.assert_allclose(lookup(images), direct, rtol=1e-6, atol=0)


@pytest.mark.parametrize("chunk_pixels", [1, 1000, 5000])
@pytest.mark.parametrize("color", [False, True], ids=["gray", "color"])
def test_chunking_does_not_change_the_result(monkeypatch, rng, chunk_pixels, color):
    images = _images(rng, (28, 28), color, n=11)
    expected = HOG(pixels_per_cell=(7, 7), device="cpu").fit_transform(images)
    monkeypatch.setitem(hog_module._CHUNK_PIXELS, "numpy", chunk_pixels)
    np.testing.assert_array_equal(HOG(pixels_per_cell=(7, 7), device="cpu").fit_transform(images),
                                  expected)


@pytest.mark.parametrize(
    "params, n_features",
    [
        (dict(orientations=9, pixels_per_cell=(7, 7), cells_per_block=(2, 2)), 3 * 3 * 4 * 9),
        (dict(orientations=6, pixels_per_cell=(8, 8), cells_per_block=(3, 3)), 1 * 1 * 9 * 6),
        (dict(orientations=4, pixels_per_cell=(5, 7), cells_per_block=(3, 2)), 3 * 3 * 6 * 4),
    ],
)
def test_output_dtype_and_shape(gray_images, params, n_features):
    hog = HOG(device="cpu", **params).fit(gray_images)
    features = hog.transform(gray_images)
    assert features.dtype == np.float32
    assert features.shape == (len(gray_images), n_features) == (len(gray_images), hog.n_features_out_)
    assert features.flags.c_contiguous
    assert len(hog.get_feature_names_out()) == n_features


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(orientations=0), r"orientations must be an integer >= 1, got 0"),
        (dict(orientations=-3), r"orientations must be an integer >= 1, got -3"),
        (dict(orientations=2.5), r"orientations must be an integer >= 1, got 2.5"),
        (dict(orientations=True), r"orientations must be an integer >= 1, got True"),
        (dict(pixels_per_cell=(0, 8)), r"pixels_per_cell must be a pair of integers >= 1, got \(0, 8\)"),
        (dict(pixels_per_cell=8), r"pixels_per_cell must be a pair of integers >= 1, got 8"),
        (dict(cells_per_block=(2, 2, 2)), r"cells_per_block must be a pair"),
        (dict(pixels_per_cell=(32, 32)), r"at least 64x64 pixels .* got 28x28"),
        (dict(pixels_per_cell=(7, 7), cells_per_block=(5, 1)), r"at least 35x7 pixels .* got 28x28"),
        (dict(block_norm="L3"), r"block_norm must be one of .*'L2-Hys'.*got 'L3'"),
        (dict(transform_sqrt="yes"), r"transform_sqrt must be True or False, got 'yes'"),
        (dict(device="tpu"), r"device must be one of .* got 'tpu'"),
    ],
)
def test_bad_parameters_raise(gray_images, params, match):
    hog = HOG(**{"device": "cpu", **params})
    with pytest.raises(ValueError, match=match):
        hog.fit(gray_images)


@pytest.mark.parametrize("pair", [[7, 7], np.array([7, 7]), (np.int64(7), 7)])
def test_pairs_as_lists_arrays_or_numpy_ints(gray_images, pair):
    expected = HOG(pixels_per_cell=(7, 7), device="cpu").fit_transform(gray_images)
    hog = HOG(pixels_per_cell=pair, cells_per_block=list((2, 2)), orientations=np.int32(9), device="cpu")
    np.testing.assert_array_equal(hog.fit_transform(gray_images), expected)


def test_parameters_are_checked_again_at_transform(gray_images):
    hog = HOG(pixels_per_cell=(7, 7), device="cpu").fit(gray_images)
    hog.set_params(block_norm="max")
    with pytest.raises(ValueError, match=r"block_norm must be one of .* got 'max'"):
        hog.transform(gray_images)


def test_other_image_shape_at_transform_raises(gray_images, color_images):
    hog = HOG(pixels_per_cell=(7, 7), device="cpu").fit(gray_images)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(28, 28\), got .*\(32, 32, 3\)"):
        hog.transform(color_images)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(28, 28\), got .*\(28, 27\)"):
        hog.transform(gray_images[:, :, :27])


def test_transform_sqrt_rejects_negative_floats(gray_images):
    images = gray_images / 255.0 - 0.5  # check_images holds float images to [0, 1]
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got values in \[-0.5"):
        HOG(pixels_per_cell=(7, 7), transform_sqrt=True, device="cpu").fit(images)


def test_works_in_a_pipeline_with_cross_validation(rng):
    """Two classes told apart by stripe direction: HOG must make them separable."""
    n = 40
    y = np.arange(n) % 2
    stripes = (np.arange(24) // 3 % 2 * 200).astype(np.uint8)
    images = np.where(y[:, None, None] == 0, stripes[None, :, None], stripes[None, None, :])
    images = np.clip(images + rng.integers(0, 40, size=(n, 24, 24)), 0, 255).astype(np.uint8)
    model = make_pipeline(HOG(pixels_per_cell=(6, 6), device="cpu"), StandardScaler(),
                          LogisticRegression(max_iter=200))
    scores = cross_val_score(model, images, y, cv=4)
    assert scores.mean() > 0.9


def test_get_params_set_params_clone_round_trip():
    hog = HOG(orientations=6, pixels_per_cell=(5, 7), cells_per_block=(3, 2), block_norm="L1",
              transform_sqrt=True, device="cpu")
    params = hog.get_params()
    assert params == dict(orientations=6, pixels_per_cell=(5, 7), cells_per_block=(3, 2),
                          block_norm="L1", transform_sqrt=True, device="cpu")
    assert clone(hog).get_params() == params
    assert HOG().set_params(**params).get_params() == params


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["gray", "color", "float", "sqrt"])
def test_gpu_equals_cpu(rng, kind):
    images = _images(rng, (30, 27), kind == "color", n=64)
    params = dict(pixels_per_cell=(8, 8), cells_per_block=(2, 2), transform_sqrt=kind == "sqrt")
    if kind == "float":
        images = images / 255.0
    cpu = HOG(device="cpu", **params).fit_transform(images)
    gpu = HOG(device="gpu", **params).fit_transform(images)
    assert isinstance(gpu, np.ndarray) and gpu.dtype == np.float32
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-6)


def test_a_thread_reuses_its_cpu_plan_and_threads_never_share_one(rng):
    """One image per call (a service request with a color model: gray ones take the
    compiled kernel): the buffers are built once per thread and size, reusing them gives
    what a fresh plan gives, and another thread gets a plan of its own."""
    import threading

    images = _images(rng, (28, 28), True, n=3)
    hog = HOG(pixels_per_cell=(7, 7), device="cpu").fit(images)
    args = (np, 1, (28, 28, 3), (7, 7), (4, 4), 9)
    fresh = [histograms_module._LookupHistograms(*args)(images[i:i + 1]) for i in range(3)]
    plan = histograms_module._lookup_histograms(*args)
    assert histograms_module._lookup_histograms(*args) is plan
    for i in range(3):
        hog.transform(images[i:i + 1])
        assert histograms_module._lookup_histograms(*args) is plan  # the transform used and kept it
        np.testing.assert_array_equal(plan(images[i:i + 1]), fresh[i])
    other = []
    worker = threading.Thread(target=lambda: other.append(histograms_module._lookup_histograms(*args)))
    worker.start()
    worker.join()
    assert other[0] is not plan
    for n in range(2, 2 + histograms_module._PLANS_PER_THREAD):  # other sizes push the oldest plan out
        histograms_module._lookup_histograms(np, n, (28, 28, 3), (7, 7), (4, 4), 9)
    assert histograms_module._lookup_histograms(*args) is not plan


@pytest.mark.parametrize("block_norm", BLOCK_NORMS)
@pytest.mark.parametrize("size, cell, block", [((28, 28), (7, 7), (2, 2)), ((31, 23), (4, 5), (3, 2)),
                                               ((16, 16), (8, 8), (2, 2)), ((9, 13), (3, 3), (1, 1))])
def test_compiled_gray_kernel_equals_the_array_route(rng, block_norm, size, cell, block):
    images = _images(rng, size, False, n=5)
    images[0] = 0  # flat image: every block normalizes a zero histogram
    hog = HOG(pixels_per_cell=cell, cells_per_block=block, block_norm=block_norm, device="cpu").fit(images)
    cells = (size[0] // cell[0], size[1] // cell[1])
    np.testing.assert_allclose(hog.transform(images), hog._transform_arrays(images, cell, block, cells),
                               rtol=2e-6, atol=2e-7)
