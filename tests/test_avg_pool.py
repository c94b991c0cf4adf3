"""Average pooling, 1-D to 3-D: fast kernels against the NumPy reference, gradients by the
adjoint identity and finite differences, thread invariance, outputs and input layouts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastpool
from fastpool import reference
from cases import numeric_gradient, pool_cases, random_array

TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
CASES = {nd: pool_cases(nd, "avg") for nd in (1, 2, 3)}


def _functions(nd):
    name = f"avg_pool{nd}d"
    return (getattr(fastpool, name), getattr(fastpool, name + "_backward"),
            getattr(reference, name), getattr(reference, name + "_backward"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_forward_and_backward_match_reference(nd, dtype):
    forward, backward, ref_forward, ref_backward = _functions(nd)
    for i, case in enumerate(CASES[nd]):
        x = random_array(case.shape, dtype, seed=i)
        y = forward(x, **case.kwargs)
        expected = ref_forward(x, **case.kwargs)
        message = case.describe(forward.__name__) + f" [{np.dtype(dtype)}]"
        assert y.dtype == dtype and y.shape == expected.shape, message
        np.testing.assert_allclose(y, expected, err_msg=message, **TOLERANCE[dtype])

        g = random_array(y.shape, dtype, seed=i + 1)
        grad = backward(g, case.shape, **case.kwargs)
        expected = ref_backward(g, case.shape, **case.kwargs)
        message = case.describe(backward.__name__) + f" [{np.dtype(dtype)}]"
        assert grad.dtype == dtype and grad.shape == case.shape, message
        np.testing.assert_allclose(grad, expected, err_msg=message, **TOLERANCE[dtype])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adjoint_identity(nd):
    """<avg_pool(x), g> == <x, avg_pool_backward(g)>: backward is the transpose of forward."""
    forward, backward, _, _ = _functions(nd)
    for i, case in enumerate(CASES[nd]):
        x = random_array(case.shape, np.float64, seed=i)
        y = forward(x, **case.kwargs)
        g = random_array(y.shape, np.float64, seed=i + 1)
        lhs, rhs = np.vdot(y, g), np.vdot(x, backward(g, case.shape, **case.kwargs))
        assert abs(lhs - rhs) <= 1e-12 * np.vdot(abs(y), abs(g)), case.describe(forward.__name__)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_adjoint_identity_random_geometry(data):
    """The adjoint identity over random 2-D geometries, sizes and options."""
    kernel = data.draw(st.tuples(st.integers(1, 6), st.integers(1, 6)), label="kernel")
    stride = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4)), label="stride")
    padding = tuple(data.draw(st.integers(0, k // 2), label="padding") for k in kernel)
    shape = (2, 2) + tuple(data.draw(st.integers(max(1, k - 2 * p), 20), label="size")
                           for k, p in zip(kernel, padding))
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding,
                  ceil_mode=data.draw(st.booleans(), label="ceil_mode"),
                  count_include_pad=data.draw(st.booleans(), label="count_include_pad"),
                  divisor_override=data.draw(st.one_of(st.none(), st.integers(1, 9)),
                                             label="divisor_override"))
    x = random_array(shape, np.float64, seed=1)
    y = fastpool.avg_pool2d(x, **kwargs)
    g = random_array(y.shape, np.float64, seed=2)
    grad = fastpool.avg_pool2d_backward(g, shape, **kwargs)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, grad), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2, stride=1),
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, stride=1, divisor_override=3),
])
def test_gradient_by_finite_differences(kwargs):
    """Central differences of L(x) = <avg_pool2d(x), g> match avg_pool2d_backward(g)."""
    x = random_array((1, 2, 5, 6), np.float64, seed=3)
    g = random_array(fastpool.avg_pool2d(x, **kwargs).shape, np.float64, seed=4)
    grad = fastpool.avg_pool2d_backward(g, x.shape, **kwargs)
    numeric = numeric_gradient(lambda x: fastpool.avg_pool2d(x, **kwargs), x, g, h=1e-6)
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-8)


def test_worked_example_overlapping_windows():
    """design.md's example: 3x3 input, 2x2 window, stride 1. Each input sums the gradient / 4
    of every window that contains it; the centre lies in all four."""
    g = np.array([[[[1.0, 2.0], [4.0, 8.0]]]])
    grad = fastpool.avg_pool2d_backward(g, (1, 1, 3, 3), kernel_size=2, stride=1)[0, 0]
    (g11, g12), (g21, g22) = g[0, 0]
    expected = np.array([[g11, g11 + g12, g12],
                         [g11 + g21, g11 + g12 + g21 + g22, g12 + g22],
                         [g21, g21 + g22, g22]]) / 4
    np.testing.assert_array_equal(grad, expected)
    assert grad[1, 1] == (1 + 2 + 4 + 8) / 4


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
])
@pytest.mark.parametrize("shape", [(4, 16, 67, 45), (1, 1, 601, 517)])
def test_bit_identical_across_thread_counts(shape, kwargs):
    x = random_array(shape, np.float32, seed=5)
    one = fastpool.avg_pool2d(x, **kwargs, num_threads=1)
    g = random_array(one.shape, np.float32, seed=6)
    assert one.size >= 1 << 15  # large enough to run in parallel
    for threads in (2, 3):
        np.testing.assert_array_equal(fastpool.avg_pool2d(x, **kwargs, num_threads=threads), one)
        np.testing.assert_array_equal(
            fastpool.avg_pool2d_backward(g, shape, **kwargs, num_threads=threads),
            fastpool.avg_pool2d_backward(g, shape, **kwargs, num_threads=1))


def test_known_values_with_padding_divisors():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    # 2x2 windows, stride 2, padding 1: corners hold 1 real element, edges 2, centre 4.
    include = fastpool.avg_pool2d(x, 2, stride=2, padding=1)
    exclude = fastpool.avg_pool2d(x, 2, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(include[0, 0], [[1 / 4, 5 / 4], [11 / 4, 28 / 4]])
    np.testing.assert_array_equal(exclude[0, 0], [[1, 5 / 2], [11 / 2, 28 / 4]])
    np.testing.assert_array_equal(
        fastpool.avg_pool2d(x, 2, stride=2, padding=1, divisor_override=2)[0, 0],
        [[1 / 2, 5 / 2], [11 / 2, 28 / 2]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2), dict(kernel_size=2, stride=1), dict(kernel_size=4, stride=3),
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),  # 9, 6, 4
    dict(kernel_size=2, stride=1, divisor_override=8), dict(kernel_size=2, divisor_override=3),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)])
def test_quotients_are_the_divisions_bits_down_to_subnormals(dtype, kwargs):
    """Kernels multiply by a power of two's exact inverse where they would divide by it: the
    same rounding, which only subnormal quotients test (sums of small multiples of the least
    subnormal are exact in any order, and their quotients round)."""
    tiny = np.finfo(dtype).smallest_subnormal
    rng = np.random.default_rng(7)
    counts = rng.integers(-40, 41, (2, 3, 13, 12))
    x = (counts * tiny).astype(dtype)
    y = fastpool.avg_pool2d(x, **kwargs)
    expected = reference.avg_pool2d(x, **kwargs)
    assert (expected / tiny != reference.avg_pool2d(counts.astype(float), **kwargs)).any()
    np.testing.assert_array_equal(y, expected)
    g = (rng.integers(-40, 41, y.shape) * tiny).astype(dtype)
    for threads in (1, 2):
        np.testing.assert_array_equal(
            fastpool.avg_pool2d_backward(g, x.shape, **kwargs, num_threads=threads),
            reference.avg_pool2d_backward(g, x.shape, **kwargs))


def test_ceil_mode_window_clipped_at_the_edge():
    """ceil_mode adds a last window hanging over the input's end; with padding 0 its divisor
    counts only the in-bounds part (torch clips it to input + padding)."""
    x = np.arange(5.0).reshape(1, 1, 5)
    np.testing.assert_array_equal(fastpool.avg_pool1d(x, 2, ceil_mode=True)[0, 0],
                                  [0.5, 2.5, 4.0])
    np.testing.assert_array_equal(fastpool.avg_pool1d(x, 2)[0, 0], [0.5, 2.5])


def test_unbatched_and_empty_batches():
    x = random_array((3, 7, 6), np.float64)
    np.testing.assert_array_equal(fastpool.avg_pool2d(x, 2), fastpool.avg_pool2d(x[None], 2)[0])
    for shape, out_shape in [((0, 3, 7, 6), (0, 3, 3, 3)), ((2, 0, 7, 6), (2, 0, 3, 3))]:
        y = fastpool.avg_pool2d(np.zeros(shape, np.float32), 2)
        assert y.shape == out_shape and y.dtype == np.float32
        assert fastpool.avg_pool2d_backward(y, shape, 2).shape == shape


def test_strided_fortran_readonly_and_byteswapped_inputs():
    base = random_array((2, 3, 14, 12), np.float64, seed=7)
    expected = fastpool.avg_pool2d(base[:, :, ::2, ::2].copy(), 2, stride=1)
    readonly = base[:, :, ::2, ::2].copy()
    readonly.flags.writeable = False
    for x in (base[:, :, ::2, ::2], np.asfortranarray(base[:, :, ::2, ::2]), readonly,
              base[:, :, ::2, ::2].astype(">f8")):
        np.testing.assert_array_equal(fastpool.avg_pool2d(x, 2, stride=1), expected)
    as_list = base[0, 0, :3, :3].tolist()
    np.testing.assert_array_equal(fastpool.avg_pool2d([as_list], 2, stride=1),
                                  fastpool.avg_pool2d(base[None, 0, 0, :3, :3], 2, stride=1))


def test_out_argument_is_written_and_returned():
    x = random_array((2, 3, 8, 8), np.float32)
    out = np.empty((2, 3, 4, 4), np.float32)
    assert fastpool.avg_pool2d(x, 2, out=out) is out
    np.testing.assert_array_equal(out, fastpool.avg_pool2d(x, 2))
    grad = np.empty(x.shape, np.float32)
    assert fastpool.avg_pool2d_backward(out, x.shape, 2, out=grad) is grad
    np.testing.assert_array_equal(grad, fastpool.avg_pool2d_backward(out, x.shape, 2))


@pytest.mark.parametrize("size, kernel, stride, padding, ceil_mode, expected", [
    (5, 2, 2, 0, False, 2),
    (5, 2, 2, 0, True, 3),
    (4, 2, 2, 1, True, 3),
    (5, 3, 3, 1, True, 2),   # the ceil window would start in the right padding: dropped
    (6, 3, 3, 1, True, 3),
    (1, 1, 1, 0, False, 1),
    (7, 3, 1, 1, False, 7),
    (8, 4, 3, 2, True, 4),
    (8, 4, 3, 2, False, 3),
])
def test_output_sizes(size, kernel, stride, padding, ceil_mode, expected):
    y = fastpool.avg_pool1d(np.zeros((1, 1, size)), kernel, stride, padding, ceil_mode)
    assert y.shape[-1] == expected
