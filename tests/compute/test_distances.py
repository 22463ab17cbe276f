import numpy as np
import pytest

from compute.distances import nearest_neighbors, pairwise_distances, pairwise_distances_reference

METRICS = ["l1", "l2"]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_distances_equal_the_two_loop_reference(rng, metric, dtype):
    X, Y = rng.random((17, 9)), rng.random((23, 9))
    expected = pairwise_distances_reference(X, Y, metric)
    got = pairwise_distances(X, Y, metric, dtype=dtype, device="cpu")
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_squared_l2_is_clamped_at_zero(rng):
    X = rng.random((5, 40)).astype(np.float32) * 100
    d = pairwise_distances(X, X, "l2", squared=True, device="cpu")
    assert (d >= 0).all()
    # the matrix-product identity cancels ||x||^2 against itself: error ~ eps * ||x||^2
    scale = float((X.astype(np.float64) ** 2).sum(axis=1).max())
    np.testing.assert_allclose(np.diag(d), 0, atol=8 * np.finfo(np.float32).eps * scale)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("budget", [10_000, 2_000, 1 << 28])
@pytest.mark.parametrize("k", [1, 4, 30])
def test_tiled_knn_equals_a_full_sort(rng, metric, budget, k):
    X, Y = rng.random((41, 6)), rng.random((30, 6))
    ref = pairwise_distances_reference(X, Y, metric)
    expected_idx = np.argsort(ref, axis=1, kind="stable")[:, :k]
    dist, idx = nearest_neighbors(X, Y, k, metric, device="cpu", memory_budget=budget)
    assert dist.shape == idx.shape == (41, k) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(dist, np.take_along_axis(ref, expected_idx, axis=1), rtol=1e-5, atol=1e-5)
    assert (np.diff(dist, axis=1) >= 0).all()


def test_ties_go_to_the_lower_index():
    Y = np.array([[1.0], [0.0], [1.0], [0.0]])
    _, idx = nearest_neighbors(np.zeros((1, 1)), Y, 4, "l2", device="cpu", memory_budget=24)
    np.testing.assert_array_equal(idx, [[1, 3, 0, 2]])


@pytest.mark.parametrize(
    "X, Y, kwargs, match",
    [
        (np.zeros((2, 3)), np.zeros((4, 2)), {}, "same number of features"),
        (np.zeros(3), np.zeros((4, 3)), {}, "two 2-D arrays"),
        (np.zeros((2, 3)), np.zeros((4, 3)), {"metric": "cosine"}, "metric must be one of"),
        (np.zeros((2, 3)), np.zeros((4, 3)), {"n_neighbors": 5}, r"n_neighbors must be an integer in \[1, 4\]"),
        (np.zeros((2, 3)), np.zeros((4, 3)), {"n_neighbors": 0}, "n_neighbors must be"),
    ],
)
def test_bad_input_says_what_was_expected(X, Y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nearest_neighbors(X, Y, **{"n_neighbors": 1, **kwargs})


@pytest.mark.gpu
@pytest.mark.parametrize("metric", METRICS)
def test_gpu_knn_equals_cpu(rng, metric):
    X, Y = rng.random((300, 50)), rng.random((2000, 50))
    d_cpu, i_cpu = nearest_neighbors(X, Y, 5, metric, device="cpu")
    d_gpu, i_gpu = nearest_neighbors(X, Y, 5, metric, device="gpu", memory_budget=1 << 20)
    np.testing.assert_array_equal(i_gpu, i_cpu)
    np.testing.assert_allclose(d_gpu, d_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("k", [1, 5, 40])
@pytest.mark.parametrize("metric", METRICS)
def test_gpu_knn_with_ties_and_several_tiles_equals_cpu(rng, metric, k):
    """Integer data (many equal distances) over many column tiles; k=40 takes the sort fallback."""
    X = rng.integers(0, 3, (70, 12)).astype(np.float32)
    Y = rng.integers(0, 3, (3001, 12)).astype(np.float32)
    d_cpu, i_cpu = nearest_neighbors(X, Y, k, metric, device="cpu", memory_budget=20_000)
    d_gpu, i_gpu = nearest_neighbors(X, Y, k, metric, device="gpu", memory_budget=20_000)
    np.testing.assert_array_equal(i_gpu, i_cpu)
    np.testing.assert_allclose(d_gpu, d_cpu, rtol=1e-5, atol=1e-5)


def _poison_pool(cp, shape, dtype):
    """Free a NaN-filled block of this size, so that the memory pool hands it to the next
    allocation of the same size: an output element the kernel fails to write stays NaN."""
    cp.full(shape, np.nan, dtype=dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (131, 257, 37), (128, 256, 16), (5, 300, 784), (300, 7, 3)])
def test_gpu_l1_kernel_equals_the_reference_everywhere(rng, shape, dtype):
    from compute._l1_gpu import l1_distances_gpu
    from compute.backend import get_array_module, to_numpy

    cp = get_array_module("gpu")
    n_x, n_y, n_features = shape
    X, Y = rng.standard_normal((n_x, n_features)), rng.standard_normal((n_y, n_features))
    _poison_pool(cp, (n_x, n_y), dtype)
    got = to_numpy(l1_distances_gpu(cp.asarray(X, dtype=dtype), cp.asarray(Y, dtype=dtype)))
    expected = pairwise_distances_reference(X.astype(dtype), Y.astype(dtype), "l1")
    assert got.dtype == dtype and np.isfinite(got).all()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.linalg.norm(got - expected) <= tol * np.linalg.norm(expected)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,k", [((7, 5), 5), ((33, 300), 1), ((33, 300), 5), ((33, 300), 32),
                                     ((4, 70001), 5), ((2, 1), 1)])
@pytest.mark.parametrize("with_add", [False, True])
def test_gpu_selection_equals_a_stable_sort(rng, shape, k, dtype, with_add):
    from compute._topk_gpu import smallest_k_gpu
    from compute.backend import get_array_module, to_numpy

    cp = get_array_module("gpu")
    D = rng.integers(0, 20, shape).astype(dtype)  # many ties: they must go to the lower column
    add = rng.integers(0, 4, shape[1]).astype(dtype) if with_add else None
    _poison_pool(cp, (shape[0], k), dtype)
    D_gpu = cp.asarray(D)
    vals, idx = smallest_k_gpu(D_gpu, k, None if add is None else cp.asarray(add))
    full = D + add if with_add else D
    order = np.argsort(full, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(to_numpy(idx), order)
    np.testing.assert_array_equal(to_numpy(vals), np.take_along_axis(full, order, axis=1))
    np.testing.assert_array_equal(to_numpy(D_gpu), D)  # the added vector is not written back


@pytest.mark.gpu
def test_gpu_default_budget_is_larger_than_the_cpu_one_and_fits_the_device():
    from compute.backend import get_array_module
    from compute.distances import DEFAULT_MEMORY_BUDGET, GPU_MEMORY_BUDGET, default_memory_budget

    free, _ = get_array_module("gpu").cuda.runtime.memGetInfo()
    assert default_memory_budget("cpu") == DEFAULT_MEMORY_BUDGET
    assert default_memory_budget("gpu") == min(GPU_MEMORY_BUDGET, free // 4)
