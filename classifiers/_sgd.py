"""Pieces of mini-batch training shared by the linear models and the neural net."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from classifiers.optim import OPTIMIZERS
from compute.backend import DEVICES
from compute.params import FloatDtype, Interval, StrOptions

#: Constraints (see :mod:`compute.params`) of the parameters that every estimator trained
#: here has, with one meaning; each estimator's ``_parameter_constraints`` extends them.
TRAINING_CONSTRAINTS = {
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "reg": [Interval(Real, 0, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "n_epochs": [Interval(Integral, 1, None, closed="left")],
    "optimizer": [StrOptions(OPTIMIZERS)],
    "learning_rate_decay": [Interval(Real, 0, 1, closed="right")],
    "dtype": [FloatDtype()],
    "device": [StrOptions(DEVICES)],
    "shuffle_buffer": [Interval(Integral, 1, None, closed="left"), None],
}

#: Blocks of consecutive rows read together into one shuffle buffer (``shuffle_buffer``).
BLOCKS_PER_BUFFER = 8


class RowsOf:
    """Rows ``index`` of a 2-D array, read when asked: ``rows[sel]`` is ``X[index[sel]]``.

    Early stopping carves its training and validation sets this way on the CPU, so a
    memory-mapped ``X`` (a batch job's features, larger than memory) is read batch by
    batch, never copied whole; ``rows[batch]`` holds the same values, in the same layout,
    as ``X[index][batch]`` would.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    index : ndarray of int, shape (n_rows,)
    """

    def __init__(self, X, index):
        self.X, self.index = X, np.asarray(index)
        self.shape = (len(self.index), *X.shape[1:])

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, selection):
        return self.X[self.index[selection]]


def minibatches(n_samples, batch_size, rng, xp=np, shuffle_buffer=None):
    """Yield index arrays covering a shuffled epoch in batches of ``batch_size``.

    Parameters
    ----------
    n_samples : int
    batch_size : int
        Clipped to ``n_samples``.
    rng : numpy.random.Generator
        Draws the order; the same generator state gives the same batches.
    xp : module, default=numpy
        Where the index arrays live. For CuPy the epoch's order is copied to the GPU once
        and sliced there (a copy per batch cost more than the batch's work).
    shuffle_buffer : int, optional
        None (or at least ``n_samples``): a permutation of all the rows, every mini-batch
        drawn from anywhere in ``X``. An int: the order for rows read from disk (a
        memory-mapped ``X`` larger than memory), as tf.data's ``shuffle(buffer_size)`` or
        Ray Data's local shuffle buffer do it: the rows are cut into blocks of
        ``shuffle_buffer // BLOCKS_PER_BUFFER`` consecutive rows, the blocks taken in a
        random order, ``BLOCKS_PER_BUFFER`` of them (``shuffle_buffer`` rows) at a time, and
        those rows shuffled among themselves into mini-batches. Each mini-batch then reads
        from a few blocks that the buffer's first batches brought into the page cache,
        where a full permutation reads every row from a random place on disk (BENCHMARKS.md,
        "Batch extraction at scale").
    """
    if shuffle_buffer is None or shuffle_buffer >= n_samples:
        order = rng.permutation(n_samples)
    else:
        order = np.concatenate(list(_buffered_order(n_samples, int(shuffle_buffer), rng)))
    if xp is not np:
        order = xp.asarray(order)
    step = max(1, min(int(batch_size), n_samples))
    for start in range(0, n_samples, step):
        yield order[start : start + step]


def _buffered_order(n_samples, shuffle_buffer, rng):
    """The rows of one epoch, one shuffle buffer at a time (see :func:`minibatches`)."""
    block = max(1, shuffle_buffer // BLOCKS_PER_BUFFER)
    starts = rng.permutation(-(-n_samples // block)) * block
    for first in range(0, len(starts), BLOCKS_PER_BUFFER):
        chosen = starts[first:first + BLOCKS_PER_BUFFER]
        rows = np.concatenate([np.arange(s, min(s + block, n_samples)) for s in chosen])
        yield rows[rng.permutation(len(rows))]


def decayed_learning_rate(learning_rate, decay, epoch):
    """Step decay per epoch: ``learning_rate * decay ** epoch``, a Python float.

    (A NumPy scalar such as ``np.float16(1e-3)`` is a valid learning rate; the compiled
    optimizer steps take a double.)
    """
    return float(learning_rate) * float(decay) ** epoch
