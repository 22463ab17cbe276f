"""A small convolutional network classifier trained by mini-batch descent: the learned-features
baseline against the hand-made ones."""
from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from classifiers._cnn import (
    ConvolutionalNet,
    build_layers,
    check_input_shape,
    infer_input_shape,
    init_params,
    share_threads,
)
from classifiers._fcnet import WEIGHT_INITS
from classifiers._sgd import TRAINING_CONSTRAINTS
from classifiers._validation import check_predict_input
from classifiers.augment import ImageAugmenter
from classifiers.layers import ACTIVATIONS
from classifiers.losses import softmax
from classifiers.net import NetTraining
from compute.backend import get_array_module, to_device, to_numpy
from compute.params import Boolean, Interval, ParameterConstraintsMixin, StrOptions, TupleOf, check_params

logger = logging.getLogger(__name__)

_POSITIVE = Interval(Integral, 1, None, closed="left")


class ConvNet(NetTraining, ParameterConstraintsMixin, ClassifierMixin, BaseEstimator):
    """Convolutional network with softmax output, in NumPy or CuPy, on flattened images.

    ``{conv - [batchnorm] - [max pool] - activation} x len(filters) - flatten -
    {affine - activation - [dropout]} x len(hidden_sizes) - affine - softmax``; each
    convolution has stride 1 and zero padding ``(k - 1) // 2`` (an odd ``k`` keeps the
    map's size), each pooling layer ``pool_size x pool_size`` windows with stride
    ``pool_size``, placed where its windows tile the map (see :mod:`classifiers._cnn`;
    pooling before the activation is the same function, cheaper). The defaults on 28 x 28
    grayscale images (Fashion-MNIST): conv 5x5 16 - pool - relu - conv 3x3 32 - pool - relu -
    affine 56 - relu - affine 10, 93,490 parameters (``architecture_`` lists them after ``fit``).

    ``X`` holds images flattened in (height, width, channels) order, as
    :class:`features.RawPixels` gives them (standardized or not). Training is the one of
    :class:`classifiers.net.TwoLayerNet` (same loop, stopping rule, histories and
    parameter meanings): mini-batch descent on the mean cross-entropy plus
    ``reg * sum(W ** 2)`` over all weights.

    Parameters
    ----------
    input_shape : tuple of int or None, default=None
        ``(height, width)`` or ``(height, width, channels)`` of the images in the rows of ``X``.
        None takes the shape ``fit`` is given (an :class:`pipeline.model.ImagePipeline` gives
        the shape of its images after :class:`features.RawPixels`), or else infers it from
        the number of features: ``s * s`` is an ``s x s`` grayscale
        image, ``3 * s * s`` an ``s x s`` color one; any other count (tabular data) is read
        as a 1 x 1 image with one channel per feature, where the network is in effect a
        fully connected one. Pass it for images that are not square.
    filters : tuple of int, default=(16, 32)
        Output channels of each convolution.
    kernel_sizes : tuple of int, default=(5, 3)
        Side of each convolution's kernel; one per entry of ``filters``.
    pool_size : int, default=2
        Side and stride of the max-pooling windows; 1 leaves pooling out.
    hidden_sizes : tuple of int, default=(56,)
        Units of the fully connected hidden layers after the convolutions.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "elu"}, default="relu"
    batchnorm : bool, default=False
        Spatial batch normalization after each convolution.
    dropout : float in [0, 1), default=0.0
        Drop probability of the fully connected hidden units in training.
    random_shift : int, default=0
        Data augmentation: every training batch's images are moved by up to this many
        pixels along each axis (whole pixels, drawn per image; the border is repeated into
        the gap). 0 turns it off. Validation and prediction see the images as they are.
    random_flip : bool, default=False
        Data augmentation: mirror each training image left to right with probability 1/2.
        Right for clothing and photographs, wrong for digits and text.
    weight_init : {"he", "xavier"} or float, default="he"
    optimizer : {"sgd", "momentum", "nesterov", "rmsprop", "adam"}, default="adam"
    learning_rate : float, default=1e-3
    learning_rate_decay : float in (0, 1], default=0.9
        Multiplies the learning rate after every epoch.
    reg : float, default=5e-5
        L2 strength on the weights.
    batch_size : int, default=64
    n_epochs : int, default=15
    tol : float or None, default=1e-4
    early_stopping : bool, default=False
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=5
    dtype : {"float32", "float64"}, default="float32"
    device : {"auto", "cpu", "gpu"}, default="auto"
    n_jobs : int or None, default=None
        Threads on the CPU (joblib's meaning: None one, -1 every core). In training they
        share each batch (its shares of ``_cnn.SHARE_ROWS`` rows), in ``predict`` its
        chunks of rows; BLAS runs on one thread each meanwhile. Predictions do not depend
        on it. Training does in float32's last bits (the shares' gradients are added in
        another order), and with ``dropout`` through the masks (one generator per share
        with threads). Not used on a GPU; a network with ``batchnorm`` takes each batch
        whole, so only its predictions use the threads.
    shuffle_buffer : int or None, default=None
    random_state : int, RandomState instance or None, default=None
    verbose : bool or int, default=False
        (``tol`` to ``verbose``: as in :class:`classifiers.net.TwoLayerNet`.)

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    input_shape_ : tuple of int
        ``(height, width, channels)`` the rows of ``X`` were read as.
    architecture_ : list of str
        One line per layer: kernel, channels, output size and parameter count.
    n_params_ : int
        Trainable parameters.
    params_ : dict of str -> ndarray
        ``W{i}`` (k, k, c_in, c_out) and ``b{i}`` (c_out,) of each convolution, [``gamma{i}``,
        ``beta{i}``], then ``W{j}``, ``b{j}`` of each affine layer.
    running_ : dict of str -> ndarray
        Batch-normalization running averages, else empty.
    loss_history_, train_acc_history_, val_acc_history_, update_ratio_history_ : list
    n_iter_, best_epoch_ : int
        As in :class:`classifiers.net.TwoLayerNet`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = ConvNet(filters=(8,), kernel_sizes=(3,), hidden_sizes=(32,), n_epochs=2, tol=None,
    ...               random_state=0).fit(X / 16, y)
    >>> clf.input_shape_, clf.predict(X[:3] / 16).shape
    ((8, 8, 1), (3,))
    """

    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        "input_shape": [None, TupleOf(_POSITIVE, names=("height", "width")),
                        TupleOf(_POSITIVE, names=("height", "width", "channels"))],
        "filters": [TupleOf(_POSITIVE)],
        "kernel_sizes": [TupleOf(_POSITIVE)],
        "pool_size": [_POSITIVE],
        "hidden_sizes": [TupleOf(_POSITIVE)],
        "activation": [StrOptions(ACTIVATIONS)],
        "batchnorm": [Boolean()],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "random_shift": [Interval(Integral, 0, None, closed="left")],
        "random_flip": [Boolean()],
        "weight_init": [StrOptions(WEIGHT_INITS), Interval(Real, 0, None, closed="neither")],
        "early_stopping": [Boolean()],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_jobs": [None, Interval(Integral, 1, None, closed="left"), Interval(Integral, None, -1, closed="right")],
    }

    def __init__(self, input_shape=None, filters=(16, 32), kernel_sizes=(5, 3), pool_size=2, hidden_sizes=(56,),
                 activation="relu", batchnorm=False, dropout=0.0, random_shift=0, random_flip=False,
                 weight_init="he", optimizer="adam",
                 learning_rate=1e-3, learning_rate_decay=0.9, reg=5e-5, batch_size=64, n_epochs=15, tol=1e-4,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5, dtype="float32",
                 device="auto", n_jobs=None, shuffle_buffer=None, random_state=None, verbose=False):
        self.input_shape = input_shape
        self.filters = filters
        self.kernel_sizes = kernel_sizes
        self.pool_size = pool_size
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.random_shift = random_shift
        self.random_flip = random_flip
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
        self.n_jobs = n_jobs
        self.shuffle_buffer = shuffle_buffer
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, image_shape=None):
        """Train on ``X`` (n_samples, height * width * channels) and labels ``y`` (n_samples,).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        image_shape : tuple (height, width) or (height, width, channels), optional
            The shape of the images whose pixels the rows of ``X`` are, when ``input_shape``
            is None: :class:`pipeline.model.ImagePipeline` passes it after
            :class:`features.RawPixels`. ``input_shape``, when given, wins.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            An ``input_shape`` that does not match the features, or an architecture whose
            sizes do not fit (the message names the numbers).
        """
        check_params(self)
        X, y = validate_data(self, X, y, dtype=np.dtype(self.dtype))
        check_classification_targets(y)
        self.classes_, y = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in y, "
                             f"got 1 class: {self.classes_.tolist()}")
        given = self.input_shape if self.input_shape is not None else image_shape
        shape = infer_input_shape(X.shape[1]) if given is None else check_input_shape(given, X.shape[1])
        layers, self.architecture_ = self._layers(shape)
        rng = self._generator()
        split = self._split(y, rng)
        xp = get_array_module(self.device)
        params, running = init_params(layers, self.weight_init, rng, np.dtype(self.dtype))
        self.input_shape_ = shape
        self.n_params_ = int(sum(p.size for p in params.values()))
        logger.debug("ConvNet on %s images, %d parameters: %s", shape, self.n_params_, "; ".join(self.architecture_))
        with share_threads(self.n_jobs, xp) as executor, np.errstate(over="ignore", invalid="ignore"):
            net = ConvolutionalNet(layers, {k: to_device(v, xp) for k, v in params.items()},
                                   {k: to_device(v, xp) for k, v in running.items()}, shape, self.reg, executor)
            self._train(net, xp, rng, *self._sets(X, y, split, xp))  # divergence is reported once, by _train
        return self

    def _layers(self, shape):
        return build_layers(shape, self.filters, self.kernel_sizes, self.pool_size, self.hidden_sizes,
                            len(self.classes_), self.activation, self.batchnorm, self.dropout)

    def _augmenter(self):
        if not self.random_shift and not self.random_flip:
            return None
        return ImageAugmenter(self.input_shape_, self.random_shift, self.random_flip)

    # ---------------------------------------------------------------- inference
    def _network(self, xp, executor=None):
        """The fitted network on ``xp``'s device, its layers rebuilt from the parameters."""
        layers, _ = self._layers(self.input_shape_)
        expected = {name: shape for layer in layers for name, shape in layer.param_shapes().items()}
        found = {name: tuple(p.shape) for name, p in self.params_.items()}
        if expected != found:
            raise ValueError(f"the architecture parameters no longer describe the fitted network (set_params "
                             f"after fit?): they give parameters {expected}, the fitted ones are {found}")
        return ConvolutionalNet(layers, {k: to_device(v, xp) for k, v in self.params_.items()},
                                {k: to_device(v, xp) for k, v in self.running_.items()}, self.input_shape_,
                                executor=executor)

    def _scores(self, X):
        """Scores (n_samples, n_classes) as NumPy arrays of the network's dtype."""
        check_is_fitted(self)
        check_params(self)
        X = check_predict_input(self, X, np.dtype(self.dtype))
        xp = get_array_module(self.device)
        with share_threads(self.n_jobs, xp) as executor:
            return to_numpy(self._network(xp, executor).scores(to_device(X, xp)))

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        return softmax(self._scores(X))

    def predict(self, X):
        """Predicted labels, shape (n_samples,)."""
        scores = self._scores(X)  # first: it says "not fitted" before classes_ is looked up
        return self.classes_[np.argmax(scores, axis=1)]
