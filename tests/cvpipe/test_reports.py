"""Report plots: each writes a PNG of its documented size; bad input is a clear ValueError."""
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix

from cvpipe import reports
from pipeline.selection.knn_cv import KnnCVResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _assert_png(path, expected, size):
    assert path == expected and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == size


@pytest.fixture
def cv_result(rng):
    ks = (1, 3, 5, 10, 20, 50, 100)
    folds = {m: np.clip(0.8 + 0.02 * rng.standard_normal((len(ks), 5)), 0, 1) for m in ("l1", "l2")}
    return KnnCVResult(ks=ks, metrics=("l1", "l2"), fold_scores=folds, n_folds=5)


def test_knn_cv_plot_from_the_result_and_from_its_json(cv_result, tmp_path):
    _assert_png(reports.plot_knn_cv(cv_result, tmp_path / "cv.png"), tmp_path / "cv.png", (800, 500))
    doc = cv_result.to_dict()
    _assert_png(reports.plot_knn_cv(doc, tmp_path / "sub" / "cv.png"), tmp_path / "sub" / "cv.png", (800, 500))


def test_knn_cv_plot_with_a_linear_k_axis_and_one_metric(tmp_path):
    result = KnnCVResult(ks=(1, 2, 3), metrics=("l2",), fold_scores={"l2": np.full((3, 4), 0.5)}, n_folds=4)
    _assert_png(reports.plot_knn_cv(result, str(tmp_path / "cv.png")), tmp_path / "cv.png", (800, 500))


def test_loss_history(rng, tmp_path):
    loss = 2.3 * np.exp(-np.arange(500) / 100) + 0.1 * rng.random(500)
    _assert_png(reports.plot_loss_history(loss, tmp_path / "loss.png"), tmp_path / "loss.png", (800, 450))
    _assert_png(reports.plot_loss_history([1.0], tmp_path / "one.png"), tmp_path / "one.png", (800, 450))


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_for_ten_classes(rng, tmp_path, normalize):
    y_true = rng.integers(0, 10, size=500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 10, size=500))
    path = reports.plot_confusion_matrix(confusion_matrix(y_true, y_pred), NAMES, tmp_path / "cm.png",
                                         normalize=normalize)
    _assert_png(path, tmp_path / "cm.png", (900, 800))


@pytest.mark.parametrize("shape, n_classes, size", [((28, 28), 10, (1000, 460)), ((8, 6, 3), 3, (600, 230))])
def test_class_templates(rng, tmp_path, shape, n_classes, size):
    W = rng.standard_normal((int(np.prod(shape)), n_classes))
    path = reports.plot_class_templates(W, shape, NAMES[:n_classes], tmp_path / "w.png")
    _assert_png(path, tmp_path / "w.png", size)
    _assert_png(reports.plot_class_templates(W, shape, NAMES[:n_classes], tmp_path / "g.png", scale="global"),
                tmp_path / "g.png", size)


@pytest.mark.parametrize("scale", ["per_class", "global"])
def test_class_templates_show_the_templates_despite_a_few_huge_pixels(tmp_path, scale):
    # A ramp from top to bottom, as W / scale_ gives it but for a few corner pixels that
    # hardly vary in training (a tiny scale_): min/max scaling drew every tile flat gray.
    W = np.repeat(np.linspace(-1.0, 1.0, 28)[:, None], 28, axis=1).reshape(784, 1) * np.ones((1, 2))
    W[[0, 27, 756, 783], 0] = [1e4, -1e4, 1e4, 5e3]
    W[[0, 1, 28], 1] = [3e5, -2e4, 7e4]
    path = reports.plot_class_templates(W, (28, 28), ["a", "b"], tmp_path / "w.png", scale=scale)
    with Image.open(path) as img:
        gray = np.asarray(img.convert("L"), dtype=np.float64)
    height, width = gray.shape
    for c in range(2):  # the middle of each tile, away from its corners: a ramp across the gray range
        middle = gray[int(0.55 * height):int(0.85 * height), 200 * c + 60:200 * c + 140]
        assert middle.std() > 20, (c, middle.std())
        column = middle.mean(axis=1)
        assert column[-1] - column[0] > 60 and np.all(np.diff(column) >= -1)  # darker on top, steadily


def test_plain_text_keeps_dollar_signs_out_of_mathtext(tmp_path):
    names = ["a$b$c", "$x^2$", "<b>", "d"]
    _assert_png(reports.plot_confusion_matrix(np.eye(4, dtype=int), names, tmp_path / "cm.png"), tmp_path / "cm.png",
                (900, 800))
    path = reports.plot_class_templates(np.eye(16)[:, :4], (4, 4), names, tmp_path / "w.png")
    _assert_png(path, tmp_path / "w.png", (800, 230))


@pytest.mark.parametrize("n, shape, size", [(24, (28, 28), (960, 880)), (1, (8, 8, 3), (160, 250)),
                                            (7, (32, 32, 1), (960, 460))])
def test_misclassified_gallery(rng, tmp_path, n, shape, size):
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    true = [NAMES[i % 10] for i in range(n)]
    pred = [NAMES[(i + 1) % 10] for i in range(n)]
    scores = np.sort(rng.random(n))[::-1]
    path = reports.plot_misclassified(images, true, pred, scores, tmp_path / "m.png",
                                      ids=[f"folder/deep/path/of/image<{i}>$.png" for i in range(n)], n_errors=50)
    _assert_png(path, tmp_path / "m.png", size)


def test_expected_calibration_error_by_hand():
    # bin 0.9-1.0: confidence 0.95 four times, 2 right -> |0.5 - 0.95| = 0.45, weight 4/6;
    # bin 0.5-0.6: confidence 0.55 twice, both right -> |1 - 0.55| = 0.45, weight 2/6
    conf = [0.95, 0.95, 0.95, 0.95, 0.55, 0.55]
    correct = [1, 0, 1, 0, 1, 1]
    assert reports.expected_calibration_error(conf, correct) == pytest.approx(0.45)
    assert reports.expected_calibration_error(conf, np.array(correct, bool), n_bins=1) == pytest.approx(
        abs(np.mean(correct) - np.mean(conf)))


def test_a_calibrated_model_has_a_small_ece_and_an_overconfident_one_does_not(rng, tmp_path):
    conf = rng.uniform(0.1, 1.0, size=20_000)
    calibrated = rng.random(20_000) < conf
    assert reports.expected_calibration_error(conf, calibrated) < 0.02
    assert reports.expected_calibration_error(conf, rng.random(20_000) < conf ** 2) > 0.1
    _assert_png(reports.plot_reliability(conf, calibrated, tmp_path / "r.png"), tmp_path / "r.png", (800, 700))
    _assert_png(reports.plot_reliability([1.0], [True], tmp_path / "one.png", n_bins=5), tmp_path / "one.png",
                (800, 700))


@pytest.mark.parametrize("image_shape", [(28, 28), (40, 32, 3)])
def test_hog_beside_its_image(rng, tmp_path, image_shape):
    image = rng.integers(0, 256, size=image_shape, dtype=np.uint8)
    _assert_png(reports.plot_hog(image, tmp_path / "hog.png"), tmp_path / "hog.png", (800, 450))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: reports.plot_loss_history([], p), "at least 1 numbers"),
        (lambda p: reports.plot_loss_history([[1.0, 2.0]], p), "1-D sequence"),
        (lambda p: reports.plot_loss_history([np.nan], p), "no finite value"),
        (lambda p: reports.plot_confusion_matrix(np.eye(9, dtype=int), NAMES, p),
         r"confusion must be a \(10, 10\) matrix of counts.*got int64 of shape \(9, 9\)"),
        (lambda p: reports.plot_confusion_matrix(np.eye(10) / 2, NAMES, p), "got float64 of shape"),
        (lambda p: reports.plot_confusion_matrix(np.zeros((10, 10), int), NAMES, p), "at least one sample"),
        (lambda p: reports.plot_class_templates(np.zeros((785, 10)), (28, 28), NAMES, p),
         r"W must have shape \(n_pixels, n_classes\) = \(784, 10\).*got \(785, 10\)"),
        (lambda p: reports.plot_class_templates(np.zeros((784, 9)), (28, 28), NAMES, p), r"= \(784, 10\)"),
        (lambda p: reports.plot_class_templates(np.zeros((784, 10)), (28,), NAMES, p), "image_shape must be"),
        (lambda p: reports.plot_class_templates(np.zeros((784, 10)), (28, 28), NAMES, p, scale="x"), "scale must be"),
        (lambda p: reports.plot_hog(np.zeros((10, 10)), p), "smaller than one HOG block"),
        (lambda p: reports.plot_hog(np.zeros((28, 28, 4)), p), r"\(height, width, 3\)"),
        (lambda p: reports.plot_knn_cv({"ks": [1, 3]}, p), "expected a kNN CV result"),
        (lambda p: reports.plot_misclassified(np.zeros((0, 8, 8), np.uint8), [], [], [], p), r"n_images >= 1"),
        (lambda p: reports.plot_misclassified(np.zeros((2, 8, 8)), ["a"] * 2, ["b"] * 2, [1, 1], p),
         r"must be uint8 .*got float64 \(2, 8, 8\)"),
        (lambda p: reports.plot_misclassified(np.zeros((2, 8, 8), np.uint8), ["a"], ["b"] * 2, [1, 1], p),
         r"one true name.*\(2 images\), got true_names: 1, predicted_names: 2, scores: 2"),
        (lambda p: reports.plot_misclassified(np.zeros((1, 8, 8), np.uint8), ["a"], ["b"], [1], p, "x"),
         "score_kind must be"),
        (lambda p: reports.plot_reliability([0.5, 1.5], [1, 0], p),
         r"probabilities in \[0, 1\], got values in \[0.5, 1.5\]"),
        (lambda p: reports.plot_reliability([0.5, np.nan], [1, 0], p), r"and NaN"),
        (lambda p: reports.plot_reliability([0.5, 0.6], [1, 2], p), r"one 0/1 \(or bool\) per confidence"),
        (lambda p: reports.plot_reliability([0.5, 0.6], [1], p), r"per confidence \(\(2,\)\), got int64 \(1,\)"),
        (lambda p: reports.plot_reliability([0.5], [1], p, n_bins=0), "n_bins must be a positive integer"),
        (lambda p: reports.plot_knn_cv({"ks": [1, 3], "metrics": ["l2"], "fold_scores": {"l2": [[0.5]]}}, p),
         r"one \(n_ks=2, n_folds\) array per metric"),
    ],
)
def test_bad_input_is_a_clear_value_error(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
