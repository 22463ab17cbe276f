import numpy as np
import pytest

from classifiers import KNearestNeighbor, LinearSVM, Softmax, TwoLayerNet
from pipeline.model.spec import SpecError
from pipeline.selection.search import Dimension, parse_space, random_search


def test_parse_space_kinds():
    dims = {d.name: d for d in parse_space("learning_rate=log:1e-4:1e-1, reg=uniform:0:0.01,"
                                           " n_epochs=int:2:5, hidden_sizes=choice:64|128x64")}
    assert dims["learning_rate"].kind == "log" and dims["learning_rate"].high == 0.1
    assert dims["n_epochs"].kind == "int"
    assert dims["hidden_sizes"].choices == (64, (128, 64))


@pytest.mark.parametrize("text, match", [("lr=log:0:1", "0 < LOW < HIGH"), ("lr=gauss:0:1", "KIND one of"),
                                         ("lr=uniform:a:b", "two numbers"), ("", "empty"),
                                         ("h=choice:", "choice needs values")])
def test_bad_spaces(text, match):
    with pytest.raises(SpecError, match=match):
        parse_space(text)


def test_draws_stay_in_bounds_and_narrowing_is_centred(rng):
    d = Dimension("lr", "log", 1e-4, 1e-1)
    draws = [d.draw(rng) for _ in range(200)]
    assert min(draws) >= 1e-4 and max(draws) <= 1e-1
    low, high = d.narrow(1e-2)
    assert low < 1e-2 < high and np.isclose(np.log(1e-2) - np.log(low), np.log(high) - np.log(1e-2))
    assert d.narrow(1e-4)[0] == pytest.approx(1e-4)  # clipped at the bound
    assert Dimension("n", "int", 1, 3).draw(rng) in (1, 2, 3)


@pytest.fixture
def blobs(rng):
    X = np.vstack([rng.normal(c, 1.0, (60, 5)) for c in (0, 3, 6)]).astype(np.float32)
    return X, np.repeat([0, 1, 2], 60)


def test_search_finds_a_good_setting_and_records_every_trial(blobs):
    X, y = blobs
    result = random_search(Softmax(n_epochs=5, batch_size=16, random_state=0), X, y,
                           "learning_rate=log:1e-4:1e-1,reg=log:1e-6:1e-1", n_trials=4, n_stages=2,
                           progress=False)
    assert len(result.trials) == 8 and {t["stage"] for t in result.trials} == {"coarse", "fine1"}
    assert result.best["score"] > 0.9
    doc = result.to_dict()
    assert doc["best"] == doc["trials"][0]


def test_search_is_deterministic_and_works_with_k_folds(blobs):
    X, y = blobs
    runs = [random_search(Softmax(n_epochs=3, batch_size=16, random_state=0), X, y, "learning_rate=log:1e-3:1e-1",
                          n_trials=3, n_stages=1, folds=3, random_state=7, progress=False) for _ in range(2)]
    assert [t["params"] for t in runs[0].trials] == [t["params"] for t in runs[1].trials]


def test_unknown_parameter_is_named(blobs):
    X, y = blobs
    with pytest.raises(SpecError, match=r"has no parameter\(s\) \['hidden'\]"):
        random_search(Softmax(), X, y, "hidden=int:1:3", progress=False)


@pytest.mark.slow
def test_search_on_a_dask_cluster(blobs):
    from distributed import LocalCluster

    X, y = blobs
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = random_search(Softmax(n_epochs=3, batch_size=16, random_state=0), X, y, "learning_rate=log:1e-3:1e-1",
                               n_trials=4, n_stages=1, n_jobs=2, scheduler=cluster.scheduler_address,
                               progress=False)
    assert len(result.trials) == 4 and result.best["score"] > 0.8


@pytest.mark.parametrize("classifier_seed", [0, None])
def test_the_same_seed_gives_the_same_search_for_any_n_jobs(blobs, classifier_seed):
    """Trials in the order they were drawn, the same scores (a classifier without a seed gets
    the search's), so the same best and the same fine stage around it, with 1 or 2 processes."""
    X, y = blobs
    runs = {n_jobs: random_search(Softmax(n_epochs=3, batch_size=16, random_state=classifier_seed), X, y,
                                  "learning_rate=log:1e-4:1,reg=log:1e-6:1e-1", n_trials=6, n_stages=2,
                                  n_jobs=n_jobs, random_state=3, progress=False)
            for n_jobs in (1, 2)}
    def without_time(trial):
        return {k: v for k, v in trial.items() if k != "seconds"}

    assert without_time(runs[1].best) == without_time(runs[2].best)
    assert [without_time(t) for t in runs[1].trials] == [without_time(t) for t in runs[2].trials]


# ---------------------------------------------- the same search for any n_jobs (red team)
def _without_time(trial):
    return {k: v for k, v in trial.items() if k != "seconds"}


@pytest.mark.slow
@pytest.mark.parametrize("make, space", [
    (lambda: TwoLayerNet(n_epochs=2, batch_size=16),  # no seed: the search's
     "learning_rate=log:1e-4:1e-1,hidden_sizes=choice:8|16x8,dropout=uniform:0:0.5"),
    (lambda: TwoLayerNet(n_epochs=2, batch_size=16, random_state=np.random.RandomState(5)),
     "learning_rate=log:1e-4:1e-1"),
    (lambda: LinearSVM(n_epochs=2, batch_size=16), "learning_rate=log:1e-4:1e3,reg=uniform:0:0.1"),  # some diverge
    (lambda: KNearestNeighbor(), "n_neighbors=int:1:15,metric=choice:l1|l2"),
])
@pytest.mark.parametrize("folds", [0, 3])
def test_one_two_or_three_processes_give_the_same_search(blobs, make, space, folds):
    runs = [random_search(make(), *blobs, space, n_trials=4, n_stages=2, folds=folds, n_jobs=n_jobs, random_state=1,
                          progress=False) for n_jobs in (1, 2, 3)]
    for run in runs[1:]:
        assert [_without_time(t) for t in run.trials] == [_without_time(t) for t in runs[0].trials]
        assert _without_time(run.best) == _without_time(runs[0].best)
        assert [t["stage"] for t in run.trials] == ["coarse"] * 4 + ["fine1"] * 4


def test_a_failed_trial_keeps_its_place_and_scores_none_in_json(blobs):
    result = random_search(Softmax(n_epochs=2, batch_size=16), *blobs, "learning_rate=choice:0.01|1e300", n_trials=8,
                           n_stages=1, random_state=0, progress=False)
    failed = [t for t in result.trials if t["error"]]
    assert failed and all(t["score"] == float("-inf") for t in failed)
    doc = result.to_dict()
    assert all(t["score"] is None for t in doc["trials"] if t["error"]) and doc["best"]["error"] is None
    import json

    json.dumps(doc, allow_nan=False)  # strict JSON


@pytest.mark.parametrize("text", ["lr=uniform:0:1e309", "lr=log:1e-3:1e309", "n=int:1:1e309", "n=int:1:1e20",
                                  "u=uniform:-1e308:1e308", "x=uniform:nan:1"])
def test_bounds_must_be_finite_numbers_a_finite_distance_apart(text):
    with pytest.raises(SpecError, match="expected finite bounds"):
        parse_space(text)


def test_without_the_scaler_the_trials_see_the_features_as_they_are():
    """One informative feature beside a noise feature 1,000 times larger: standardized, kNN
    finds the classes; as they are, the noise decides its neighbours."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    X = np.column_stack([y + rng.normal(scale=0.2, size=300), 1000 * rng.normal(size=300)])
    scores = {scaler: random_search(KNearestNeighbor(), X, y, "n_neighbors=int:1:5", n_trials=3, n_stages=1,
                                    scaler=scaler, progress=False).best["score"] for scaler in (True, False)}
    assert scores[True] > 0.95 and scores[False] < 0.75
