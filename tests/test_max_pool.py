"""Max pooling and unpooling, 1-D to 3-D: values, indices and gradients against the NumPy
reference (ties, NaN and infinities included), gradient checks, index validation, threads."""

import re

import numpy as np
import pytest

import fastpool
from fastpool import reference
from cases import numeric_gradient, pool_cases, random_array

CASES = {nd: pool_cases(nd, "max") for nd in (1, 2, 3)}


def _data(shape, dtype, seed):
    """Inputs that exercise the tie and NaN rules: every third case has few distinct values
    (ties), every fifth holds NaN and infinities."""
    rng = np.random.default_rng(seed)
    if seed % 3 == 0:
        x = rng.integers(0, 3, shape).astype(dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    if seed % 5 == 0 and x.size:
        flat = x.reshape(-1)
        for value in (np.nan, np.inf, -np.inf, np.nan):
            flat[rng.integers(flat.size)] = value
    return x


def _functions(nd):
    return tuple(getattr(module, f"max_pool{nd}d{suffix}")
                 for module in (fastpool, reference) for suffix in ("", "_backward"))


@pytest.mark.parametrize("return_indices", [True, "compact"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_values_indices_and_gradients_match_reference(nd, dtype, return_indices):
    forward, backward, ref_forward, ref_backward = _functions(nd)
    for i, case in enumerate(CASES[nd]):
        message = case.describe(forward.__name__) + f" [{np.dtype(dtype)}, {return_indices!r}]"
        x = _data(case.shape, dtype, seed=i)
        y, indices = forward(x, **case.kwargs, return_indices=return_indices)
        expected_y, expected_indices = ref_forward(x, **case.kwargs,
                                                   return_indices=return_indices)
        assert y.dtype == dtype and indices.dtype == expected_indices.dtype, message
        np.testing.assert_array_equal(y, expected_y, err_msg=message)
        np.testing.assert_array_equal(indices, expected_indices, err_msg=message)
        np.testing.assert_array_equal(forward(x, **case.kwargs), y, err_msg=message)

        g = random_array(y.shape, dtype, seed=i + 1)
        grad = backward(g, indices, case.shape, **case.kwargs)
        assert grad.dtype == dtype and grad.shape == case.shape, message
        # Same additions in the same (output) order as the reference's scatter: same bits.
        np.testing.assert_array_equal(grad, ref_backward(g, indices, case.shape, **case.kwargs),
                                      err_msg=message)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_compact_and_int32_indices_give_the_int64_gradient(nd):
    forward, backward, _, _ = _functions(nd)
    for i, case in enumerate(CASES[nd]):
        x = _data(case.shape, np.float64, seed=i)
        y, flat = forward(x, **case.kwargs, return_indices=True)
        _, compact = forward(x, **case.kwargs, return_indices="compact")
        g = random_array(y.shape, np.float64, seed=i + 1)
        expected = backward(g, flat, case.shape, **case.kwargs)
        for indices in (compact, flat.astype(np.int32)):
            np.testing.assert_array_equal(backward(g, indices, case.shape, **case.kwargs),
                                          expected, err_msg=case.describe(backward.__name__))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adjoint_identity_for_fixed_winners(nd):
    """With the winners fixed, max pooling is the linear map x -> x[indices] and backward is its
    transpose: <y, g> == <x, backward(g)>."""
    forward, backward, _, _ = _functions(nd)
    for i, case in enumerate(CASES[nd]):
        x = random_array(case.shape, np.float64, seed=i)
        y, indices = forward(x, **case.kwargs, return_indices=True)
        g = random_array(y.shape, np.float64, seed=i + 1)
        g[indices < 0] = 0  # windows with no element (dilation on tiny inputs) give -inf
        y = np.where(indices < 0, 0, y)
        lhs, rhs = np.vdot(y, g), np.vdot(x, backward(g, indices, case.shape, **case.kwargs))
        assert abs(lhs - rhs) <= 1e-12 * np.vdot(abs(y), abs(g)), case.describe()


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2, stride=1),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=1, padding=(1, 0), dilation=(1, 2), ceil_mode=True),
    dict(kernel_size=3, stride=2, ceil_mode=True),
])
def test_gradient_by_finite_differences(kwargs):
    """Distinct values, so no winner changes within the step: central differences are exact
    up to rounding."""
    x = np.random.default_rng(8).permutation(60).reshape(1, 2, 5, 6).astype(np.float64)
    y, indices = fastpool.max_pool2d(x, **kwargs, return_indices=True)
    g = random_array(y.shape, np.float64, seed=9)
    grad = fastpool.max_pool2d_backward(g, indices, x.shape, **kwargs)
    numeric = numeric_gradient(lambda x: fastpool.max_pool2d(x, **kwargs), x, g, h=1e-3)
    np.testing.assert_allclose(grad, numeric, rtol=1e-9, atol=1e-9)


def test_an_input_that_wins_overlapping_windows_gets_all_their_gradients():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0  # the centre lies in all four 2x2 windows, and wins each
    y, indices = fastpool.max_pool2d(x, 2, stride=1, return_indices=True)
    assert (y == 5).all() and (indices == 4).all()
    g = np.array([[[[1.0, 2.0], [4.0, 8.0]]]])
    grad = fastpool.max_pool2d_backward(g, indices, x.shape, 2, stride=1)
    expected = np.zeros((3, 3))
    expected[1, 1] = 15.0
    np.testing.assert_array_equal(grad[0, 0], expected)


def test_ties_nan_and_infinity_rules():
    inf, nan = np.inf, np.nan
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],     # tie: the first 3 (row-major) wins
                    [3.0, 2.0, 0.0, 3.0],
                    [nan, 1.0, -inf, -inf],   # NaN wins; the last NaN gives the index
                    [5.0, nan, -inf, -inf]]]])  # all -inf: -inf, first element's index
    y, indices = fastpool.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(y[0, 0], [[3.0, 3.0], [nan, -inf]])
    np.testing.assert_array_equal(indices[0, 0], [[1, 2], [13, 10]])
    ties = np.full((1, 1, 2, 2), 7.0)
    assert fastpool.max_pool2d(ties, 2, return_indices=True)[1].item() == 0



@pytest.mark.parametrize("dtype, bits", [(np.float32, np.uint32), (np.float64, np.uint64)])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_values_keep_the_winners_bits(nd, dtype, bits, channels_last):
    """Without indices, the kernels take several taps per pass and skip NaN there; the result
    must still be the winner's exact bits: the last NaN's payload, -0.0 before a tying 0.0.
    Every other case has few NaNs, so that rows and planes with and without NaN (which
    kernels that copy their input tell apart) meet in one call."""
    rng = np.random.default_rng(7)
    for i, case in enumerate(CASES[nd]):
        x = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0], dtype), case.shape)
        flat = x.reshape(-1)
        nans = rng.choice(flat.size, size=min(flat.size, 1 + flat.size // (7 if i % 2 else 97)),
                          replace=False)
        # quiet NaNs with distinct payloads, some negative
        payloads = np.arange(1, len(nans) + 1, dtype=bits) | np.array(np.nan, dtype).view(bits)
        payloads[::3] |= np.array(-0.0, dtype).view(bits)
        flat[nans] = payloads.view(dtype)
        if channels_last and len(case.shape) == nd + 2:
            x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
        y = getattr(fastpool, f"max_pool{nd}d")(x, **case.kwargs)
        expected = getattr(reference, f"max_pool{nd}d")(x, **case.kwargs)
        np.testing.assert_array_equal(y.view(bits), expected.view(bits),
                                      err_msg=case.describe(f"max_pool{nd}d") + f" case {i}")

def test_padding_never_wins():
    x = np.full((1, 1, 2, 2), -5.0)
    y, indices = fastpool.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), -5.0))
    np.testing.assert_array_equal(indices[0, 0], [[0, 0], [0, 0]])


def test_window_without_elements():
    """kernel 2, dilation 3, padding 2 on a length-1 input: the taps are at -2 and 1, both
    outside; the output is -inf, the flat index -1, and the gradient goes nowhere."""
    x = np.array([[[4.0]]])
    y, indices = fastpool.max_pool1d(x, 2, stride=2, padding=2, dilation=3, return_indices=True)
    assert y.item() == -np.inf and indices.item() == -1
    grad = fastpool.max_pool1d_backward(np.ones_like(y), indices, x.shape, 2, 2, 2, 3)
    assert grad.item() == 0.0


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=1, padding=1),
                                    dict(kernel_size=3, stride=2, dilation=2, ceil_mode=True)])
@pytest.mark.parametrize("shape", [(4, 16, 67, 45), (1, 1, 601, 517)])
def test_bit_identical_across_thread_counts(shape, kwargs):
    x = _data(shape, np.float32, seed=0)  # ties and NaN included
    y, indices = fastpool.max_pool2d(x, **kwargs, return_indices=True, num_threads=1)
    g = random_array(y.shape, np.float32, seed=1)
    grad = fastpool.max_pool2d_backward(g, indices, shape, **kwargs, num_threads=1)
    assert y.size >= 1 << 15
    for threads in (2, 3):
        y2, indices2 = fastpool.max_pool2d(x, **kwargs, return_indices=True, num_threads=threads)
        np.testing.assert_array_equal(y2, y)
        np.testing.assert_array_equal(indices2, indices)
        np.testing.assert_array_equal(
            fastpool.max_pool2d_backward(g, indices, shape, **kwargs, num_threads=threads), grad)


# --- index validation ---------------------------------------------------------------------

X = np.arange(64.0).reshape(1, 1, 8, 8)
Y, FLAT = fastpool.max_pool2d(X, 2, return_indices=True)
_, COMPACT = fastpool.max_pool2d(X, 2, return_indices="compact")


@pytest.mark.parametrize("indices, error, fragment", [
    (np.where(np.arange(16).reshape(FLAT.shape) == 5, 0, FLAT), ValueError,
     "indices[0, 0, 1, 1] = 0 does not name an element of its pooling window"),
    (FLAT - 100, ValueError, "indices[0, 0, 0, 0] = -91"),
    (FLAT + 1000, ValueError, "= 1009 does not name"),
    (np.minimum(COMPACT + 4, 255).astype(np.uint8), ValueError, "indices[0, 0, 0, 0] = 7"),
    (FLAT.astype(np.float64), TypeError, "indices has dtype float64"),
    (FLAT.astype(np.uint16), TypeError, "supported dtypes are int32, int64, uint8"),
    (FLAT[..., :1], ValueError, "indices has shape (1, 1, 4, 1), expected (1, 1, 4, 4)"),
    (FLAT.tolist(), TypeError, "indices must be a numpy.ndarray, got list"),
])
def test_invalid_indices_are_rejected_before_writing(indices, error, fragment):
    out = np.full(X.shape, 7.0)
    with pytest.raises(error) as raised:
        fastpool.max_pool2d_backward(np.ones_like(Y), indices, X.shape, 2, out=out)
    assert fragment in str(raised.value)
    assert (out == 7.0).all()
    # Without out=, the check runs inside the scatter; the error is the same.
    with pytest.raises(error, match=re.escape(fragment)):
        fastpool.max_pool2d_backward(np.ones_like(Y), indices, X.shape, 2)


@pytest.mark.parametrize("shift", [2**32, -2**32, 2**31, 2**31 - 1, 3, -3, 11 * 3, -11 * 3])
@pytest.mark.parametrize("where", [(1, 2, 2, 2), (0, 0, 0, 0), (1, 1, 3, 4)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=2, padding=1)])  # overlapping or not
@pytest.mark.parametrize("into_out", [False, True])
def test_an_index_off_its_window_is_found_wherever_it_points(shift, where, channels_last,
                                                             kwargs, into_out):
    """Interior windows are checked in 32-bit lanes: an index whose low 32 bits name a tap
    (shifted by 2**32), or that lands in a neighbouring window, must still be refused, by the
    scatter's check (a new result) and by the check before it (out=: runs of rows alike in
    their windows at once)."""
    x = random_array((2, 3, 9, 11), np.float64, seed=3)
    if channels_last:
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    y, indices = fastpool.max_pool2d(x, **kwargs, return_indices=True)
    fastpool.max_pool2d_backward(np.ones_like(y), indices, x.shape, **kwargs)  # valid
    indices[where] += shift
    out = np.full(x.shape, 7.0) if into_out else None
    with pytest.raises(ValueError, match=r"indices\[%d, %d, %d, %d\]" % where):
        fastpool.max_pool2d_backward(np.ones_like(y), indices, x.shape, **kwargs, out=out)
    assert out is None or (out == 7.0).all()


@pytest.mark.parametrize("name, shape, kwargs, beyond", [
    ("max_pool1d", (2, 3, 17), dict(kernel_size=3, stride=2), 3),                # 1 tap row
    ("max_pool2d", (2, 3, 13, 11), dict(kernel_size=(4, 3), stride=1, padding=1), 4 * 11),
    ("max_pool3d", (1, 2, 6, 5, 9), dict(kernel_size=(2, 1, 2), stride=2), 2 * 5 * 9),
    ("max_pool3d", (1, 2, 6, 5, 9), dict(kernel_size=2, stride=(1, 2, 2)), 2 * 5 * 9),
])
@pytest.mark.parametrize("shift", [0, -1, 2**32])
def test_an_index_past_its_windows_rows_is_found(name, shape, kwargs, beyond, shift):
    """Windows of 1 to 4 tap rows (one loop of 32-bit lanes each) and of depth and height
    (the general check): an index naming the element just past the window's last tap row
    (``beyond`` its first tap), or the one before its first tap, or a tap moved by 2**32."""
    x = random_array(shape, np.float64, seed=5)
    y, indices = getattr(fastpool, name)(x, **kwargs, return_indices=True)
    backward = getattr(fastpool, name + "_backward")
    backward(np.ones_like(y), indices, x.shape, **kwargs, out=np.empty_like(x))  # valid
    where = tuple(n // 2 for n in indices.shape)  # an interior window
    nd = len(shape) - 2
    stride = np.broadcast_to(kwargs.get("stride"), (nd,))
    padding = np.broadcast_to(kwargs.get("padding", 0), (nd,))
    first = np.ravel_multi_index(tuple(np.array(where[2:]) * stride - padding), shape[2:])
    indices[where] = first + (beyond if shift == 0 else shift)
    message = re.escape(f"indices{list(where)}")
    out = np.full(x.shape, 7.0)
    with pytest.raises(ValueError, match=message):
        backward(np.ones_like(y), indices, x.shape, **kwargs, out=out)
    assert (out == 7.0).all()
    with pytest.raises(ValueError, match=message):
        backward(np.ones_like(y), indices, x.shape, **kwargs)


def test_compact_indices_need_small_windows():
    with pytest.raises(ValueError, match=r"at most 256 elements; these windows have up to 272"):
        fastpool.max_pool2d(np.zeros((1, 1, 20, 20)), (17, 16), return_indices="compact")
    with pytest.raises(ValueError, match="return_indices must be False, True or 'compact'"):
        fastpool.max_pool2d(X, 2, return_indices="flat")


# --- unpooling ----------------------------------------------------------------------------

@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unpool_matches_reference(nd):
    forward = getattr(fastpool, f"max_pool{nd}d")
    unpool, ref_unpool = (getattr(m, f"max_unpool{nd}d") for m in (fastpool, reference))
    checked = 0
    for i, case in enumerate(CASES[nd]):
        kwargs = {k: case.kwargs[k] for k in ("kernel_size", "stride", "padding")}
        x = _data(case.shape, np.float64, seed=i)
        y, indices = forward(x, **case.kwargs, return_indices=True)
        if (indices < 0).any():
            continue  # windows without elements have no position to unpool to
        stride = np.broadcast_to(kwargs["stride"] or kwargs["kernel_size"], (nd,))
        default = [(n - 1) * s + k - 2 * p for n, s, k, p in zip(
            y.shape[y.ndim - nd:], stride, np.broadcast_to(kwargs["kernel_size"], (nd,)),
            np.broadcast_to(kwargs["padding"], (nd,)))]
        if min(default) >= 1 and indices.max(initial=0) < np.prod(default):
            size = None   # torch's default size holds every winner
        else:
            size = case.shape[len(case.shape) - nd:]
            if any(not d - s < n < d + s for n, d, s in zip(size, default, stride)):
                continue  # the input size is not an allowed output_size for these parameters
        result = unpool(y, indices, **kwargs, output_size=size)
        np.testing.assert_array_equal(result, ref_unpool(y, indices, **kwargs, output_size=size),
                                      err_msg=case.describe(unpool.__name__))
        assert result.dtype == y.dtype
        checked += 1
    assert checked > len(CASES[nd]) // 3


def test_unpool_puts_maxima_back_and_repeated_indices_keep_the_later_value():
    x = np.array([[[[1.0, 9.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]]])
    y, indices = fastpool.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(indices[0, 0], [[1, 1], [7, 8]])
    restored = fastpool.max_unpool2d(y, indices, 2, stride=1)
    np.testing.assert_array_equal(restored[0, 0], [[0, 9, 0], [0, 0, 0], [0, 7, 8]])
    values = np.array([[[1.0, 2.0, 3.0]]])
    repeated = np.array([[[0, 1, 0]]])
    np.testing.assert_array_equal(fastpool.max_unpool1d(values, repeated, 2)[0, 0],
                                  [3.0, 2.0, 0.0, 0.0, 0.0, 0.0])


def test_unpool_output_size_rules():
    y, indices = fastpool.max_pool2d(np.random.default_rng(0).random((1, 2, 9, 9)), 2,
                                     return_indices=True)
    # The default size, 8x8, is not the 9x9 plane the flat indices count in: torch raises too.
    with pytest.raises(ValueError, match="outside the output plane of 64 elements"):
        fastpool.max_unpool2d(y, indices, 2)
    assert fastpool.max_unpool2d(y, indices, 2, output_size=(9, 9)).shape == (1, 2, 9, 9)
    assert fastpool.max_unpool2d(y, indices, 2, output_size=(1, 2, 9, 9)).shape == (1, 2, 9, 9)
    for bad in [(10, 9), (6, 8)]:
        with pytest.raises(ValueError, match=r"must lie strictly between \(6, 6\) and \(10, 10\)"):
            fastpool.max_unpool2d(y, indices, 2, output_size=bad)
    with pytest.raises(ValueError, match="outside the output plane of 49 elements"):
        fastpool.max_unpool2d(y, indices, 2, stride=2, output_size=(7, 7))
    with pytest.raises(TypeError, match="indices has dtype uint8"):
        fastpool.max_unpool2d(y, indices.astype(np.uint8), 2)
    out = np.full((1, 2, 9, 9), 7.0)
    with pytest.raises(ValueError, match=r"indices\[0, 0, 0, 0\] = -1 is outside"):
        fastpool.max_unpool2d(y, np.where(indices == indices.flat[0], -1, indices), 2,
                              output_size=(9, 9), out=out)
    assert (out == 7.0).all()


def test_index_outside_its_window_along_depth_is_rejected():
    """D = 3, depth kernel 1, depth stride 3: one output depth whose only tap is depth 0; an
    index naming depth 2 (the same (h, w)) is not in the window."""
    x = np.zeros((1, 1, 3, 2, 2))
    y, indices = fastpool.max_pool3d(x, (1, 2, 2), stride=(3, 2, 2), return_indices=True)
    assert indices.item() == 0
    with pytest.raises(ValueError, match=r"indices\[0, 0, 0, 0, 0\] = 8 does not name"):
        fastpool.max_pool3d_backward(np.ones_like(y), indices + 8, x.shape, (1, 2, 2),
                                     stride=(3, 2, 2))
