"""The data augmentation of the ConvNet: held equal to its one-image-at-a-time reference,
and the training loop's use of it."""
import numpy as np
import pytest

from classifiers import ConvNet
from classifiers._reference import shift_and_flip_naive
from classifiers.augment import shift_and_flip


def _draws(seed, n, max_shift, flip):
    """The draws ``shift_and_flip`` makes from a generator seeded with ``seed``, in its order."""
    rng = np.random.default_rng(seed)
    dy = rng.integers(-max_shift, max_shift + 1, size=n) if max_shift else np.zeros(n, dtype=int)
    dx = rng.integers(-max_shift, max_shift + 1, size=n) if max_shift else np.zeros(n, dtype=int)
    mirror = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)
    return dy, dx, mirror


@pytest.mark.parametrize("shape", [(7, 5, 1), (6, 6, 3), (4, 9, 2)])
@pytest.mark.parametrize("max_shift, flip", [(0, True), (1, False), (2, True), (12, True)])
def test_shift_and_flip_equals_the_reference(shape, max_shift, flip):
    X = np.random.default_rng(1).normal(size=(40, int(np.prod(shape)))).astype(np.float32)
    before = X.copy()
    got = shift_and_flip(X, shape, max_shift, flip, np.random.default_rng(5))
    expected = shift_and_flip_naive(X, shape, *_draws(5, 40, max_shift, flip))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(X, before)  # the batch given is not changed
    assert got.dtype == X.dtype and got.shape == X.shape


def test_a_shift_moves_the_pixels_and_repeats_the_border():
    image = np.arange(16, dtype=np.float64).reshape(4, 4)
    moved = shift_and_flip_naive(image.reshape(1, -1), (4, 4, 1), np.array([1]), np.array([-1]),
                                 np.array([False])).reshape(4, 4)
    # down by one (the top row repeated), left by one (the right column repeated)
    np.testing.assert_array_equal(moved, [[1, 2, 3, 3], [1, 2, 3, 3], [5, 6, 7, 7], [9, 10, 11, 11]])
    mirrored = shift_and_flip_naive(image.reshape(1, -1), (4, 4, 1), np.array([0]), np.array([0]),
                                    np.array([True])).reshape(4, 4)
    np.testing.assert_array_equal(mirrored, image[:, ::-1])


def test_about_half_the_images_are_mirrored_and_every_shift_is_drawn():
    X = np.random.default_rng(0).normal(size=(2000, 25))
    out = shift_and_flip(X, (5, 5, 1), 0, True, np.random.default_rng(3)).reshape(-1, 5, 5)
    mirrored = np.all(out == X.reshape(-1, 5, 5)[:, :, ::-1], axis=(1, 2))
    assert 0.45 < mirrored.mean() < 0.55
    dy, dx, _ = _draws(3, 2000, 2, False)
    assert set(dy) == set(dx) == {-2, -1, 0, 1, 2}


def _images(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    X = rng.normal(scale=0.3, size=(n, 8, 8))
    X[y == 0, 2:6, 3:5] += 2.0  # a vertical bar
    X[y == 1, 3:5, 2:6] += 2.0  # a horizontal bar
    return X.reshape(n, -1), y


def test_the_convnet_trains_on_changed_batches_and_keeps_its_batch_order():
    X, y = _images()
    params = dict(filters=(4,), kernel_sizes=(3,), hidden_sizes=(8,), n_epochs=3, tol=None, random_state=0)
    plain = ConvNet(**params).fit(X, y)
    augmented = ConvNet(**params, random_shift=1, random_flip=True).fit(X, y)
    again = ConvNet(**params, random_shift=1, random_flip=True).fit(X, y)
    # The same seed draws the same changes; the changes do change what is learned.
    for name in plain.params_:
        np.testing.assert_array_equal(augmented.params_[name], again.params_[name])
    assert not np.array_equal(plain.params_["W1"], augmented.params_["W1"])
    # The bars survive a one-pixel shift and a mirror: it still learns them.
    assert augmented.score(X, y) > 0.9


def test_the_augmentation_sees_every_training_batch(monkeypatch):
    """Each batch of the epoch passes through the augmenter, with the image shape the net was fit on."""
    import classifiers.augment as augment

    seen = []
    real = augment.shift_and_flip

    def spy(X, shape, max_shift, flip, rng):
        seen.append((X.shape[0], shape, max_shift, flip))
        return real(X, shape, max_shift, flip, rng)

    monkeypatch.setattr(augment, "shift_and_flip", spy)
    X, y = _images(100)
    ConvNet(filters=(2,), kernel_sizes=(3,), hidden_sizes=(4,), n_epochs=1, tol=None, batch_size=25,
            random_shift=2, random_state=0).fit(X, y)
    assert sum(n for n, *_ in seen) % 100 == 0 and len(seen) >= 4
    assert {s[1:] for s in seen} == {((8, 8, 1), 2, False)}


@pytest.mark.parametrize("bad, match", [({"random_shift": -1}, "random_shift"),
                                        ({"random_flip": "yes"}, "random_flip")])
def test_bad_augmentation_settings_are_refused(bad, match):
    X, y = _images(30)
    with pytest.raises(ValueError, match=match):
        ConvNet(**bad).fit(X, y)
