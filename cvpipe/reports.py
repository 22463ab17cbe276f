"""Report plots, written as PNG files: the only module of cvpipe that draws.

Every function takes data and an output path, writes one PNG of a fixed size
(``figsize * DPI`` pixels, said in each docstring) and returns the path as a
:class:`pathlib.Path`. Figures are drawn on matplotlib's Agg canvas directly, without
``pyplot``: no display is needed and no global backend is switched. Names (classes,
files) are drawn literally: a ``$`` in one does not start matplotlib's mathtext.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator

logger = logging.getLogger(__name__)

DPI = 100
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red")
_MAD_TO_STD = 1.4826  # the MAD of a normal distribution times this is its standard deviation
_FENCE_MADS = 3.0  # class templates: weights beyond median +- this many scaled MADs are clipped


def _plain_text(text):
    """``text`` as matplotlib draws it literally: a pair of ``$`` would start mathtext
    (and a class name or file name like ``a$b$c`` would fail to draw)."""
    return str(text).replace("$", r"\$")


def _figure(width, height):
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    logger.info("wrote %s", path)
    return path


def _series(values, name, min_len=1):
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or len(arr) < min_len:
        raise ValueError(f"{name} must be a 1-D sequence of at least {min_len} numbers, got shape {arr.shape}")
    if not np.isfinite(arr).any():
        raise ValueError(f"{name} has no finite value")
    return arr


def _cv_arrays(result):
    """``(ks, metrics, {metric: folds (n_ks, n_folds)}, best)`` from a KnnCVResult or its dict."""
    doc = result.to_dict() if hasattr(result, "to_dict") else result
    try:
        ks = np.asarray(doc["ks"], dtype=np.float64)
        folds = {m: np.asarray(doc["fold_scores"][m], dtype=np.float64) for m in doc["metrics"]}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"expected a kNN CV result (ks, metrics, fold_scores), missing {exc}") from exc
    n_folds = {s.shape[1] if s.ndim == 2 else None for s in folds.values()}
    if not len(ks) or not folds or any(s.ndim != 2 or s.shape[0] != len(ks) for s in folds.values()) \
            or len(n_folds) != 1:
        shapes = {m: s.shape for m, s in folds.items()}
        raise ValueError(f"fold_scores must hold one (n_ks={len(ks)}, n_folds) array per metric, got {shapes}")
    return ks, list(doc["metrics"]), folds, doc.get("best")


def _mean_std(scores):
    mean = np.average(scores, axis=1)
    return mean, np.sqrt(np.average((scores - mean[:, None]) ** 2, axis=1))


def plot_knn_cv(result, path):
    """Validation accuracy against k, per metric (cs231n's cross-validation plot).

    Each fold's accuracy is a dot; the mean is a line with population-std error bars.
    The k axis is logarithmic when the ks span more than a factor of 10. The title
    names the best (metric, k). PNG of 800 x 500 pixels.

    Parameters
    ----------
    result : KnnCVResult or its ``to_dict()`` document
    path : str or Path

    Returns
    -------
    Path
    """
    ks, metrics, folds, best = _cv_arrays(result)
    if best is None:  # first of the highest mean in (k, metric) order, as KnnCVResult.best
        table = np.stack([_mean_std(folds[m])[0] for m in metrics], axis=1)
        i_k, i_m = np.unravel_index(int(np.argmax(table)), table.shape)
        best = {"metric": metrics[i_m], "k": int(ks[i_k])}
    i_best = list(ks).index(best["k"])
    mean_b, std_b = (v[i_best] for v in _mean_std(folds[best["metric"]]))
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    log_x = ks.max() / ks.min() > 10
    for i, m in enumerate(metrics):
        mean, std = _mean_std(folds[m])
        shift = (i - (len(metrics) - 1) / 2) * 0.04  # keep the metrics' dots apart
        x = ks * np.exp(shift) if log_x else ks + shift * max(np.ptp(ks), 1.0)
        color = _COLORS[i % len(_COLORS)]
        n_folds = folds[m].shape[1]
        ax.scatter(np.repeat(x, n_folds), folds[m].ravel(), s=14, alpha=0.45, color=color,
                   label=f"{m}: each fold")
        ax.errorbar(x, mean, yerr=std, color=color, marker="o", capsize=4, lw=1.8, label=f"{m}: mean ± std")
    if log_x:
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ks))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("k (number of neighbours)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"kNN, {n_folds}-fold cross-validation: best {best['metric']}, k={best['k']} "
                 f"(accuracy {mean_b:.3f} ± {std_b:.3f})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return _save(fig, path)


def _moving_average(values, window):
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_loss_history(loss_history, path):
    """Training loss per iteration, with a moving average over about 2% of the run.

    PNG of 800 x 450 pixels.

    Parameters
    ----------
    loss_history : array-like of shape (n_iterations,)
    path : str or Path

    Returns
    -------
    Path
    """
    loss = _series(loss_history, "loss_history")
    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    it = np.arange(len(loss))
    ax.plot(it, loss, color="tab:blue", lw=0.8, alpha=0.45, label="loss per iteration")
    window = max(1, len(loss) // 50)
    if window > 1:
        ax.plot(it[window - 1:], _moving_average(loss, window), color="tab:red", lw=2,
                label=f"moving average ({window} iterations)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(f"Training loss: {loss[0]:.4g} → {loss[-1]:.4g} over {len(loss)} iterations")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return _save(fig, path)


def _loss_per_epoch(loss_history, n_epochs):
    """The batch losses of ``loss_history`` as one row per epoch, shape (n_epochs, steps per epoch)."""
    loss = _series(loss_history, "loss_history")
    if len(loss) < n_epochs or len(loss) % n_epochs:
        raise ValueError(f"loss_history must hold the same number of iterations for each of the {n_epochs} "
                         f"epochs, got {len(loss)} iterations")
    return loss.reshape(n_epochs, -1)


def plot_epoch_history(loss_history, train_acc, path, val_acc=None, best_epoch=None):
    """A network's training per epoch: the mean training loss over the epoch's iterations
    (with the band of its middle 80% of batch losses) above, the training (and validation)
    accuracy below, and a dashed line at the epoch whose parameters were kept.

    The iterations are split evenly among the epochs: every epoch of cvpipe's networks
    takes the same number of steps. PNG of 800 x 600 pixels.

    Parameters
    ----------
    loss_history : array-like of shape (n_epochs * steps_per_epoch,)
        The loss of every iteration (``loss_history_``).
    train_acc : array-like of shape (n_epochs,)
    path : str or Path
    val_acc : array-like of shape (n_epochs,), optional
        Empty or None without early stopping.
    best_epoch : int, optional
        0-based index of the kept epoch (``best_epoch_``); None draws no line.

    Returns
    -------
    Path
    """
    train = _series(train_acc, "train_acc")
    n = len(train)
    val = _series(val_acc, "val_acc") if val_acc is not None and len(val_acc) else None
    if val is not None and len(val) != n:
        raise ValueError(f"train_acc and val_acc must have one value per epoch each, got {n} and {len(val)}")
    if best_epoch is not None and not 0 <= int(best_epoch) < n:
        raise ValueError(f"best_epoch must index one of the {n} epochs (0 to {n - 1}), got {best_epoch}")
    per_epoch = _loss_per_epoch(loss_history, n)
    finite = [r[np.isfinite(r)] for r in per_epoch]  # a diverged epoch's inf/NaN losses are left out
    mean, lo, hi = (np.array([f(r) if len(r) else np.nan for r in finite])
                    for f in (np.mean, lambda r: np.percentile(r, 10), lambda r: np.percentile(r, 90)))
    epochs = np.arange(1, n + 1)
    fig = _figure(8, 6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    if per_epoch.shape[1] > 1:
        top.fill_between(epochs, lo, hi, color="tab:blue", alpha=0.15,
                         label="middle 80% of the batch losses")
    top.plot(epochs, mean, marker="o", color="tab:blue",
             label=f"mean training loss ({per_epoch.shape[1]} iterations an epoch)")
    top.set_ylabel("loss")
    bottom.plot(epochs, train, marker="o", color="tab:orange", label="training accuracy")
    if val is not None:
        bottom.plot(epochs, val, marker="s", color="tab:green", label="validation accuracy")
    bottom.set_ylabel("accuracy")
    bottom.set_xlabel("epoch")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    title = f"Training per epoch: mean loss {mean[0]:#.4g} → {mean[-1]:#.4g} over {n} epochs"
    if best_epoch is not None:
        b = int(best_epoch)
        for ax in (top, bottom):
            ax.axvline(b + 1, color="0.35", ls="--", lw=1.2,
                       label=f"parameters kept (epoch {b + 1})" if ax is bottom else None)
        acc = f"training accuracy {train[b]:.3f}" + (f", validation {val[b]:.3f}" if val is not None else "")
        title += f"\nkept epoch {b + 1}: {acc}"
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(confusion, class_names, path, normalize=True):
    """Confusion matrix: true class down, predicted class across, counts in the cells.

    PNG of 900 x 800 pixels.

    Parameters
    ----------
    confusion : array-like of int, shape (n_classes, n_classes)
        Counts, true class by row, as ``sklearn.metrics.confusion_matrix`` gives them.
    class_names : sequence of str, length n_classes
    path : str or Path
    normalize : bool, default=True
        Color each row by its share of the true class (the recall along the diagonal,
        also written under each count); otherwise color by count.

    Returns
    -------
    Path
    """
    names = [_plain_text(c) for c in class_names]
    cm = np.asarray(confusion)
    if cm.shape != (len(names), len(names)) or cm.dtype.kind not in "iu" or not cm.sum() or cm.min() < 0:
        raise ValueError(f"confusion must be a ({len(names)}, {len(names)}) matrix of counts, one row and "
                         f"column per class name, with at least one sample; got {cm.dtype} of shape {cm.shape}")
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    shade = share if normalize else cm
    n = len(names)
    fig = _figure(9, 8)
    ax = fig.add_subplot()
    im = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, cm.max()))
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class" if normalize else "count")
    if n <= 30:
        size = 9 if n <= 12 else 6
        for i in range(n):
            for j in range(n):
                dark = shade[i, j] > 0.55 * (1 if normalize else cm.max())
                text = f"{cm[i, j]}\n{share[i, j]:.0%}" if normalize and cm[i, j] else f"{cm[i, j]}"
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color="white" if dark else ("black" if cm[i, j] else "0.6"))
    ax.set_xticks(range(n), names, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix: accuracy {np.trace(cm) / cm.sum():.3f} on {cm.sum()} samples")
    return _save(fig, path)


def _robust_limits(W, axis):
    """``(lo, hi)`` along ``axis`` of ``W``: the 0.5/99.5 percentiles narrowed to the median
    plus or minus :data:`_FENCE_MADS` scaled MADs; where that range is empty (more than
    half of the values equal), the percentiles, then the min and max."""
    q_lo, q_hi = np.percentile(W, [0.5, 99.5], axis=axis)
    median = np.median(W, axis=axis)
    mad = _MAD_TO_STD * np.median(np.abs(W - median), axis=axis)
    lo, hi = np.maximum(q_lo, median - _FENCE_MADS * mad), np.minimum(q_hi, median + _FENCE_MADS * mad)
    lo, hi = np.where(hi > lo, lo, q_lo), np.where(hi > lo, hi, q_hi)
    return np.where(hi > lo, lo, W.min(axis=axis)), np.where(hi > lo, hi, W.max(axis=axis))


def plot_class_templates(W, image_shape, class_names, path, scale="per_class"):
    """The weights of a linear classifier on raw pixels, one image per class (cs231n).

    PNG of ``200 * columns`` x ``230 * rows`` pixels, at most 5 columns.

    Parameters
    ----------
    W : array-like of shape (n_pixels, n_classes)
        Weights in pixel space, without a bias row. If the model was trained on
        standardized pixels, pass the weights mapped back to pixels (``W / scale_[:, None]``
        for a ``StandardScaler``), or the template shows the scaler's pattern too.
    image_shape : tuple of int
        ``(height, width)`` or ``(height, width, channels)``; its product is ``n_pixels``.
    class_names : sequence of str, length n_classes
    path : str or Path
    scale : {"per_class", "global"}, default="per_class"
        Stretch each class's weights to 0..255 on its own, or all by one range (the
        cs231n notebooks' choice, which shows which class weighs pixels most).

    Returns
    -------
    Path

    Notes
    -----
    The weights are clipped to a robust range before the cs231n rescaling
    ``(w - lo) / (hi - lo)``: the 0.5 and 99.5 percentiles, narrowed to the median
    plus or minus 3 scaled MADs (the MAD, unlike a percentile, ignores a cluster of
    outliers as large as half of the pixels). Without it a few pixels that hardly vary
    in the training set (a digit's corners: their ``scale_`` is tiny, so ``W / scale_``
    is huge) take the whole gray range and every other pixel is one flat gray.
    Clipped pixels are drawn black or white.
    """
    W = np.asarray(W, dtype=np.float64)
    shape = tuple(int(s) for s in image_shape)
    names = [str(c) for c in class_names]
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ValueError(f"image_shape must be (height, width) or (height, width, 1 or 3), got {image_shape}")
    if W.ndim != 2 or W.shape != (math.prod(shape), len(names)):
        raise ValueError(f"W must have shape (n_pixels, n_classes) = ({math.prod(shape)}, {len(names)}) for "
                         f"image_shape {shape} and {len(names)} class names, got {W.shape}"
                         " (strip a bias row first)")
    if scale not in ("per_class", "global"):
        raise ValueError(f"scale must be 'per_class' or 'global', got {scale!r}")
    lo, hi = _robust_limits(W, axis=0 if scale == "per_class" else None)
    img = 255.0 * (np.clip(W, lo, hi) - lo) / np.where(hi > lo, hi - lo, 1.0)
    cols = min(5, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(2 * cols, 2.3 * rows)
    for c, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, c + 1)
        tile = img[:, c].reshape(shape).astype(np.uint8)
        gray = tile.ndim == 2 or tile.shape[2] == 1
        ax.imshow(tile.squeeze(-1) if tile.ndim == 3 and gray else tile, cmap="gray" if gray else None,
                  vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(_plain_text(name), fontsize=10)
        ax.set_axis_off()
    sep = " " if cols >= 4 else "\n"  # the title in one line where the figure is wide enough
    fig.suptitle(f"Linear classifier weights per class{sep}({scale.replace('_', ' ')} scaling, "
                 "clipped to a robust range)")
    return _save(fig, path)


_FILTER_PERCENTILE = 99.5  # conv filters: |w| above this percentile is drawn at full black / white


def _check_conv_weights(W):
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 4 or not W.size:
        raise ValueError("W must be a convolution's weights of shape (kernel_height, kernel_width, in_channels, "
                         f"out_channels), as ConvNet.params_['W1'], got shape {W.shape}")
    if not np.isfinite(W).all():
        raise ValueError(f"W has {int(np.sum(~np.isfinite(W)))} non-finite weights (a diverged training?)")
    return W


def conv_filter_tiles(W, scale="shared"):
    """The filters of a convolution as images with values in [0, 1], one per output channel.

    A weight ``w`` becomes ``0.5 + 0.5 * clip(w / bound, -1, 1)``: zero is mid-gray,
    positive weights lighter, negative darker; ``bound`` is the 99.5th percentile of
    ``|w|`` (the weights beyond it are drawn at full black or white). The range is
    symmetric so that the sign of a weight can be read from its shade.

    Parameters
    ----------
    W : array-like of shape (kernel_height, kernel_width, in_channels, out_channels)
        Weights in NHWC convention, as ``ConvNet.params_["W1"]``.
    scale : {"shared", "per_filter"}, default="shared"
        One ``bound`` for all the filters, or one per filter.

    Returns
    -------
    tiles : ndarray of float64
        Shape (out_channels, kernel_height, kernel_width) for 1 input channel (gray);
        (out_channels, kernel_height, kernel_width, 3) for 3 (RGB, each channel mapped as
        above: a gray pixel weighs the three colors alike); for any other number of input
        channels, (out_channels, kernel_height, in_channels * (kernel_width + 1) - 1): the
        input channels side by side in gray, left to right, with a column of NaN between them.
    bound : ndarray of float64, shape (out_channels,)
        The ``|w|`` drawn at full white, per filter (all equal with ``scale="shared"``).
    """
    W = _check_conv_weights(W)
    if scale not in ("shared", "per_filter"):
        raise ValueError(f"scale must be 'shared' or 'per_filter', got {scale!r}")
    kh, kw, c_in, c_out = W.shape
    flat, axis = np.abs(W).reshape(-1, c_out), None if scale == "shared" else 0
    bound, top = np.percentile(flat, _FILTER_PERCENTILE, axis=axis), flat.max(axis=axis)
    bound = np.broadcast_to(np.where(bound > 0, bound, np.where(top > 0, top, 1.0)), (c_out,)).copy()  # 0: gray
    tiles = (0.5 + 0.5 * np.clip(W / bound, -1.0, 1.0)).transpose(3, 0, 1, 2)  # (c_out, kh, kw, c_in)
    if c_in == 1:
        return tiles[..., 0], bound
    if c_in == 3:
        return tiles, bound
    gap = np.full((c_out, kh, 1, c_in), np.nan)
    wide = np.concatenate([tiles, gap], axis=2).transpose(0, 1, 3, 2).reshape(c_out, kh, -1)
    return wide[:, :, :-1], bound


def plot_conv_filters(W, path, scale="shared", max_filters=64):
    """The filters of a convolution (a ConvNet's first layer) as a grid of small images,
    one tile per output channel, numbered by channel index (cs231n's first-layer picture).

    Gray for one input channel, color for three (RGB), and for any other number the
    input channels side by side in gray (see :func:`conv_filter_tiles`, which maps the
    weights: zero is mid-gray, positive lighter, negative darker, the 99.5th percentile of
    ``|w|`` at full white). The default scale is shared by all the filters so that they
    can be compared: a filter that learned little stays near flat gray and a strong one
    shows its full contrast (with one scale per filter, the noise of a nearly dead filter
    would look as strong as an edge detector). A gray scale has its colorbar.

    PNG of ``max(640, 110 * columns * aspect + 90)`` x ``120 * rows + 100`` pixels, where
    ``aspect`` is a tile's width over its height and the columns are at most 8 (fewer
    for wide tiles).

    Parameters
    ----------
    W : array-like of shape (kernel_height, kernel_width, in_channels, out_channels)
        Weights in NHWC convention, as ``ConvNet.params_["W1"]``.
    path : str or Path
    scale : {"shared", "per_filter"}, default="shared"
    max_filters : int, default=64
        Draw at most this many filters, the first ones (the title says so).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        A ``W`` that is not 4-D (or has non-finite weights), an unknown ``scale``.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    tiles, bound = conv_filter_tiles(W, scale)
    kh, kw, c_in, c_out = np.shape(W)
    if int(max_filters) < 1:
        raise ValueError(f"max_filters must be a positive integer, got {max_filters}")
    n = min(c_out, int(max_filters))
    aspect = tiles.shape[2] / tiles.shape[1]
    cols = max(1, min(n, 8, round(8 / aspect)))
    rows = math.ceil(n / cols)
    gray = tiles.ndim == 3
    fig = _figure(max(6.4, 1.1 * cols * aspect + 0.9), 1.2 * rows + 1.0)
    cmap = colormaps["gray"].with_extremes(bad="white")  # NaN: the gap between input channels
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    for i, ax in enumerate(axes):
        ax.imshow(tiles[i], cmap=cmap if gray else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(str(i), fontsize=8, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
    channels = {1: "1 input channel (gray)", 3: "3 input channels (RGB)"}.get(
        c_in, f"{c_in} input channels side by side")
    shown = "" if n == c_out else f", the first {n} shown"
    if scale == "shared":
        how = (f"one scale for all: mid-gray = 0, white = +{bound[0]:.3g}, black = −{bound[0]:.3g}" if gray else
               f"one scale for all, each color alike: mid-gray = 0, full color = ±{bound[0]:.3g}")
        if gray:
            fig.colorbar(ScalarMappable(Normalize(-bound[0], bound[0]), cmap="gray"), ax=axes, shrink=0.9,
                         label="weight")
    else:
        how = "each filter on its own scale: mid-gray = 0, white/black = its 99.5th percentile of |w|"
    fig.suptitle(f"First convolution: {c_out} filters of {kh}x{kw} on {channels}{shown}\n{how}", fontsize=11)
    return _save(fig, path)


def plot_hog(image, path, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)):
    """An image beside its HOG visualization (``skimage.feature.hog(..., visualize=True)``).

    skimage draws each cell's histogram as line segments inside the cell, which
    cannot show an orientation in a cell of a few pixels; so when a cell is smaller
    than 24 pixels the image is enlarged (bilinear, by the integer factor that makes
    the cells at least 24 pixels) and HOG runs on it with the cells enlarged by the
    same factor: the same grid of cells, drawn legibly. The factor is in the title.
    PNG of 800 x 450 pixels.

    Parameters
    ----------
    image : array-like of shape (height, width) or (height, width, 3)
    path : str or Path
    orientations : int
    pixels_per_cell, cells_per_block : (int, int)

    Returns
    -------
    Path
    """
    from skimage.exposure import rescale_intensity
    from skimage.feature import hog
    from skimage.transform import rescale

    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or image.dtype.kind not in "uif":
        raise ValueError(f"image must be numeric (height, width) or (height, width, 3), "
                         f"got {image.dtype} {image.shape}")
    cell, block = tuple(int(p) for p in pixels_per_cell), tuple(int(b) for b in cells_per_block)
    if len(cell) != 2 or len(block) != 2 or min(cell + block) < 1:
        raise ValueError(f"pixels_per_cell and cells_per_block must be pairs of positive integers, "
                         f"got {pixels_per_cell} and {cells_per_block}")
    if image.shape[0] < cell[0] * block[0] or image.shape[1] < cell[1] * block[1]:
        raise ValueError(f"image of {image.shape[0]}x{image.shape[1]} pixels is smaller than one HOG block "
                         f"({cell[0] * block[0]}x{cell[1] * block[1]}: pixels_per_cell {cell} x "
                         f"cells_per_block {block})")
    factor = max(1, math.ceil(24 / min(cell)))
    channel_axis = -1 if image.ndim == 3 else None
    big = image.astype(np.float64)
    if factor > 1:
        big = rescale(big, factor, order=1, channel_axis=channel_axis, preserve_range=True)
    _, vis = hog(big, orientations=orientations, pixels_per_cell=(cell[0] * factor, cell[1] * factor),
                 cells_per_block=block, visualize=True, channel_axis=channel_axis)
    vis = rescale_intensity(vis, in_range=(0, max(float(vis.max()), 1e-12)), out_range=(0.0, 1.0))
    fig = _figure(8, 4.5)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    shown = image if image.dtype.kind == "u" else rescale_intensity(image.astype(np.float64), out_range=(0.0, 1.0))
    left.imshow(shown, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    left.set_title(f"input ({image.shape[0]}x{image.shape[1]} pixels)")
    right.imshow(vis, cmap="gray", interpolation="nearest")
    right.set_title("HOG visualization" + (f" (drawn at {factor}x)" if factor > 1 else ""))
    fig.suptitle(f"HOG: {orientations} orientations, {cell[0]}x{cell[1]}-pixel cells, "
                 f"{block[0]}x{block[1]}-cell blocks")
    for ax in (left, right):
        ax.set_axis_off()
    return _save(fig, path)


def _caption_name(name, width=20, keep_end=False):
    """``name`` in at most ``width`` characters: its start (or its end) and an ellipsis."""
    name = str(name)
    if len(name) > width:
        name = "…" + name[1 - width:] if keep_end else name[:width - 1] + "…"
    return _plain_text(name)


def _score_text(score, kind):
    """A score in a few characters; a probability within 0.001 of 1 as ``1 - 2.3e-05``
    (the most confident mistakes would all read 1.000)."""
    if kind == "probability" and 0.999 < score < 1.0:
        return f"1 - {1.0 - score:.1e}"
    return f"{score:.3f}"


def plot_misclassified(images, true_names, predicted_names, scores, path, score_kind="probability", ids=None,
                       n_errors=None):
    """A gallery of misclassified images, each captioned with its true and predicted class
    and the model's score for the predicted class, in the order given (the caller puts
    the most confident mistakes first).

    PNG of ``160 * columns`` x ``210 * rows + 40`` pixels, at most 6 columns.

    Parameters
    ----------
    images : array-like of uint8, shape (n_images, height, width[, 1 or 3])
    true_names, predicted_names : sequence of str, length n_images
    scores : array-like of shape (n_images,)
        The predicted class's probability (or decision score, with ``score_kind="decision"``).
    path : str or Path
    score_kind : {"probability", "decision"}, default="probability"
    ids : sequence of str, optional
        One line each under the scores (e.g. the image's row or file), shortened to fit
        (their end kept).
    n_errors : int, optional
        How many images were misclassified in all, said in the title.

    Returns
    -------
    Path
    """
    images = np.asarray(images)
    n = len(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or n == 0 \
            or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise ValueError(f"images must be uint8 of shape (n_images >= 1, height, width[, 1 or 3]), "
                         f"got {images.dtype} {images.shape}")
    scores = np.asarray(scores, dtype=np.float64)
    columns = {"true_names": len(true_names), "predicted_names": len(predicted_names), "scores": len(scores),
               **({"ids": len(ids)} if ids is not None else {})}
    if scores.ndim != 1 or set(columns.values()) != {n}:
        raise ValueError(f"expected one true name, predicted name, score (and id) per image ({n} images), got "
                         + ", ".join(f"{k}: {v}" for k, v in columns.items()))
    if score_kind not in ("probability", "decision"):
        raise ValueError(f"score_kind must be 'probability' or 'decision', got {score_kind!r}")
    cols = min(6, n)
    rows = math.ceil(n / cols)
    fig = _figure(1.6 * cols, 2.1 * rows + 0.4)
    word = "p" if score_kind == "probability" else "score"
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        image = images[i].squeeze(-1) if images.ndim == 4 and images.shape[3] == 1 else images[i]
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        lines = [f"true: {_caption_name(true_names[i])}", f"pred: {_caption_name(predicted_names[i])}",
                 f"{word} = {_score_text(scores[i], score_kind)}"]
        if ids is not None:
            lines.append(_caption_name(ids[i], 24, keep_end=True))  # a path's end: its file name
        ax.set_title("\n".join(lines), fontsize=8, color="black")
        ax.set_axis_off()
    of = f" of {n_errors}" if n_errors is not None else ""
    fig.suptitle(f"The {n} most confidently misclassified images{of} (score of the predicted class)")
    return _save(fig, path)


def _check_calibration_input(confidence, correct, n_bins):
    conf = _series(confidence, "confidence")
    hits = np.asarray(correct)
    if hits.shape != conf.shape or not np.isin(hits, (0, 1)).all():
        raise ValueError(f"correct must hold one 0/1 (or bool) per confidence ({conf.shape}), "
                         f"got {hits.dtype} {hits.shape}")
    if not (np.isfinite(conf).all() and conf.min() >= 0 and conf.max() <= 1):
        raise ValueError(f"confidence must be probabilities in [0, 1], got values in [{np.nanmin(conf):g}, "
                         f"{np.nanmax(conf):g}]" + (" and NaN" if np.isnan(conf).any() else ""))
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return conf, hits.astype(np.int64)


def _bin_ids(conf, n_bins):
    """Equal-width bins of [0, 1], as ``sklearn.calibration.calibration_curve(strategy="uniform")``."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], conf)


def expected_calibration_error(confidence, correct, n_bins=10):
    """The expected calibration error: the mean, weighted by the share of samples in each
    of ``n_bins`` equal-width bins of confidence (binned as ``calibration_curve`` bins
    them), of ``|accuracy - mean confidence|``.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        The probability the model gives its predicted (top) class, in [0, 1].
    correct : array-like of bool or 0/1, shape (n_samples,)
        Whether that prediction was right.
    n_bins : int, default=10

    Returns
    -------
    float
    """
    conf, hits = _check_calibration_input(confidence, correct, n_bins)
    ids = _bin_ids(conf, n_bins)
    gap = np.abs(np.bincount(ids, hits, n_bins) - np.bincount(ids, conf, n_bins))  # per bin: n * |acc - conf|
    return float(gap.sum() / len(conf))


def plot_reliability(confidence, correct, path, n_bins=10):
    """Reliability (calibration) diagram of the top-class confidence, over its histogram.

    Above: the accuracy of the predictions in each equal-width confidence bin against
    their mean confidence (``sklearn.calibration.calibration_curve``; empty bins left
    out) beside the diagonal of a perfectly calibrated model, the gaps in red. Below:
    how many predictions fall in each bin. The title gives the expected calibration
    error (:func:`expected_calibration_error`). PNG of 800 x 700 pixels.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        The probability of the predicted class, in [0, 1].
    correct : array-like of bool or 0/1, shape (n_samples,)
    path : str or Path
    n_bins : int, default=10

    Returns
    -------
    Path
    """
    from sklearn.calibration import calibration_curve

    conf, hits = _check_calibration_input(confidence, correct, n_bins)
    ece = expected_calibration_error(conf, hits, n_bins)
    accuracy, mean_conf = calibration_curve(hits, conf, n_bins=n_bins, strategy="uniform", pos_label=1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    fig = _figure(8, 7)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1))
    top.plot([0, 1], [0, 1], ls="--", color="0.5", label="perfectly calibrated")
    for m, a in zip(mean_conf, accuracy):
        top.plot([m, m], [m, a], color="tab:red", alpha=0.5, lw=3)
    top.plot(mean_conf, accuracy, marker="o", color="tab:blue",
             label=f"model: accuracy {hits.mean():.3f}, mean confidence {conf.mean():.3f}")
    top.plot([], [], color="tab:red", alpha=0.5, lw=3, label=f"gap (ECE = {ece:.3f})")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_ylabel("accuracy in the bin")
    top.grid(alpha=0.3)
    top.legend(loc="best", fontsize=9)
    bottom.hist(conf, bins=edges, color="tab:blue", alpha=0.7, edgecolor="white")
    bottom.axvline(conf.mean(), color="tab:orange", lw=2, label=f"mean confidence {conf.mean():.3f}")
    bottom.axvline(hits.mean(), color="tab:green", lw=2, ls=":", label=f"accuracy {hits.mean():.3f}")
    bottom.set_xlabel("confidence (probability of the predicted class)")
    bottom.set_ylabel("predictions")
    bottom.legend(loc="best", fontsize=9)
    bottom.grid(alpha=0.3)
    top.set_title(f"Reliability diagram: expected calibration error {ece:.3f} "
                  f"({len(conf)} predictions, {n_bins} bins)")
    return _save(fig, path)
