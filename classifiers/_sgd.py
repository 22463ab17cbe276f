"""Pieces of mini-batch training shared by the linear models and the neural net.

The learning-rate schedule (:func:`decayed_learning_rate`) and the stopping rule
(:class:`StoppingRule`) live here once: :class:`classifiers.linear.LinearSVM`,
:class:`classifiers.linear.Softmax` and :class:`classifiers.net.TwoLayerNet` train under the
same ``n_epochs`` budget, the same ``tol`` and ``n_iter_no_change`` (scikit-learn's names,
with their meaning in ``MLPClassifier`` and ``SGDClassifier``), and warn with the same
:class:`~sklearn.exceptions.ConvergenceWarning` when the budget runs out first.
"""
from __future__ import annotations

import logging
import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from classifiers.optim import OPTIMIZERS
from compute.backend import DEVICES
from compute.params import FloatDtype, Interval, StrOptions

#: Logger told of the end of every training epoch (DEBUG, ``extra={"epoch": n}``, 1-based):
#: a caller that wants a progress bar listens here (``cvpipe train``); silent otherwise.
EPOCH_LOGGER = logging.getLogger("classifiers.epochs")

#: Constraints (see :mod:`compute.params`) of the parameters that every estimator trained
#: here has, with one meaning; each estimator's ``_parameter_constraints`` extends them.
TRAINING_CONSTRAINTS = {
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "reg": [Interval(Real, 0, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "n_epochs": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left"), None],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
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


#: An epoch takes at least this many gradient steps (see :func:`epoch_minibatches`).
MIN_EPOCH_STEPS = 300


def passes_per_epoch(n_samples, batch_size):
    """How many passes over the rows one epoch makes: ``ceil(MIN_EPOCH_STEPS / batches per pass)``,
    at least 1.

    One pass over Fashion-MNIST's 60,000 rows is 300 steps of 200 rows (the figures of
    BENCHMARKS.md were made with one pass an epoch, and still are). One pass over 1,000
    rows is 5 such steps: with the learning rate decayed, and convergence tested, after
    every pass, such a set would stop after a few hundred steps, far from its optimum
    (scikit-learn's digits: 75% where ``LogisticRegression`` reaches 87%). So an epoch is
    as many passes as make ``MIN_EPOCH_STEPS`` steps, and the per-epoch schedule, the
    stopping rule and the ``n_epochs`` budget mean the same amount of descent on a small
    set as on a large one.
    """
    per_pass = -(-int(n_samples) // max(1, min(int(batch_size), int(n_samples))))
    return max(1, -(-MIN_EPOCH_STEPS // per_pass))


def epoch_minibatches(n_samples, batch_size, rng, xp=np, shuffle_buffer=None):
    """The mini-batches of one epoch: :func:`minibatches` for each of
    :func:`passes_per_epoch` passes, each pass a fresh shuffle."""
    for _ in range(passes_per_epoch(n_samples, batch_size)):
        yield from minibatches(n_samples, batch_size, rng, xp, shuffle_buffer)


def decayed_learning_rate(learning_rate, decay, epoch):
    """Step decay per epoch: ``learning_rate * decay ** epoch``, a Python float.

    (A NumPy scalar such as ``np.float16(1e-3)`` is a valid learning rate; the compiled
    optimizer steps take a double.)
    """
    return float(learning_rate) * float(decay) ** epoch


class StoppingRule:
    """scikit-learn's convergence test on a score measured after every epoch.

    ``MLPClassifier`` and ``SGDClassifier`` stop when the score has not improved by at least
    ``tol`` for ``n_iter_no_change`` consecutive epochs: the training loss (lower is better)
    or, with early stopping, the validation accuracy (higher is better). ``tol=None``
    turns the test off (``SGDClassifier``'s convention): every epoch of the budget runs.

    Parameters
    ----------
    tol : float >= 0 or None
    n_iter_no_change : int >= 1
    higher_is_better : bool
        True for an accuracy, False for a loss.

    Attributes
    ----------
    best : float
        The best score seen (``-inf`` or ``inf`` before the first).
    best_epoch : int
        The epoch (0-based) of ``best``, the first one where it was reached; -1 before any.
    n_no_change : int
        Consecutive epochs without an improvement of at least ``tol``.
    """

    def __init__(self, tol, n_iter_no_change, higher_is_better):
        self.tol, self.n_iter_no_change, self.sign = tol, int(n_iter_no_change), 1.0 if higher_is_better else -1.0
        self.best, self.best_epoch, self.n_no_change, self._epoch = -self.sign * math.inf, -1, 0, -1

    def update(self, score):
        """Record one epoch's ``score``; return True when training should stop (converged)."""
        self._epoch += 1
        score = float(score)
        gain = self.sign * (score - self.best)
        if self.tol is not None and not gain >= self.tol:  # (NaN gains count as no change)
            self.n_no_change += 1
        else:
            self.n_no_change = 0
        if gain > 0:
            self.best, self.best_epoch = score, self._epoch
        if EPOCH_LOGGER.isEnabledFor(logging.DEBUG):
            EPOCH_LOGGER.debug("epoch %d: score %.6g", self._epoch + 1, score, extra={"epoch": self._epoch + 1})
        return self.tol is not None and self.n_no_change >= self.n_iter_no_change

    def warn_unconverged(self, estimator, n_epochs, stacklevel=3):
        """Warn with :class:`~sklearn.exceptions.ConvergenceWarning` that the budget ran out."""
        if self.tol is None:
            return
        what = "validation accuracy" if self.sign > 0 else "training loss"
        warnings.warn(
            f"{type(estimator).__name__} used its whole budget of n_epochs={n_epochs} epochs without "
            f"converging: its {what} was still improving by at least tol={self.tol} within the last "
            f"n_iter_no_change={self.n_iter_no_change} epochs; raise n_epochs (or tol)",
            ConvergenceWarning, stacklevel=stacklevel)
