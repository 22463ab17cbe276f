"""Linear classifiers trained by mini-batch gradient descent: a multiclass SVM and softmax.

Both learn class scores ``X @ W_ + b_`` and differ only in the loss
(:mod:`classifiers.losses`); the training loop lives once, in :class:`_LinearClassifier`.
The weights and the bias are kept apart (no bias trick) so that the L2 penalty falls on
``W_`` only. Training runs on the array module that ``device`` names (NumPy, or CuPy on a
GPU); the fitted attributes and every output are NumPy arrays.
"""
from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from classifiers import losses
from classifiers._sgd import TRAINING_CONSTRAINTS, StoppingRule, decayed_learning_rate, epoch_minibatches
from classifiers._validation import check_predict_input
from classifiers.optim import make_optimizer, set_learning_rate
from compute.backend import get_array_module, resolve_device, to_device, to_numpy
from compute.params import ParameterConstraintsMixin, check_params

logger = logging.getLogger(__name__)


class _LinearClassifier(ParameterConstraintsMixin, ClassifierMixin, BaseEstimator):
    """Mini-batch training of ``scores = X @ W + b`` under the loss ``_scores_loss``.

    Subclasses only set ``_scores_loss``, a function ``(scores, y) -> (loss, dscores)`` from
    :mod:`classifiers.losses`; the parameters and their defaults are shared. The defaults
    train to convergence (the stopping rule of :mod:`classifiers._sgd`) on sets from
    scikit-learn's 1,437 digits to Fashion-MNIST's 60,000 images.
    The objective is ``mean data loss + reg * sum(W_ * W_)`` (cs231n's convention: no
    factor 0.5; the bias is not penalized).
    """

    _scores_loss = None
    _parameter_constraints = {**TRAINING_CONSTRAINTS}

    def __init__(self, learning_rate=1e-2, reg=1e-3, batch_size=200, n_epochs=200, tol=1e-4,
                 n_iter_no_change=5, optimizer="adam", learning_rate_decay=0.9, dtype="float32",
                 device="auto", shuffle_buffer=None, random_state=None):
        self.learning_rate = learning_rate
        self.reg = reg
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.optimizer = optimizer
        self.learning_rate_decay = learning_rate_decay
        self.dtype = dtype
        self.device = device
        self.shuffle_buffer = shuffle_buffer
        self.random_state = random_state

    def fit(self, X, y):
        """Learn ``W_`` and ``b_`` by mini-batch gradient descent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers; cast to ``dtype``.
        y : array-like of shape (n_samples,)
            Class labels of any type (at least two distinct ones); ``classes_`` keeps them.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a bad parameter, bad ``X`` or ``y``, a single class, or a training run whose
            loss overflowed (``learning_rate`` too large or unscaled features).
        """
        check_params(self)
        dtype = np.dtype(self.dtype)
        optimizer = make_optimizer(self.optimizer, self.learning_rate)
        resolve_device(self.device)  # device="gpu" without one fails before the data is read
        X, y = validate_data(self, X, y, dtype=dtype)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes in y, got 1 class "
                             f"({self.classes_[0]!r})")
        rng = check_random_state(self.random_state)
        n_samples, n_features = X.shape
        # A step: scores and the weight gradient, two products of batch x features x classes.
        step = min(int(self.batch_size), n_samples) * n_features * len(self.classes_)
        xp = get_array_module(self.device, step_work=2 * step)
        params = {"W": to_device(0.001 * rng.standard_normal((n_features, len(self.classes_))), xp, dtype),
                  "b": xp.zeros(len(self.classes_), dtype=dtype)}
        X_dev, y_dev = to_device(X, xp, dtype), to_device(y_index, xp, np.intp)
        history, rule = [], StoppingRule(self.tol, self.n_iter_no_change, higher_is_better=False)
        for epoch in range(self.n_epochs):
            set_learning_rate(optimizer, decayed_learning_rate(self.learning_rate, self.learning_rate_decay,
                                                               epoch))
            first = len(history)
            for batch in epoch_minibatches(n_samples, self.batch_size, rng, xp, self.shuffle_buffer):
                loss, grads = self._loss_and_grads(params, X_dev[batch], y_dev[batch])
                optimizer.step(params, grads)
                history.append(loss)
            epoch_loss = float(xp.stack(history[first:]).mean())  # one device sync per epoch
            self._check_finite(epoch_loss, epoch)
            if rule.update(epoch_loss):
                break
        else:
            rule.warn_unconverged(self, self.n_epochs)
        self.loss_history_ = to_numpy(xp.stack(history)).astype(np.float64)
        self.n_iter_, self.t_ = epoch + 1, len(history)
        self.W_, self.b_ = to_numpy(params["W"]), to_numpy(params["b"])
        logger.debug("%s: %d epochs (%d steps), final loss %.4f", type(self).__name__, self.n_iter_, self.t_,
                     self.loss_history_[-1])
        return self

    def _loss_and_grads(self, params, X, y):
        """Objective on one batch and its gradients ``{"W", "b"}``."""
        W, b = params["W"], params["b"]
        data_loss, dscores = type(self)._scores_loss(X @ W + b, y)
        loss = data_loss + self.reg * (W * W).sum()
        return loss, {"W": X.T @ dscores + (2 * self.reg) * W, "b": dscores.sum(axis=0)}

    def _check_finite(self, loss, epoch):
        if not np.isfinite(float(loss)):
            raise ValueError(
                f"the training loss became {float(loss)} in epoch {epoch + 1}: expected a finite "
                f"loss; lower learning_rate (got {self.learning_rate}) or scale the features "
                "(StandardScaler)")

    def _scores(self, X):
        """Class scores of ``X``, shape (n_samples, n_classes), computed on ``device``."""
        check_is_fitted(self)
        X = check_predict_input(self, X, self.W_.dtype)
        xp = get_array_module(self.device, step_work=X.shape[0] * self.W_.size)
        scores = to_device(X, xp) @ to_device(self.W_, xp) + to_device(self.b_, xp)
        return to_numpy(scores)

    def decision_function(self, X):
        """Class scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or (n_samples,) with two classes
            With two classes, the score of ``classes_[1]`` minus that of ``classes_[0]``
            (scikit-learn's convention: positive means ``classes_[1]``).
        """
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """The class of highest score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]


_PARAMETERS_DOC = """
    Parameters
    ----------
    learning_rate : float, default=1e-2
        Step size at the first epoch.
    reg : float, default=1e-3
        L2 strength: the objective adds ``reg * sum(W_ * W_)`` (the bias is not penalized).
    batch_size : int, default=200
        Samples per gradient step (clipped to the number of samples).
    n_epochs : int, default=200
        The budget: at most this many epochs. An epoch is one pass over the training set,
        or as many passes as make ``MIN_EPOCH_STEPS`` (300) gradient steps where one pass
        makes fewer (see :func:`classifiers._sgd.passes_per_epoch`). When the budget runs
        out before the stopping rule is met, ``fit`` warns with ``ConvergenceWarning``.
    tol : float or None, default=1e-4
        Training stops when the epoch's mean training objective has not fallen by at least
        ``tol`` for ``n_iter_no_change`` consecutive epochs (scikit-learn's rule, as in
        ``SGDClassifier`` and ``MLPClassifier``; :class:`classifiers._sgd.StoppingRule`).
        None: no test, the whole budget runs.
    n_iter_no_change : int, default=5
        Epochs without an improvement of ``tol`` before training stops.
    optimizer : {"sgd", "momentum", "nesterov", "rmsprop", "adam"}, default="adam"
        Update rule, from :mod:`classifiers.optim`.
    learning_rate_decay : float, default=0.9
        The step size is multiplied by this after every epoch.
    dtype : {"float32", "float64"}, default="float32"
        Precision of training and of ``W_``, ``b_``.
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where training and scoring run. "auto": the GPU only when one is available and a
        step does at least ``compute.backend.GPU_MIN_STEP_WORK`` multiply-adds (training:
        ``2 * batch_size * n_features * n_classes``; scoring: ``n_samples * n_features *
        n_classes``), else the CPU (see :func:`compute.backend.choose_device`).
    shuffle_buffer : int or None, default=None
        None: every epoch is a permutation of all the rows. An int: rows shuffled together,
        for ``X`` memory-mapped from a file larger than memory: blocks of consecutive rows in
        a random order, ``shuffle_buffer`` rows at a time shuffled among themselves (see
        :func:`classifiers._sgd.minibatches`).
    random_state : int, RandomState or None, default=None
        Seeds the initial weights (``0.001 * randn``) and the order of the mini-batches.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    W_ : ndarray of shape (n_features, n_classes)
    b_ : ndarray of shape (n_classes,)
    loss_history_ : ndarray of float64 of shape (t_,)
        The objective on each mini-batch, before its update.
    n_iter_ : int
        Epochs run (scikit-learn's meaning), at most ``n_epochs``.
    t_ : int
        Gradient steps taken (scikit-learn's name).
    n_features_in_ : int
    feature_names_in_ : ndarray of str of shape (n_features_in_,)
        Only when ``X`` had string column names.
"""


class LinearSVM(_LinearClassifier):
    __doc__ = ("""Multiclass linear SVM (Weston-Watkins hinge loss, margin 1), cs231n's ``svm_loss``.

    Minimizes ``mean_i sum_{j != y_i} max(0, s_ij - s_iy_i + 1) + reg * sum(W_ * W_)`` with
    ``s = X @ W_ + b_``. What the defaults reach, against ``LinearSVC()``: BENCHMARKS.md,
    "Defaults that converge".
""" + _PARAMETERS_DOC)

    _scores_loss = staticmethod(losses.svm_scores_loss)


class Softmax(_LinearClassifier):
    __doc__ = ("""Softmax (multinomial logistic) regression, cs231n's ``softmax_loss``.

    Minimizes ``mean_i -log softmax(s_i)[y_i] + reg * sum(W_ * W_)`` with ``s = X @ W_ + b_``.
    What the defaults reach, against ``LogisticRegression()``: BENCHMARKS.md, "Defaults
    that converge".
""" + _PARAMETERS_DOC)

    _scores_loss = staticmethod(losses.softmax_scores_loss)

    def predict_proba(self, X):
        """Class probabilities (softmax of the scores).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``.
        """
        return losses.softmax(self._scores(X))

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably; shape (n_samples, n_classes)."""
        scores = self._scores(X)
        shifted = scores - scores.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
