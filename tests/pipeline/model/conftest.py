"""Fixtures of the model tests."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def color_data():
    """48 random 16x16 color images whose class brightens one channel (three learnable
    classes), and their labels 0, 1, 2, 0, ...; read-only: tests must not change them."""
    rng = np.random.default_rng(0)
    y = np.arange(48) % 3
    images = rng.integers(0, 160, size=(48, 16, 16, 3))
    images[np.arange(48), :, :, y] += 90
    images = images.astype(np.uint8)
    images.flags.writeable = y.flags.writeable = False
    return images, y
