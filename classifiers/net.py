"""A small fully connected neural network classifier trained by mini-batch descent."""
from __future__ import annotations

import logging
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from classifiers._fcnet import WEIGHT_INITS, FullyConnectedNet, init_params
from classifiers._sgd import (
    TRAINING_CONSTRAINTS,
    RowsOf,
    StoppingRule,
    decayed_learning_rate,
    epoch_minibatches,
    passes_per_epoch,
)
from classifiers._validation import check_predict_input
from classifiers.layers import ACTIVATIONS
from classifiers.losses import softmax
from classifiers.optim import make_optimizer, set_learning_rate
from compute.backend import get_array_module, to_device, to_numpy
from compute.params import Boolean, Interval, ParameterConstraintsMixin, StrOptions, TupleOf, check_params

#: Training accuracy per epoch is measured on at most this many training samples.
TRAIN_ACC_SAMPLES = 1000
#: Rows per forward pass at inference (bounds the memory of ``predict``).
PREDICT_BATCH = 4096


class NetTraining:
    """The training loop the networks share (:class:`TwoLayerNet`, :class:`classifiers.ConvNet`):
    the early-stopping split, the epoch loop with its histories, the stopping rule of
    :mod:`classifiers._sgd` and the best-epoch parameters, and the epoch log.

    A subclass has the training parameters of :data:`classifiers._sgd.TRAINING_CONSTRAINTS`
    plus ``early_stopping``, ``validation_fraction``, ``shuffle_buffer`` and ``verbose``, and
    builds a network with ``params``, ``running``, ``loss`` and ``scores`` (as
    :class:`classifiers._fcnet.FullyConnectedNet`) before calling ``_train``.
    """

    def _generator(self):
        """The NumPy generator a ``fit`` draws everything from (split, initial weights, batch
        order), seeded from ``random_state``: the same seed gives the same draws."""
        return np.random.default_rng(check_random_state(self.random_state).randint(2**31 - 1))

    def _split(self, y, rng):
        """The rows of the training and the validation set of early stopping (stratified when
        every class allows it), or None without early stopping."""
        if not self.early_stopping:
            return None
        n = len(y)
        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(f"early stopping needs at least 1 training and 1 validation sample; "
                             f"got {n} samples with validation_fraction={self.validation_fraction}")
        counts = np.bincount(y)
        stratify = y if counts.min() >= 2 and len(counts) <= n_val <= n - len(counts) else None
        return train_test_split(np.arange(n), test_size=n_val, stratify=stratify,
                                random_state=int(rng.integers(2**31 - 1)))

    def _sets(self, X, y, split, xp):
        """``(train, val)``: the ``(X, y)`` training set on ``xp``'s device and the
        validation set (NumPy labels), or None without a ``split`` (:meth:`_split`)."""
        if split is None:
            return (to_device(X, xp), to_device(y, xp)), None
        train_rows, val_rows = split
        if self.shuffle_buffer is not None:  # consecutive positions, consecutive rows on disk
            train_rows, val_rows = np.sort(train_rows), np.sort(val_rows)
        # On the CPU the rows are read batch by batch (a memory-mapped X is not copied);
        # a GPU takes its sets as device arrays.
        rows = (lambda index: RowsOf(X, index)) if xp is np else (lambda index: to_device(X[index], xp))
        return (rows(train_rows), to_device(y[train_rows], xp)), (rows(val_rows), y[val_rows])

    def _train(self, net, xp, rng, train, val):
        """The epoch loop: records the histories, stops early, keeps the best parameters."""
        X, y = train
        batch_size = max(1, min(int(self.batch_size), X.shape[0]))
        # The GPU's dropout generator is seeded from a spawned child, which leaves ``rng``'s
        # own stream (batch order) exactly as on the CPU.
        dropout_rng = rng if xp is np else xp.random.default_rng(int(rng.spawn(1)[0].integers(2**31 - 1)))
        acc_idx = to_device(np.sort(rng.choice(X.shape[0], min(X.shape[0], TRAIN_ACC_SAMPLES), replace=False)), xp)
        X_acc, y_acc = X[acc_idx], to_numpy(y[acc_idx])
        optimizer = make_optimizer(self.optimizer, self.learning_rate)
        # The augmentation draws from a child generator: the batches (and so the rest of
        # ``rng``'s stream) are the same with and without it.
        augment = self._augmenter()
        augment_rng = None if augment is None else rng.spawn(1)[0]
        self.loss_history_, self.train_acc_history_, self.val_acc_history_ = [], [], []
        self.update_ratio_history_, self.best_epoch_ = [], 0
        best, rule = None, StoppingRule(self.tol, self.n_iter_no_change, higher_is_better=val is not None)
        for epoch in range(self.n_epochs):
            lr = decayed_learning_rate(self.learning_rate, self.learning_rate_decay, epoch)
            set_learning_rate(optimizer, lr)
            losses, ratios = _run_epoch(net, optimizer, X, y, batch_size, rng, dropout_rng, xp,
                                        self.shuffle_buffer, augment, augment_rng)
            self.loss_history_.extend(losses)
            self.update_ratio_history_.append(ratios)
            self.train_acc_history_.append(_accuracy(net, X_acc, y_acc, xp))
            if val is not None:
                self.val_acc_history_.append(_accuracy(net, val[0], val[1], xp))
            self.n_iter_ = epoch + 1
            self._log_epoch(epoch, losses, lr)
            finite = bool(np.isfinite(losses).all())
            if not finite:
                warnings.warn(f"training diverged in epoch {epoch + 1}: the loss became "
                              f"{losses[-1]}; lower learning_rate (got {self.learning_rate})",
                              ConvergenceWarning, stacklevel=3)
                if val is None:
                    self.best_epoch_ = epoch
                break
            converged = rule.update(float(np.mean(losses)) if val is None else self.val_acc_history_[-1])
            if val is None:
                self.best_epoch_ = epoch
            elif rule.best_epoch == epoch:
                self.best_epoch_, best = epoch, (_copy(net.params), _copy(net.running))
            if converged:
                break
        else:
            rule.warn_unconverged(self, self.n_epochs, stacklevel=4)
        if best is not None:
            net.params, net.running = best
        self.t_ = len(self.loss_history_)
        self.params_ = {k: to_numpy(v) for k, v in net.params.items()}
        self.running_ = {k: to_numpy(v) for k, v in net.running.items()}

    def _augmenter(self):
        """The callable ``(batch, rng) -> batch`` that changes each training batch, or None
        (the fully connected net's features are not images: it has none)."""
        return None

    def _log_epoch(self, epoch, losses, lr):
        val = f", val acc {self.val_acc_history_[-1]:.4f}" if self.val_acc_history_ else ""
        logger = logging.getLogger(type(self).__module__)  # classifiers.net or classifiers.convnet
        logger.log(logging.INFO if self.verbose else logging.DEBUG, "epoch %d/%d: loss %.4f, train acc %.4f%s, lr %.3g",
                   epoch + 1, self.n_epochs, float(np.mean(losses)), self.train_acc_history_[-1], val, lr)


class TwoLayerNet(NetTraining, ParameterConstraintsMixin, ClassifierMixin, BaseEstimator):
    """Fully connected network with softmax output, in NumPy or CuPy.

    Despite the name (cs231n's), ``hidden_sizes`` sets any number of hidden layers:
    ``{affine - [batchnorm] - activation - [dropout]} x len(hidden_sizes) - affine - softmax``.
    Trained by mini-batch gradient descent on the mean cross-entropy plus
    ``reg * sum(W ** 2)`` over the weight matrices (cs231n's convention, as in the linear
    models: the gradient of the penalty is ``2 * reg * W``).

    Parameters
    ----------
    hidden_sizes : tuple of int, default=(100,)
        Units per hidden layer; ``()`` gives softmax regression.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "elu"}, default="relu"
    batchnorm : bool, default=False
        Batch normalization after each hidden affine layer: batch statistics in training
        (running averages updated with momentum 0.9), running averages at inference.
    dropout : float in [0, 1), default=0.0
        Probability of **dropping** a hidden unit in training (inverted dropout, so
        inference needs no rescaling); 0 turns it off.
    weight_init : {"he", "xavier"} or float, default="he"
        Normal weights with std ``sqrt(2 / fan_in)`` ("he"), ``sqrt(2 / (fan_in + fan_out))``
        ("xavier") or the given number.
    optimizer : {"sgd", "momentum", "nesterov", "rmsprop", "adam"}, default="adam"
    learning_rate : float, default=1e-3
    learning_rate_decay : float in (0, 1], default=0.9
        Multiplies the learning rate after every epoch.
    reg : float, default=5e-5
        L2 strength on the weights. (Until model format 2 the net's penalty was
        ``0.5 * reg * sum(W ** 2)`` with a default of 1e-4: the same objective.)
    batch_size : int, default=64
    n_epochs : int, default=200
        The budget: at most this many epochs. An epoch is one pass over the training set,
        or as many passes as make ``MIN_EPOCH_STEPS`` (300) gradient steps where one pass
        makes fewer (see :func:`classifiers._sgd.passes_per_epoch`). When the budget runs
        out before the stopping rule is met, ``fit`` warns with ``ConvergenceWarning``.
    tol : float or None, default=1e-4
        Training stops when the score has not improved by at least ``tol`` for
        ``n_iter_no_change`` consecutive epochs: the epoch's mean training loss, or with
        ``early_stopping`` the validation accuracy (scikit-learn's rule, as in
        ``MLPClassifier``; :class:`classifiers._sgd.StoppingRule`). None: no test, the
        whole budget runs.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified), stop by the
        validation accuracy (see ``tol``), and keep the parameters of the epoch of the best
        validation accuracy.
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=5
        Epochs without an improvement of ``tol`` before training stops.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the parameters and of training.
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where training and inference run; results and fitted attributes are NumPy. "auto":
        the GPU only when one is available and a step does at least
        ``compute.backend.GPU_MIN_STEP_WORK`` multiply-adds (training: ``3 * batch_size *``
        the number of weights; inference: up to 4,096 rows times the number of weights),
        else the CPU (see :func:`compute.backend.choose_device`).
    shuffle_buffer : int or None, default=None
        None: every epoch is a permutation of all the training rows. An int: rows shuffled
        together, for ``X`` memory-mapped from a file larger than memory: blocks of
        consecutive rows in a random order, ``shuffle_buffer`` rows at a time shuffled among
        themselves (see :func:`classifiers._sgd.minibatches`); the early-stopping sets then
        keep their rows in file order.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling, the dropout masks and the validation split.
    verbose : bool or int, default=False
        Log a line per epoch at INFO level (otherwise DEBUG) on this module's logger.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    params_ : dict of str -> ndarray
        ``W1`` (n_features, h1), ``b1`` (h1,), [``gamma1``, ``beta1`` (h1,)], ..., ``W{L}``
        (h_last, n_classes), ``b{L}`` (n_classes,).
    running_ : dict of str -> ndarray
        ``running_mean{i}``, ``running_var{i}`` (h_i,) with batch normalization, else empty.
    loss_history_ : list of float
        Training loss of every iteration (mini-batch).
    train_acc_history_ : list of float
        Per epoch, accuracy on a fixed subset of at most ``TRAIN_ACC_SAMPLES`` training samples.
    val_acc_history_ : list of float
        Per epoch, validation accuracy (empty without early stopping).
    update_ratio_history_ : list of dict
        Per epoch, ``{"W1": ||update|| / ||W1||, ...}`` for each weight matrix, taken at the
        epoch's last step (healthy values are around 1e-3).
    n_iter_ : int
        Epochs run (scikit-learn's meaning), at most ``n_epochs``.
    t_ : int
        Gradient steps taken (scikit-learn's name).
    best_epoch_ : int
        Index (into the per-epoch histories) of the epoch whose parameters were kept: the
        best validation accuracy with early stopping, else the last epoch.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = TwoLayerNet(hidden_sizes=(64,), n_epochs=5, random_state=0).fit(X / 16, y)
    >>> clf.predict(X[:3] / 16).shape
    (3,)
    """

    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        "hidden_sizes": [TupleOf(Interval(Integral, 1, None, closed="left"))],
        "activation": [StrOptions(ACTIVATIONS)],
        "batchnorm": [Boolean()],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "weight_init": [StrOptions(WEIGHT_INITS), Interval(Real, 0, None, closed="neither")],
        "early_stopping": [Boolean()],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(self, hidden_sizes=(100,), activation="relu", batchnorm=False, dropout=0.0,
                 weight_init="he", optimizer="adam", learning_rate=1e-3, learning_rate_decay=0.9,
                 reg=5e-5, batch_size=64, n_epochs=200, tol=1e-4, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, dtype="float32", device="auto", shuffle_buffer=None, random_state=None,
                 verbose=False):
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.weight_init = weight_init
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_decay = learning_rate_decay
        self.reg = reg
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.device = device
        self.shuffle_buffer = shuffle_buffer
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,). Returns self."""
        check_params(self)
        X, y = validate_data(self, X, y, dtype=np.dtype(self.dtype))
        check_classification_targets(y)
        self.classes_, y = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in y, "
                             f"got 1 class: {self.classes_.tolist()}")
        rng = self._generator()
        split = self._split(y, rng)
        sizes = (X.shape[1], *self.hidden_sizes, len(self.classes_))
        # A step: the forward product of every layer and about two more in the backward pass.
        step = 3 * min(int(self.batch_size), X.shape[0]) * _weights(sizes)
        xp = get_array_module(self.device, step_work=step)
        params, running = init_params(sizes, self.weight_init, self.batchnorm, rng, np.dtype(self.dtype))
        net = FullyConnectedNet({k: to_device(v, xp) for k, v in params.items()},
                                {k: to_device(v, xp) for k, v in running.items()},
                                self.activation, self.dropout, self.reg)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported once, by _train
            self._train(net, xp, rng, *self._sets(X, y, split, xp))
        return self

    # ---------------------------------------------------------------- inference
    def _scores(self, X):
        """Scores (n_samples, n_classes) as NumPy arrays of ``dtype``, computed on the device in chunks.

        The answer keeps the precision the network computes in: a float32 network's
        scores carry float32 rounding (which depends, in the last bits, on how BLAS splits
        the batch), and widening them to float64 would claim digits they do not have.
        """
        check_is_fitted(self)
        check_params(self)  # set_params after fit may have changed the activation or the device
        X = check_predict_input(self, X, np.dtype(self.dtype))
        per_row = sum(v.size for name, v in self.params_.items() if name.startswith("W"))
        xp = get_array_module(self.device, step_work=min(X.shape[0], PREDICT_BATCH) * per_row)
        net = FullyConnectedNet({k: to_device(v, xp) for k, v in self.params_.items()},
                                {k: to_device(v, xp) for k, v in self.running_.items()}, self.activation)
        out = np.empty((X.shape[0], len(self.classes_)), dtype=self.params_["W1"].dtype)
        for start in range(0, X.shape[0], PREDICT_BATCH):
            chunk = slice(start, start + PREDICT_BATCH)
            out[chunk] = to_numpy(net.scores(to_device(X[chunk], xp)))
        return out

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``,
        in the network's ``dtype``."""
        return softmax(self._scores(X))

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]


def _run_epoch(net, optimizer, X, y, batch_size, rng, dropout_rng, xp, shuffle_buffer=None, augment=None,
               augment_rng=None):
    """One pass over the shuffled training data, one optimizer step per mini-batch, each
    batch changed by ``augment(batch, augment_rng)`` first when one is given.

    Returns
    -------
    losses : list of float
        The loss of every batch.
    ratios : dict of str -> float
        ``||update|| / ||W||`` of each weight matrix at the epoch's last step.
    """
    n_batches = -(-X.shape[0] // batch_size) * passes_per_epoch(X.shape[0], batch_size)
    weights = [name for name in net.params if name.startswith("W")]
    losses, l2 = [], net.l2_strengths()
    for b, idx in enumerate(epoch_minibatches(X.shape[0], batch_size, rng, xp, shuffle_buffer)):
        batch = X[idx] if augment is None else augment(X[idx], augment_rng)
        loss, grads = net.loss(batch, y[idx], rng=dropout_rng, l2_grads=False)
        losses.append(loss)
        if b == n_batches - 1:
            before = {name: net.params[name].copy() for name in weights}
        optimizer.step(net.params, grads, l2=l2)
    norm = lambda a: float(xp.linalg.norm(a))  # noqa: E731
    ratios = {name: norm(net.params[name] - before[name]) / max(norm(before[name]), 1e-12) for name in weights}
    return to_numpy(xp.stack(losses)).astype(float).tolist(), ratios


def _accuracy(net, X, y, xp):
    """Inference-mode accuracy of ``net`` on device data ``X`` against NumPy labels ``y``."""
    pred = np.concatenate([to_numpy(xp.argmax(net.scores(X[s : s + PREDICT_BATCH]), axis=1))
                           for s in range(0, X.shape[0], PREDICT_BATCH)])
    return float(np.mean(pred == y))


def _weights(layer_sizes):
    """Entries of the weight matrices of a network of ``layer_sizes``: its multiply-adds per row."""
    return sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))


def _copy(arrays):
    return {name: array.copy() for name, array in arrays.items()}
