"""Progress bars of the long steps: on a terminal, and silent under -q or when stderr is not a terminal."""
import io
import json
import sys

import pytest

from cvpipe.cli import main


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("quiet, tty, shown", [(False, True, True), (True, True, False), (False, False, False)])
def test_train_shows_feature_and_epoch_bars_only_on_a_terminal_without_q(tmp_path, monkeypatch, capsys, quiet, tty,
                                                                         shown):
    stderr = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    status = main([*(["-q"] if quiet else []), "train", "--dataset", "digits", "--limit", "200", "--features", "raw",
                   "--classifier", "softmax:n_epochs=4,batch_size=32,tol=null", "--out", str(tmp_path / "m")])
    assert status == 0 and json.loads(capsys.readouterr().out)["n_train"] == 200
    text = stderr.getvalue()
    assert ("features" in text and "/200" in text and "train Softmax" in text and "/4 " in text) is shown, text


def test_cv_knn_shows_its_bars_on_a_terminal(monkeypatch, capsys):
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["cv", "knn", "--dataset", "digits", "--limit", "100", "--k", "1,3", "--folds", "2"]) == 0
    assert "features" in stderr.getvalue() and "folds" in stderr.getvalue(), stderr.getvalue()
