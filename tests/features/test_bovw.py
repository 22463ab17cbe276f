"""BagOfVisualWords: descriptors, codebook, encodings and pooling against slow references."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import features.bovw
from features._local_descriptors import hog_descriptors, patch_descriptors, zca_whitening
from features.bovw import BagOfVisualWords
from features.raw import rgb_to_gray

SMALL = dict(n_words=8, patch_size=5, stride=3, random_state=0)


# ----------------------------------------------------------- slow references
def _patches_reference(images255, p, s, normalize):
    n, h, w = images255.shape[:3]
    out = []
    for im in images255:
        rows = []
        for y in range(0, h - p + 1, s):
            for x in range(0, w - p + 1, s):
                v = im[y : y + p, x : x + p].astype(np.float64).ravel()
                if normalize:
                    v = (v - v.mean()) / np.sqrt(v.var(ddof=1) + 10)
                else:
                    v = v / 255
                rows.append(v)
        out.append(rows)
    return np.array(out)


def _hog_reference(images01, p, s):
    gray = rgb_to_gray(images01) if images01.ndim == 4 else images01
    n, h, w = gray.shape
    out = np.zeros((n, len(range(0, h - p + 1, s)) * len(range(0, w - p + 1, s)), 36))
    for i, im in enumerate(gray.astype(np.float64)):
        pos = 0
        for y in range(0, h - p + 1, s):
            for x in range(0, w - p + 1, s):
                for cell, (r0, r1, c0, c1) in enumerate(
                    [(0, p // 2, 0, p // 2), (0, p // 2, p // 2, p), (p // 2, p, 0, p // 2), (p // 2, p, p // 2, p)]
                ):
                    for yy in range(y + r0, y + r1):
                        for xx in range(x + c0, x + c1):
                            gy = im[yy + 1, xx] - im[yy - 1, xx] if 0 < yy < h - 1 else 0.0
                            gx = im[yy, xx + 1] - im[yy, xx - 1] if 0 < xx < w - 1 else 0.0
                            angle = np.rad2deg(np.arctan2(gy, gx)) % 180
                            out[i, pos, cell * 9 + min(int(angle // 20), 8)] += np.hypot(gx, gy)
                pos += 1
    return out


def _pool_reference(codes, quadrants, normalize):
    """Pool per-descriptor codes (n, P, k) over the whole image and, if given, quadrants."""
    blocks = [codes.sum(axis=1)]
    if quadrants is not None:
        blocks += [codes[:, quadrants == q].sum(axis=1) for q in range(4)]
    out = []
    for block in blocks:
        norm = normalize(block)
        out.append(block / np.where(norm > 0, norm, 1)[:, None])
    return np.concatenate(out, axis=1)


def _quadrants_reference(h, w, p, s):
    q = []
    for y in range(0, h - p + 1, s):
        for x in range(0, w - p + 1, s):
            q.append(2 * (y + p / 2 >= h / 2) + (x + p / 2 >= w / 2))
    return np.array(q)


# ---------------------------------------------------------------- descriptors
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("fixture", ["gray_images", "color_images"])
def test_patch_descriptors_equal_loops(request, fixture, normalize):
    images = request.getfixturevalue(fixture)[:3].astype(np.float32)
    fast = patch_descriptors(images, 6, 4, normalize)
    np.testing.assert_allclose(fast, _patches_reference(images, 6, 4, normalize), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("p, s", [(4, 2), (5, 3)])
@pytest.mark.parametrize("fixture", ["gray_images", "color_images"])
def test_hog_descriptors_equal_loops(request, fixture, p, s):
    images = request.getfixturevalue(fixture)[:2].astype(np.float32) / 255
    fast = hog_descriptors(images, p, s, normalize=False)
    np.testing.assert_allclose(fast, _hog_reference(images, p, s), rtol=1e-4, atol=1e-4)
    unit = hog_descriptors(images, p, s, normalize=True)
    norms = np.linalg.norm(unit, axis=2)
    np.testing.assert_allclose(norms[norms > 0.5], 1.0, rtol=1e-4)


def test_zca_whitening_decorrelates(rng):
    X = rng.normal(size=(4000, 5)) @ rng.normal(size=(5, 5))
    mean, matrix = zca_whitening(X, eps=1e-9)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-5)
    np.testing.assert_allclose(np.cov((X - mean) @ matrix, rowvar=False), np.eye(5), atol=1e-3)


# ---------------------------------------------------------- fit and transform
@pytest.mark.parametrize(
    "params, n_features",
    [
        ({}, 8),
        ({"spatial_pyramid": True}, 40),
        ({"assignment": "soft"}, 8),
        ({"descriptor": "hog", "spatial_pyramid": True, "assignment": "soft"}, 40),
        ({"whiten": False, "normalize_patches": False}, 8),
    ],
)
@pytest.mark.parametrize("fixture", ["gray_images", "color_images"])
def test_shapes_and_dtype(request, fixture, params, n_features):
    images = request.getfixturevalue(fixture)
    est = BagOfVisualWords(**{**SMALL, **params}).fit(images)
    feats = est.transform(images)
    assert feats.dtype == np.float32 and feats.shape == (len(images), n_features)
    n_dims = 36 if params.get("descriptor") == "hog" else 25 * (3 if images.ndim == 4 else 1)
    assert est.codebook_.shape == (8, n_dims) and est.codebook_.dtype == np.float32
    assert est.n_features_out_ == n_features


def test_same_seed_same_codebook_and_features(color_images):
    a = BagOfVisualWords(**SMALL, n_fit_descriptors=200).fit(color_images)
    b = BagOfVisualWords(**SMALL, n_fit_descriptors=200).fit(color_images)
    np.testing.assert_array_equal(a.codebook_, b.codebook_)
    np.testing.assert_array_equal(a.transform(color_images), b.transform(color_images))
    c = BagOfVisualWords(**{**SMALL, "random_state": 1}, n_fit_descriptors=200).fit(color_images)
    assert not np.array_equal(a.codebook_, c.codebook_)


def test_fit_samples_at_most_n_fit_descriptors(gray_images):
    est = BagOfVisualWords(**SMALL, n_fit_descriptors=50).fit(gray_images)
    assert est.n_fit_descriptors_ == 50
    est = BagOfVisualWords(**SMALL).fit(gray_images)
    assert est.n_fit_descriptors_ == 12 * 8 * 8  # all of them: 8 x 8 positions per image


@pytest.mark.parametrize("descriptor", ["patch", "hog"])
def test_chunking_does_not_change_codebook_or_features(monkeypatch, gray_images, descriptor):
    params = dict(SMALL, n_fit_descriptors=300, spatial_pyramid=True, descriptor=descriptor)
    whole = BagOfVisualWords(**params).fit(gray_images)
    monkeypatch.setattr(features.bovw, "_CHUNK_BYTES", 1)  # one image per chunk
    chunked = BagOfVisualWords(**params).fit(gray_images)
    np.testing.assert_array_equal(chunked.codebook_, whole.codebook_)
    np.testing.assert_array_equal(chunked.transform(gray_images), whole.transform(gray_images))


@pytest.mark.parametrize("pyramid", [False, True])
@pytest.mark.parametrize("descriptor", ["patch", "hog"])
def test_hard_assignment_equals_brute_force_argmin(color_images, descriptor, pyramid):
    est = BagOfVisualWords(**SMALL, descriptor=descriptor, spatial_pyramid=pyramid).fit(color_images)
    desc = est.local_descriptors(color_images).astype(np.float64)
    centres = est.codebook_.astype(np.float64)
    words = np.zeros(desc.shape[:2], dtype=np.int64)
    for i in range(desc.shape[0]):
        for j in range(desc.shape[1]):
            words[i, j] = np.argmin([np.sum((desc[i, j] - c) ** 2) for c in centres])
    onehot = np.eye(est.n_words)[words]
    quadrants = _quadrants_reference(32, 32, 5, 3) if pyramid else None
    expected = _pool_reference(onehot, quadrants, lambda b: b.sum(axis=1))
    np.testing.assert_allclose(est.transform(color_images), expected, atol=1e-6)


@pytest.mark.parametrize("pyramid", [False, True])
def test_soft_encoding_equals_naive_triangle(gray_images, pyramid):
    est = BagOfVisualWords(**SMALL, assignment="soft", spatial_pyramid=pyramid).fit(gray_images)
    desc = est.local_descriptors(gray_images).astype(np.float64)
    codes = np.zeros(desc.shape[:2] + (est.n_words,))
    for i in range(desc.shape[0]):
        for j in range(desc.shape[1]):
            z = [np.sqrt(np.sum((desc[i, j] - c) ** 2)) for c in est.codebook_.astype(np.float64)]
            codes[i, j] = [max(0.0, np.mean(z) - zk) for zk in z]
    quadrants = _quadrants_reference(28, 28, 5, 3) if pyramid else None
    expected = _pool_reference(codes, quadrants, lambda b: np.sqrt((b * b).sum(axis=1)))
    np.testing.assert_allclose(est.transform(gray_images), expected, rtol=1e-4, atol=1e-5)


def test_histograms_are_normalized_per_region(color_images):
    hard = BagOfVisualWords(**SMALL, spatial_pyramid=True).fit_transform(color_images)
    np.testing.assert_allclose(hard.reshape(10, 5, 8).sum(axis=2), 1.0, rtol=1e-6)
    soft = BagOfVisualWords(**SMALL, assignment="soft", spatial_pyramid=True).fit_transform(color_images)
    np.testing.assert_allclose(np.linalg.norm(soft.reshape(10, 5, 8), axis=2), 1.0, rtol=1e-5)
    assert soft.min() >= 0


def test_pyramid_places_a_quadrant_pattern_in_its_block(rng):
    # Flat gray images, some with texture in the top-right quadrant only, far enough
    # from the midlines that every patch touching it has its centre in that quadrant.
    images = np.full((8, 28, 28), 128, dtype=np.uint8)
    images[:4, 2:10, 18:26] = rng.integers(0, 256, size=(4, 8, 8))
    est = BagOfVisualWords(n_words=4, patch_size=4, stride=2, random_state=0, spatial_pyramid=True)
    blocks = est.fit_transform(images).reshape(8, 5, 4)
    flat_word = np.argmax(blocks[7, 0])  # a flat image: every patch is the same word
    np.testing.assert_array_equal(blocks[7], np.eye(4)[[flat_word] * 5])
    for block in (1, 3, 4):  # top-left, bottom-left, bottom-right: only the flat word
        np.testing.assert_array_equal(blocks[:4, block], np.eye(4)[[flat_word] * 4])
    textured_tr = 1 - blocks[:4, 2, flat_word]  # top-right: textured words too
    assert np.all(textured_tr > 0.25)
    # All textured descriptors are in the top-right quadrant: the whole-image block
    # holds the same count of them, out of all positions.
    quadrants = _quadrants_reference(28, 28, 4, 2)
    np.testing.assert_allclose(
        (1 - blocks[:4, 0, flat_word]) * len(quadrants), textured_tr * np.sum(quadrants == 1), rtol=1e-5
    )


def test_float_images_equal_uint8(color_images):
    a = BagOfVisualWords(**SMALL).fit(color_images)
    b = BagOfVisualWords(**SMALL).fit(color_images / 255.0)
    np.testing.assert_allclose(b.codebook_, a.codebook_, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params, match",
    [
        ({"patch_size": 29}, r"patch_size=29 does not fit in images of 28x28 pixels"),
        ({"n_words": 0}, r"n_words must be an integer >= 1, got 0"),
        ({"n_words": 2.5}, "n_words must be an integer"),
        ({"descriptor": "sift"}, r"descriptor must be one of \('patch', 'hog'\), got 'sift'"),
        ({"descriptor": "hog", "patch_size": 1}, r"patch_size must be an integer >= 2 with descriptor='hog' .*got 1"),
        ({"patch_size": 0}, r"patch_size must be an integer >= 1, got 0"),
        ({"normalize_patches": 1}, r"normalize_patches must be True or False, got 1"),
        ({"spatial_pyramid": "yes"}, r"spatial_pyramid must be True or False, got 'yes'"),
        ({"n_fit_descriptors": 0}, r"n_fit_descriptors must be an integer >= 1, got 0"),
        ({"batch_size": 64.0}, r"batch_size must be an integer >= 1, got 64.0"),
        ({"assignment": "fuzzy"}, "assignment must be one of"),
        ({"stride": 0}, "stride must be an integer >= 1"),
        ({"whiten": "no"}, "whiten must be True or False"),
        ({"n_words": 500}, r"n_words=500 needs at least 500 descriptors .* got 100"),
    ],
)
def test_bad_params_raise_in_fit(gray_images, params, match):
    est = BagOfVisualWords(**{**SMALL, "n_fit_descriptors": 100, **params})
    with pytest.raises(ValueError, match=match):
        est.fit(gray_images)


def test_transform_before_fit(gray_images):
    with pytest.raises(NotFittedError):
        BagOfVisualWords().transform(gray_images)
    with pytest.raises(NotFittedError):
        BagOfVisualWords().local_descriptors(gray_images)


def test_transform_checks_image_shape(gray_images):
    est = BagOfVisualWords(**SMALL).fit(gray_images)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(28, 28\)"):
        est.transform(gray_images[:, :20, :20])


# --------------------------------------------------------------------- accuracy
def test_digits_accuracy_far_above_chance():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    X_train, X_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.3, random_state=0, stratify=digits.target
    )
    model = make_pipeline(
        BagOfVisualWords(n_words=40, patch_size=4, stride=1, assignment="soft", random_state=0),
        StandardScaler(),
        LogisticRegression(max_iter=500),
    ).fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.8  # chance is 0.1


# -------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize(
    "params", [{}, {"assignment": "soft", "spatial_pyramid": True}, {"descriptor": "hog"}]
)
def test_gpu_matches_cpu(color_images, params):
    est = BagOfVisualWords(**SMALL, **params, device="cpu").fit(color_images)
    cpu_desc, cpu = est.local_descriptors(color_images), est.transform(color_images)
    est.set_params(device="gpu")
    np.testing.assert_allclose(est.local_descriptors(color_images), cpu_desc, rtol=1e-4, atol=1e-4)
    gpu = est.transform(color_images)
    assert isinstance(gpu, np.ndarray) and gpu.dtype == np.float32
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)
    # Fitting on the GPU samples the same descriptors (to float rounding); k-means
    # itself is scikit-learn's, on the CPU, so only the whitening is compared.
    gpu_fit = BagOfVisualWords(**SMALL, **params, device="gpu").fit(color_images)
    np.testing.assert_allclose(gpu_fit.whitening_matrix_, est.whitening_matrix_, rtol=1e-3, atol=1e-3)
    assert gpu_fit.transform(color_images).shape == cpu.shape


@pytest.mark.parametrize("change, match", [({"patch_size": 6}, "fitted with 4 words of 16 dimensions; its parameters "
                                                               "now give 4 words of 36"),
                                           ({"patch_size": 40}, "does not fit in images"),
                                           ({"n_words": 9}, "now give 9 words")])
def test_parameters_changed_after_fit_are_a_clear_error(gray_images, change, match):
    bovw = BagOfVisualWords(n_words=4, patch_size=4, stride=4, random_state=0).fit(gray_images)
    bovw.set_params(**change)
    with pytest.raises(ValueError, match=match):
        bovw.transform(gray_images)
