"""Scale-out on Dask: grid search through joblib's dask backend, dask-ml's out-of-core loop.

The cluster's two worker processes load the compiled kernels from the on-disk
Numba cache this process fills first (a cold worker would spend a minute or
more per dtype compiling them; see docs/cluster.md).
"""

import logging

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from skdeep import MLPClassifier

distributed = pytest.importorskip("distributed")

X, Y = make_classification(n_samples=120, n_features=6, n_informative=4, random_state=0)


def _warm_up():
    """Compile (or load) the float64 kernels here, so the workers find them in the cache."""
    MLPClassifier((2,), max_iter=1).fit(X[:20], Y[:20])


@pytest.fixture(scope="module")
def client():
    _warm_up()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def _search():
    grid = {"hidden_layer_sizes": [(3,), (6,)], "alpha": [1e-4, 1.0]}
    return GridSearchCV(MLPClassifier(max_iter=15, random_state=0), grid, cv=3)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_on_a_dask_cluster_matches_the_default_backend(client):
    local = _search().fit(X, Y)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        remote = _search().fit(X, Y)
    assert len(tasks.data) >= 12  # the 4 candidates x 3 folds ran on the workers
    assert remote.best_params_ == local.best_params_
    for key in ("mean_test_score", "split0_test_score", "split1_test_score", "split2_test_score"):
        assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert_array_equal(remote.predict_proba(X), local.predict_proba(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_incremental_partial_fit_over_dask_array_blocks(client):
    da = pytest.importorskip("dask.array")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    chunk = 30
    X_dask, y_dask = da.from_array(X, chunks=(chunk, -1)), da.from_array(Y, chunks=chunk)
    model = wrappers.Incremental(MLPClassifier((6,), random_state=0), shuffle_blocks=False, scoring="accuracy")
    with distributed.get_task_stream(client) as tasks:
        model.fit(X_dask, y_dask, classes=[0, 1])
    assert len(tasks.data) >= len(X) // chunk  # one partial_fit per block, on the workers

    by_hand = MLPClassifier((6,), random_state=0)
    for start in range(0, len(X), chunk):
        by_hand.partial_fit(X[start : start + chunk], Y[start : start + chunk], classes=[0, 1])
    for fitted, expected in zip(model.estimator_.coefs_ + model.estimator_.intercepts_, by_hand.coefs_ + by_hand.intercepts_):
        assert_array_equal(fitted, expected)
    assert_array_equal(model.predict(X_dask).compute(), by_hand.predict(X))
    assert model.score(X_dask, y_dask) == pytest.approx(by_hand.score(X, Y))
