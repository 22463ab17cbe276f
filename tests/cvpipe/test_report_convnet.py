"""``cvpipe report`` of the networks: a ConvNet's first-layer filters and the per-epoch
curves (loss and accuracy, with or without early stopping), and the two plots on their own.

The figures are caught as :mod:`cvpipe.reports` saves them, so that the tests can count
the tiles and read the plotted values, not only see that a PNG exists.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvpipe import reports
from cvpipe.commands import report
from pipeline.data import load_dataset
from pipeline.model import ImagePipeline, save

CONVNET = "convnet:filters=4,kernel_sizes=3,hidden_sizes=16,n_epochs=2,tol=None,random_state=0"


def _catch_figures(monkeypatch):
    """``{file name: Figure}`` of every plot :mod:`cvpipe.reports` saves from now on."""
    drawn, save_png = {}, reports._save

    def keep(fig, path):
        drawn[Path(path).name] = fig
        return save_png(fig, path)

    monkeypatch.setattr(reports, "_save", keep)
    return drawn


def _title(fig):
    return fig.get_suptitle() if hasattr(fig, "get_suptitle") else fig._suptitle.get_text()  # matplotlib < 3.8


def _tiles(fig):
    """The axes of a figure that show an image (the colorbar's axes show none)."""
    return [ax for ax in fig.axes if ax.images]


@pytest.fixture(scope="module")
def digits_train():
    data = load_dataset("digits", "train")
    return data.images[:400], data.labels[:400]


@pytest.fixture(scope="module")
def convnet_report(digits_train, tmp_path_factory):
    """A small ConvNet on the 8x8 digits, without early stopping, saved and reported on the test split."""
    model = ImagePipeline("raw", CONVNET).fit(*digits_train)
    path = save(model, tmp_path_factory.mktemp("models") / "convnet")
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        figures = _catch_figures(mp)
        summary = report(path, out, dataset="digits", split="test")
    return model.classifier_, summary, out, figures


def test_a_convnet_report_shows_its_filters_and_per_epoch_curves(convnet_report):
    clf, summary, out, _ = convnet_report
    names = sorted(p.rsplit("/", 1)[1] for p in summary["plots"])
    assert names == ["confusion_matrix.png", "conv_filters.png", "epoch_history.png", "loss_history.png",
                     "misclassified.png", "reliability.png"]
    assert clf.val_acc_history_ == [] and clf.params_["W1"].shape == (3, 3, 1, 4)  # no early stopping
    for name in ("conv_filters.png", "epoch_history.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] >= 640 and im.size[1] >= 200
    page = (out / "index.html").read_text()
    caption = re.search(r'<img src="conv_filters.png" alt="([^"]*)"><figcaption>([^<]*)</figcaption>', page)
    assert caption and caption[1] == caption[2]
    assert "4 filters of 3x3" in caption[2] and html.escape("after the StandardScaler") in caption[2]
    assert re.search(r'<img src="epoch_history.png" alt="[^"]*"><figcaption>Per epoch: the mean training loss, '
                     r"the training accuracy;", page)


def test_the_filters_plot_has_one_gray_tile_per_filter_on_one_scale(convnet_report):
    clf, _, _, figures = convnet_report
    tiles = _tiles(figures["conv_filters.png"])
    W = clf.params_["W1"]
    assert len(tiles) == W.shape[3] == 4
    assert [ax.get_title() for ax in tiles] == ["0", "1", "2", "3"]
    bound = np.percentile(np.abs(W), 99.5)
    for i, ax in enumerate(tiles):
        shown = np.asarray(ax.images[0].get_array())
        assert shown.shape == (3, 3)  # gray: one value a pixel
        np.testing.assert_allclose(shown, 0.5 + 0.5 * np.clip(W[:, :, 0, i] / bound, -1, 1), rtol=1e-6)
    assert "4 filters of 3x3 on 1 input channel" in _title(figures["conv_filters.png"])


def test_the_per_epoch_curves_without_early_stopping(convnet_report):
    clf, _, _, figures = convnet_report
    top, bottom = figures["epoch_history.png"].axes
    loss = np.asarray(clf.loss_history_).reshape(2, -1)
    mean_line = next(line for line in top.lines if line.get_label().startswith("mean training loss"))
    np.testing.assert_allclose(mean_line.get_xdata(), [1, 2])
    np.testing.assert_allclose(mean_line.get_ydata(), loss.mean(axis=1))
    labels = [line.get_label() for line in bottom.lines]
    assert labels == ["training accuracy", f"parameters kept (epoch {clf.best_epoch_ + 1})"]
    np.testing.assert_allclose(bottom.lines[0].get_ydata(), clf.train_acc_history_)
    assert clf.best_epoch_ == 1 and list(bottom.lines[1].get_xdata()) == [2, 2]  # the last epoch is kept


def test_a_two_layer_net_with_early_stopping_gets_the_validation_curve(digits_train, tmp_path, monkeypatch):
    model = ImagePipeline("raw", "net:hidden_sizes=16,n_epochs=3,early_stopping=true,tol=None,"
                                 "random_state=0").fit(*digits_train)
    figures = _catch_figures(monkeypatch)
    summary = report(save(model, tmp_path / "net"), tmp_path / "report")
    names = sorted(p.rsplit("/", 1)[1] for p in summary["plots"])
    assert names == ["epoch_history.png", "loss_history.png"]  # no filters: params_["W1"] is 2-D
    clf = model.classifier_
    _, bottom = figures["epoch_history.png"].axes
    validation = next(line for line in bottom.lines if line.get_label() == "validation accuracy")
    np.testing.assert_allclose(validation.get_ydata(), clf.val_acc_history_)
    assert f"kept epoch {clf.best_epoch_ + 1}" in _title(figures["epoch_history.png"])
    assert "the training and validation accuracy" in (tmp_path / "report" / "index.html").read_text()


def test_a_convnet_on_color_images_draws_rgb_tiles(rng, tmp_path, monkeypatch):
    # red-ish against blue-ish 8x8 images: the filters have 3 input channels
    labels = np.arange(40) % 2
    images = rng.integers(0, 120, size=(40, 8, 8, 3), dtype=np.uint8)
    images[labels == 0, :, :, 0] += 120
    images[labels == 1, :, :, 2] += 120
    model = ImagePipeline("raw", CONVNET.replace("filters=4", "filters=5")).fit(images, labels)
    figures = _catch_figures(monkeypatch)
    summary = report(save(model, tmp_path / "rgb"), tmp_path / "report")
    assert "conv_filters.png" in [p.rsplit("/", 1)[1] for p in summary["plots"]]
    fig = figures["conv_filters.png"]
    tiles = _tiles(fig)
    assert len(tiles) == 5 and len(fig.axes) == 5  # no colorbar: the colors are not one gray scale
    assert {np.asarray(ax.images[0].get_array()).shape for ax in tiles} == {(3, 3, 3)}
    assert "(RGB)" in _title(fig)


def test_filter_tiles_share_one_scale_or_take_their_own(rng):
    W = rng.standard_normal((5, 5, 1, 3))
    W[..., 1] *= 0.1  # a weak filter
    W[..., 2] = 0.0  # a dead one
    shared, bound = reports.conv_filter_tiles(W)
    assert shared.shape == (3, 5, 5) and np.all(bound == np.percentile(np.abs(W), 99.5))
    assert np.ptp(shared[1]) < 0.25 < np.ptp(shared[0])  # the weak filter looks weak
    assert np.all(shared[2] == 0.5)  # zero is mid-gray
    assert np.all((shared[0] > 0.5) == (W[:, :, 0, 0] > 0))  # lighter is positive
    own, bounds = reports.conv_filter_tiles(W, scale="per_filter")
    assert bounds[1] == pytest.approx(0.1 * bounds[0], rel=0.5) and bounds[2] == 1.0
    assert np.ptp(own[1]) > 0.75 and np.all(own[2] == 0.5)


def test_filters_of_other_channel_counts_are_drawn_side_by_side(rng, tmp_path, monkeypatch):
    W = rng.standard_normal((3, 4, 2, 6))
    tiles, _ = reports.conv_filter_tiles(W)
    assert tiles.shape == (6, 3, 2 * (4 + 1) - 1)
    assert np.isnan(tiles[:, :, 4]).all() and not np.isnan(np.delete(tiles, 4, axis=2)).any()
    np.testing.assert_array_equal(tiles[:, :, 5:] > 0.5, W[:, :, 1, :].transpose(2, 0, 1) > 0)
    figures = _catch_figures(monkeypatch)
    path = reports.plot_conv_filters(W, tmp_path / "f.png", max_filters=4)
    assert path == tmp_path / "f.png" and len(_tiles(figures["f.png"])) == 4
    assert "6 filters of 3x4 on 2 input channels side by side, the first 4 shown" in _title(figures["f.png"])


def test_the_plot_sizes(rng, tmp_path):
    path = reports.plot_conv_filters(rng.standard_normal((3, 3, 1, 16)), tmp_path / "f.png")
    with Image.open(path) as im:
        assert im.size == (970, 340)  # 8 columns x 2 rows: max(640, 110 * 8 + 90) x (120 * 2 + 100)
    loss = np.linspace(2.0, 0.5, 30)
    path = reports.plot_epoch_history(loss, [0.5, 0.6, 0.7], tmp_path / "e.png", [0.4, 0.6, 0.5], best_epoch=1)
    with Image.open(path) as im:
        assert im.size == (800, 600)


@pytest.mark.parametrize("call, match", [
    (lambda p: reports.plot_conv_filters(np.zeros((3, 3, 4)), p),
     r"W must be a convolution's weights of shape \(kernel_height, kernel_width, in_channels, out_channels\).*"
     r"got shape \(3, 3, 4\)"),
    (lambda p: reports.plot_conv_filters(np.zeros((16, 10)), p), r"got shape \(16, 10\)"),
    (lambda p: reports.plot_conv_filters(np.zeros((3, 3, 1, 0)), p), r"got shape \(3, 3, 1, 0\)"),
    (lambda p: reports.plot_conv_filters(np.full((3, 3, 1, 2), np.nan), p), "18 non-finite weights"),
    (lambda p: reports.plot_conv_filters(np.zeros((3, 3, 1, 2)), p, scale="global"), "scale must be"),
    (lambda p: reports.plot_conv_filters(np.zeros((3, 3, 1, 2)), p, max_filters=0), "max_filters must be"),
    (lambda p: reports.plot_epoch_history(np.ones(7), [0.5, 0.6], p),
     "same number of iterations for each of the 2 epochs, got 7"),
    (lambda p: reports.plot_epoch_history(np.ones(4), [0.5, 0.6], p, val_acc=[0.5]),
     "one value per epoch each, got 2 and 1"),
    (lambda p: reports.plot_epoch_history(np.ones(4), [0.5, 0.6], p, best_epoch=2),
     r"best_epoch must index one of the 2 epochs \(0 to 1\), got 2"),
])
def test_bad_input_is_a_clear_error(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_diverged_convnet_is_reported_without_its_filters(digits_train, tmp_path, caplog):
    model = ImagePipeline("raw", CONVNET).fit(*digits_train)
    model.classifier_.params_["W1"][0, 0, 0, 0] = np.nan
    summary = report(save(model, tmp_path / "nan"), tmp_path / "report")
    assert sorted(p.rsplit("/", 1)[1] for p in summary["plots"]) == ["epoch_history.png", "loss_history.png"]
    assert "no filters plot: the first convolution has non-finite weights" in caplog.text


def test_a_diverged_epoch_is_a_gap_in_the_loss_curve(tmp_path, monkeypatch):
    figures = _catch_figures(monkeypatch)
    loss = [2.0, 1.0, 0.8, 0.6, np.inf, np.nan]
    reports.plot_epoch_history(loss, [0.5, 0.6, 0.1], tmp_path / "e.png", best_epoch=2)
    mean_line = next(line for line in figures["e.png"].axes[0].lines if line.get_label().startswith("mean"))
    np.testing.assert_allclose(mean_line.get_ydata(), [1.5, 0.7, np.nan])
