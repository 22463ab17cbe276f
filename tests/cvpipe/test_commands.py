"""train -> evaluate -> predict -> report through the command line, on scikit-learn's digits."""
import csv
import io
import json

import pytest
from PIL import Image

from cvpipe.cli import main
from pipeline.model.artifacts import load


def _run(capsys, *argv):
    status = main(["-q", *argv])
    out = capsys.readouterr()
    return status, (json.loads(out.out) if out.out.strip().startswith("{") else out.out), out.err


def test_train_evaluate_predict_report(tmp_path, capsys, digits_test):
    model = tmp_path / "models" / "digits"
    status, summary, _ = _run(capsys, "train", "--dataset", "digits", "--features", "raw",
                              "--classifier", "softmax:n_epochs=40,batch_size=32", "--out", str(model))
    assert status == 0 and summary["metrics"]["test_accuracy"] > 0.85
    assert load(model).metrics_["test_accuracy"] == summary["metrics"]["test_accuracy"]

    status, ev, _ = _run(capsys, "evaluate", str(model), "--dataset", "digits")
    assert status == 0 and ev["accuracy"] == pytest.approx(summary["metrics"]["test_accuracy"])
    assert len(ev["per_class_accuracy"]) == 10

    Image.fromarray(digits_test.images[0]).resize((24, 24)).save(tmp_path / "digit.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    status, pred, err = _run(capsys, "predict", str(model), str(tmp_path / "digit.png"),
                             str(tmp_path / "broken.png"), "--top-k", "3")
    assert status == 1 and "1 of 2 images could not be predicted" in err  # the bad file is a row, the good answered
    good, bad = csv.DictReader(io.StringIO(pred))  # CSV on standard output
    assert good["label_3"] and "label_4" not in good and good["score_kind"] == "probability"
    assert float(good["score"]) >= float(good["score_2"]) and "which it does not recognize" in bad["error"]

    status, rep, _ = _run(capsys, "report", str(model), "--dataset", "digits")
    names = sorted(p.rsplit("/", 1)[1] for p in rep["plots"])
    assert status == 0 and names == ["class_templates.png", "confusion_matrix.png", "loss_history.png",
                                     "misclassified.png", "reliability.png"]
    assert rep["accuracy"] == pytest.approx(ev["accuracy"]) and rep["index"].endswith("report/index.html")
    for path in rep["plots"]:
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] > 300


def test_train_from_a_config_with_a_search(tmp_path, capsys):
    config = tmp_path / "pipeline.yaml"
    config.write_text("dataset: digits\nfeatures: hog:pixels_per_cell=4x4,cells_per_block=1x1,raw\n"
                      "classifier: svm:n_epochs=20,batch_size=32\nseed: 3\n")
    status, summary, _ = _run(capsys, "train", "--config", str(config), "--out", str(tmp_path / "m"),
                              "--search", "learning_rate=log:1e-4:1e-1,reg=log:1e-6:1e-2", "--trials", "3")
    assert status == 0 and len(summary["search"]["trials"]) == 6
    best = summary["search"]["best"]["params"]
    assert load(tmp_path / "m").classifier_.learning_rate == pytest.approx(best["learning_rate"])


def test_linear_svm_predictions_are_decision_scores(tmp_path, capsys, digits_test):
    _run(capsys, "train", "--dataset", "digits", "--features", "raw", "--classifier", "svm", "--out",
         str(tmp_path / "svm"))
    Image.fromarray(digits_test.images[1]).save(tmp_path / "d.png")
    status, pred, _ = _run(capsys, "predict", str(tmp_path / "svm"), str(tmp_path / "d.png"))
    (row,) = csv.DictReader(io.StringIO(pred))  # CSV on standard output
    assert status == 0 and row["score_kind"] == "decision"


def test_cv_knn_writes_json_and_plot(tmp_path, capsys):
    status, table, _ = _run(capsys, "cv", "knn", "--dataset", "digits", "--limit", "300", "--k", "1,3,5",
                            "--json", str(tmp_path / "cv.json"), "--plot", str(tmp_path / "cv.png"))
    assert status == 0 and "l1" in table and "l2" in table
    assert (tmp_path / "cv.png").stat().st_size > 1000 and json.loads((tmp_path / "cv.json").read_text())


@pytest.mark.parametrize("argv, match", [
    (["train", "--dataset", "digits", "--out", "x"], "train needs --features, --classifier"),
    (["train", "--dataset", "digits", "--features", "raw", "--classifier", "forest", "--out", "x"],
     "unknown classifier"),
    (["evaluate", "no/such/model", "--dataset", "digits"], "no/such/model"),
])
def test_bad_commands_say_what_was_expected(tmp_path, capsys, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    status, _, err = _run(capsys, *argv)
    assert status == 2 and match in err
