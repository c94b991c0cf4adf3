"""Adaptive average and max pooling, 1-D to 3-D: against the reference, gradients, global
pooling, errors."""

import numpy as np
import pytest

import fastpool
from fastpool import _arguments as args, reference
from cases import adaptive_cases, numeric_gradient, random_array

CASES = {nd: adaptive_cases(nd) for nd in (1, 2, 3)}
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _pair(module, kind, nd):
    name = f"adaptive_{kind}_pool{nd}d"
    return getattr(module, name), getattr(module, name + "_backward")


def _ties_and_nan(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, shape).astype(dtype)
    if seed % 4 == 0 and x.size:
        x.reshape(-1)[rng.integers(x.size, size=2)] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_avg_matches_reference_and_is_adjoint(nd, dtype):
    (forward, backward), (ref_forward, ref_backward) = (_pair(m, "avg", nd)
                                                        for m in (fastpool, reference))
    for i, case in enumerate(CASES[nd]):
        message = case.describe(forward.__name__) + f" [{np.dtype(dtype)}]"
        x = random_array(case.shape, dtype, seed=i)
        y = forward(x, **case.kwargs)
        np.testing.assert_allclose(y, ref_forward(x, **case.kwargs), err_msg=message,
                                   **TOLERANCE[dtype])
        g = random_array(y.shape, dtype, seed=i + 1)
        grad = backward(g, case.shape)
        assert grad.shape == case.shape and grad.dtype == dtype, message
        np.testing.assert_allclose(grad, ref_backward(g, case.shape), err_msg=message,
                                   **TOLERANCE[dtype])
        if dtype == np.float64:
            assert abs(np.vdot(y, g) - np.vdot(x, grad)) <= 1e-12 * np.vdot(abs(y), abs(g))


@pytest.mark.parametrize("return_indices", [True, "compact"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_max_matches_reference(nd, return_indices):
    (forward, backward), (ref_forward, ref_backward) = (_pair(m, "max", nd)
                                                        for m in (fastpool, reference))
    for i, case in enumerate(CASES[nd]):
        message = case.describe(forward.__name__) + f" [{return_indices!r}]"
        x = _ties_and_nan(case.shape, np.float32, seed=i)
        y, indices = forward(x, **case.kwargs, return_indices=return_indices)
        expected_y, expected_indices = ref_forward(x, **case.kwargs,
                                                   return_indices=return_indices)
        np.testing.assert_array_equal(y, expected_y, err_msg=message)
        np.testing.assert_array_equal(indices, expected_indices, err_msg=message)
        g = random_array(y.shape, np.float32, seed=i + 1)
        np.testing.assert_array_equal(backward(g, indices, case.shape),
                                      ref_backward(g, indices, case.shape), err_msg=message)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("spatial, output_size", [
    ((14, 14), 7), ((13, 13), 6), ((9, 100), (4, 7)), ((7, 50), (3, 7)), ((5, 23), (2, 5)),
    ((6, 64), (6, 6)), ((3, 31), (2, 4)), ((4, 12), (4, 11)), ((4, 9), (4, 7)),
])
def test_adaptive_windows_in_regular_runs(spatial, output_size, channels_last):
    """Output widths whose windows all share a size and a stride, or only a run of them do
    (100 -> 7: sizes 15, 15, 15, 16, 15, 15, 15; at stride 1 a run counts only if it holds them
    all: 9 -> 7), which the kernels fold as fixed windows and the others one by one; forward
    and backward against the reference, in C order and channels-last."""
    out = args.adaptive_output_size(output_size, spatial)
    low, high, stride = args.adaptive_plan(spatial, out).interior[:3]
    expected_run = {100: (0, 3, 14), 14: (0, 7, 2), 12: (0, 11, 1), 9: (0, 0, 1)}.get(spatial[1])
    assert expected_run is None or (low, high, stride) == expected_run
    x = np.round(random_array((2, 3) + spatial, np.float32, seed=8), 1)  # (ties)
    if channels_last:
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    y, indices = fastpool.adaptive_max_pool2d(x, output_size, return_indices=True)
    want_y, want_indices = reference.adaptive_max_pool2d(x, output_size, return_indices=True)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(indices, want_indices)
    g = random_array(y.shape, np.float32, seed=9)
    np.testing.assert_allclose(
        fastpool.adaptive_max_pool2d_backward(g, indices, x.shape),
        reference.adaptive_max_pool2d_backward(g, want_indices, x.shape), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fastpool.adaptive_avg_pool2d(x, output_size),
                               reference.adaptive_avg_pool2d(x, output_size),
                               **TOLERANCE[np.float32])
    np.testing.assert_allclose(fastpool.adaptive_avg_pool2d_backward(g, x.shape),
                               reference.adaptive_avg_pool2d_backward(g, x.shape),
                               **TOLERANCE[np.float32])


def test_adaptive_avg_gradient_by_finite_differences():
    x = random_array((1, 2, 5, 7), np.float64, seed=3)
    g = random_array((1, 2, 3, 4), np.float64, seed=4)
    grad = fastpool.adaptive_avg_pool2d_backward(g, x.shape)
    numeric = numeric_gradient(lambda x: fastpool.adaptive_avg_pool2d(x, (3, 4)), x, g, 1e-6)
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-8)


def test_overlapping_adaptive_windows():
    """5 -> 3 gives windows [0, 2), [1, 4), [3, 5): inputs 1 and 3 lie in two windows each."""
    x = np.arange(5.0).reshape(1, 1, 5)
    np.testing.assert_array_equal(fastpool.adaptive_avg_pool1d(x, 3)[0, 0], [0.5, 2.0, 3.5])
    grad = fastpool.adaptive_avg_pool1d_backward(np.ones((1, 1, 3)), x.shape)
    np.testing.assert_allclose(grad[0, 0], [1 / 2, 1 / 2 + 1 / 3, 1 / 3, 1 / 3 + 1 / 2, 1 / 2])


@pytest.mark.parametrize("shape", [(4, 64, 7, 7), (1, 3, 301, 203), (2, 5, 1, 1),
                                   (8, 700, 7, 7)])  # (the gradient's tasks cut planes)
def test_global_pooling(shape):
    x = random_array(shape, np.float64, seed=5)
    np.testing.assert_allclose(fastpool.adaptive_avg_pool2d(x, 1)[..., 0, 0],
                               x.mean(axis=(2, 3)), rtol=1e-12)
    g = random_array(shape[:2] + (1, 1), np.float64, seed=6)
    np.testing.assert_array_equal(fastpool.adaptive_avg_pool2d_backward(g, shape),
                                  np.broadcast_to(g / (shape[2] * shape[3]), shape))
    assert fastpool.adaptive_avg_pool2d_backward(g[:0], (0,) + shape[1:]).shape == (0,) + shape[1:]
    y, indices = fastpool.adaptive_max_pool2d(x, 1, return_indices=True)
    np.testing.assert_array_equal(y[..., 0, 0], x.max(axis=(2, 3)))
    np.testing.assert_array_equal(indices[..., 0, 0],
                                  x.reshape(shape[:2] + (-1,)).argmax(axis=2))


def test_none_keeps_the_input_size():
    x = random_array((2, 3, 6, 5), np.float32)
    assert fastpool.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 6, 2)
    assert fastpool.adaptive_max_pool2d(x, (4, None)).shape == (2, 3, 4, 5)


@pytest.mark.parametrize("output_size, error, fragment", [
    (0, ValueError, "output_size must be >= 1, got 0"),
    ((2, -1), ValueError, "output_size must be >= 1, got (2, -1)"),
    ((2, 2, 2), ValueError, "output_size must be an int or a sequence of 2 ints, got (2, 2, 2)"),
    (2.5, TypeError, "output_size must be an int or a sequence of 2 ints, got 2.5"),
    ("2", TypeError, "output_size"),
])
def test_bad_output_size(output_size, error, fragment):
    x = np.zeros((1, 1, 4, 4))
    for function in (fastpool.adaptive_avg_pool2d, fastpool.adaptive_max_pool2d):
        with pytest.raises(error) as raised:
            function(x, output_size)
        assert fragment in str(raised.value)


def test_adaptive_backward_checks_shapes_and_indices():
    g = np.zeros((1, 2, 3, 3))
    with pytest.raises(ValueError, match=r"grad_output has shape \(1, 2, 3, 3\), but"):
        fastpool.adaptive_avg_pool2d_backward(g, (1, 3, 6, 6))
    _, indices = fastpool.adaptive_max_pool2d(np.zeros((1, 2, 6, 6)), 3, return_indices=True)
    with pytest.raises(ValueError, match="does not name an element of its pooling window"):
        fastpool.adaptive_max_pool2d_backward(g, indices[:, :, ::-1].copy(), (1, 2, 6, 6))


def test_global_max_rules_across_lanes_and_chunks():
    """40,000-element planes: several chunks of the global kernel, eight lanes each."""
    x = np.zeros((2, 3, 200, 200))
    x[0, 0, 150, 7] = x[0, 0, 3, 9] = x[0, 0, 3, 10] = 5.0  # a tie: the first one wins
    x[0, 1, 10, 10] = x[0, 1, 190, 1] = x[0, 1, 100, 3] = np.nan  # the last NaN is indexed
    x[0, 1, 0, 0] = np.inf
    x[0, 2] = -np.inf  # all -inf: the first element
    x[1, 1, 199, 199] = 1.0
    y, indices = fastpool.adaptive_max_pool2d(x, 1, return_indices=True)
    expected_y, expected_indices = reference.adaptive_max_pool2d(x, 1, return_indices=True)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(indices[:, :, 0, 0], [[3 * 200 + 9, 190 * 200 + 1, 0],
                                                         [0, 199 * 200 + 199, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint8, np.int64])
def test_global_max_takes_the_first_maximum_or_the_last_nan_on_every_plane_size(dtype):
    """Planes shorter than the kernel's eight lanes, with a remainder, and of several chunks;
    ties, signed zeros (the first zero's sign), NaN with distinct payloads (the last one's),
    a NaN before larger numbers, -inf or the type's least value everywhere."""
    rng = np.random.default_rng(3)
    floats = np.dtype(dtype).kind == "f"
    for size in list(range(1, 27)) + [49, 67, 1000, 40000]:
        choices = [-0.0, 0.0, 1.5, -2.0, 3.0] if floats else [0, 1, 3, 7]
        x = rng.choice(np.array(choices, dtype), (4, 6, size))
        x[0, 1] = -np.inf if floats else np.iinfo(dtype).min
        if floats:
            bits = np.uint32 if dtype == np.float32 else np.uint64
            nan = np.array(np.nan, dtype).view(bits)
            for p, plane in enumerate(x.reshape(-1, size)[2:]):  # NaN in most planes
                at = rng.choice(size, min(size, 1 + p % 3), replace=False)
                plane[at] = (np.arange(1, len(at) + 1, dtype=bits) | nan).view(dtype)
            x[0, 0, 0] = np.nan  # and then greater numbers
            x[0, 0, 1:] = 5.0
        want, want_indices = reference.adaptive_max_pool1d(x, 1, return_indices=True)
        for threads in (1, 2):
            y, indices = fastpool.adaptive_max_pool1d(x, 1, return_indices=True,
                                                      num_threads=threads)
            np.testing.assert_array_equal(y.view(np.uint8), want.view(np.uint8), err_msg=size)
            np.testing.assert_array_equal(indices, want_indices, err_msg=size)
            np.testing.assert_array_equal(fastpool.adaptive_max_pool1d(x, 1).view(np.uint8),
                                          want.view(np.uint8))
        if size <= 256:
            _, compact = fastpool.adaptive_max_pool1d(x, 1, return_indices="compact")
            np.testing.assert_array_equal(compact, want_indices)
        # one maximum per plane, at each position that starts or ends a lane or a block the
        # kernel's search compares at once (8, 64) or a chunk (16384)
        at = np.unique(np.clip([0, 1, 7, 8, 9, 63, 64, 65, 127, 128, 16383, 16384, size - 1],
                               0, size - 1))
        x = np.stack([rng.permutation(size) for _ in at]).astype(dtype) % 100
        x[np.arange(len(at)), at] = 100
        _, indices = fastpool.adaptive_max_pool1d(x[None], 1, return_indices=True)
        np.testing.assert_array_equal(indices.reshape(-1), at)


@pytest.mark.parametrize("shape", [(1, 3, 333, 517), (64, 8, 40, 40)])
def test_global_pooling_bit_identical_across_thread_counts(shape):
    x = random_array(shape, np.float32, seed=6)
    for function in (fastpool.adaptive_avg_pool2d, fastpool.adaptive_max_pool2d):
        one = function(x, 1, num_threads=1)
        for threads in (2, 3):
            np.testing.assert_array_equal(function(x, 1, num_threads=threads), one)
