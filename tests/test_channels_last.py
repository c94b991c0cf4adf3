"""Channels-last arrays (memory (N, spatial..., C), axes (N, C, spatial...)) are pooled without
a layout copy, give the same bits as the C-contiguous call, and keep their layout."""

import tracemalloc

import numpy as np
import pytest

import fastpool
from cases import random_array, to_channels_last


def is_channels_last(a, nd):
    axis = a.ndim - nd - 1
    return not a.flags.c_contiguous and np.moveaxis(a, axis, -1).flags.c_contiguous


CALLS = [  # (nd, forward name, forward kwargs, backward needs indices)
    (2, "avg_pool", dict(kernel_size=3, stride=1, padding=1, count_include_pad=False), False),
    (2, "avg_pool", dict(kernel_size=(2, 3), stride=(2, 1), ceil_mode=True), False),
    (2, "max_pool", dict(kernel_size=3, stride=2, padding=1), True),
    (2, "max_pool", dict(kernel_size=2, stride=1, dilation=2, ceil_mode=True), True),
    (2, "adaptive_avg_pool", dict(output_size=(3, 5)), False),
    (2, "adaptive_max_pool", dict(output_size=(4, 2)), True),
    (1, "avg_pool", dict(kernel_size=3, stride=2, padding=1), False),
    (1, "max_pool", dict(kernel_size=3, stride=1), True),
    (3, "avg_pool", dict(kernel_size=2, stride=1), False),
    (3, "max_pool", dict(kernel_size=(1, 3, 2), stride=2, padding=(0, 1, 1)), True),
    (3, "adaptive_max_pool", dict(output_size=2), True),
]


def _backward(nd, name, kwargs, g, indices, shape):
    backward = getattr(fastpool, f"{name}{nd}d_backward")
    if name.startswith("adaptive"):
        return backward(g, indices, shape) if indices is not None else backward(g, shape)
    return backward(g, indices, shape, **kwargs) if indices is not None else \
        backward(g, shape, **kwargs)


@pytest.mark.parametrize("return_indices", [True, "compact"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("nd, name, kwargs, with_indices", CALLS)
def test_channels_last_matches_contiguous_and_keeps_layout(nd, name, kwargs, with_indices,
                                                           batched, return_indices):
    forward = getattr(fastpool, f"{name}{nd}d")
    shape = ((2,) if batched else ()) + (5,) + (9, 8, 7)[3 - nd:]
    x = random_array(shape, np.float32, seed=1)
    if name.startswith("max"):
        x = np.round(x)  # ties
    x_last = to_channels_last(x, nd)
    assert is_channels_last(x_last, nd)
    extra = dict(return_indices=return_indices) if with_indices else {}
    expected, result = forward(x, **kwargs, **extra), forward(x_last, **kwargs, **extra)
    if with_indices:
        (expected, expected_indices), (result, indices) = expected, result
        np.testing.assert_array_equal(indices, expected_indices)
        assert is_channels_last(indices, nd)
    else:
        expected_indices = indices = None
    np.testing.assert_array_equal(result, expected)
    assert is_channels_last(result, nd)

    g = random_array(expected.shape, np.float32, seed=2)
    grad_expected = _backward(nd, name, kwargs, g, expected_indices, shape)
    grad = _backward(nd, name, kwargs, to_channels_last(g, nd), indices, shape)
    np.testing.assert_array_equal(grad, grad_expected)
    assert is_channels_last(grad, nd)
    # Mixed layouts are accepted too (indices or grad_output copied to match).
    if with_indices:
        np.testing.assert_array_equal(
            _backward(nd, name, kwargs, to_channels_last(g, nd), expected_indices, shape),
            grad_expected)
        np.testing.assert_array_equal(_backward(nd, name, kwargs, g, indices, shape),
                                      grad_expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_channels_last_global_pooling_gives_the_contiguous_bits(dtype):
    """A channels-last global average sums each channel in the C-order kernel's chunks and
    lanes (its own kernel, channels side by side): the same bits, on planes smaller than the
    lanes, of whole lane blocks, with a tail, and of two chunks (past GLOBAL_CHUNK), and with
    channels from 2 to 520 (whose lanes are folded lane by lane). Global max takes the general
    kernel, which gives the C-order call's values and indices too."""
    rng = np.random.default_rng(5)
    for spatial in [(1, 1), (1, 5), (2, 4), (3, 3), (7, 7), (5, 13), (9, 17), (131, 127)]:
        # (520 channels: lanes wider than channel_sums folds in one pass)
        for channels in (2, 64, 65, 130) + ((520,) if spatial != (131, 127) else ()):
            x = rng.standard_normal((2, channels) + spatial).astype(dtype)
            x_last = to_channels_last(x, 2)
            expected = fastpool.adaptive_avg_pool2d(x, 1)
            np.testing.assert_allclose(  # (float16 is computed in float32: against float64)
                expected, x.astype(np.float64).mean(axis=(2, 3), keepdims=True),
                rtol=1e-3 if dtype == np.float16 else 1e-5, atol=1e-6)
            for threads in (1, 2):
                np.testing.assert_array_equal(
                    fastpool.adaptive_avg_pool2d(x_last, 1, num_threads=threads), expected)
            np.testing.assert_array_equal(  # (divisor_override: the divisor reaches it)
                fastpool.avg_pool2d(x_last, spatial, divisor_override=3),
                fastpool.avg_pool2d(x, spatial, divisor_override=3))
            if spatial == (5, 13):
                for got, want in zip(fastpool.adaptive_max_pool2d(x_last, 1, True),
                                     fastpool.adaptive_max_pool2d(x, 1, True)):
                    np.testing.assert_array_equal(got, want)
    for nd in (1, 3):
        x = rng.standard_normal((2, 70) + (3, 5, 7)[3 - nd:]).astype(dtype)
        forward = getattr(fastpool, f"adaptive_avg_pool{nd}d")
        np.testing.assert_array_equal(forward(to_channels_last(x, nd), 1), forward(x, 1))


def test_channels_last_input_is_not_copied():
    """Peak NumPy allocation during the call is the output only (a layout copy of the input
    would be 16x larger here)."""
    nhwc = random_array((4, 64, 64, 32), np.float32)
    x = nhwc.transpose(0, 3, 1, 2)
    for call in (lambda: fastpool.avg_pool2d(x, 4), lambda: fastpool.max_pool2d(x, 4),
                 lambda: fastpool.adaptive_avg_pool2d(x, 16),
                 lambda: fastpool.adaptive_avg_pool2d(x, 1)):
        tracemalloc.start()
        y = call()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert y.nbytes <= peak < y.nbytes + x.nbytes // 4


def test_keras_style_nhwc_round_trip():
    nhwc = random_array((2, 10, 12, 3), np.float64)
    pooled_nhwc = fastpool.max_pool2d(nhwc.transpose(0, 3, 1, 2), 2).transpose(0, 2, 3, 1)
    assert pooled_nhwc.flags.c_contiguous and pooled_nhwc.shape == (2, 5, 6, 3)
    expected = nhwc.reshape(2, 5, 2, 6, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(pooled_nhwc, expected)


def test_out_must_match_the_layout():
    x = to_channels_last(random_array((2, 4, 8, 8), np.float32), 2)
    with pytest.raises(ValueError, match="out must be channels-last"):
        fastpool.avg_pool2d(x, 2, out=np.empty((2, 4, 4, 4), np.float32))
    out = to_channels_last(np.empty((2, 4, 4, 4), np.float32), 2)
    assert fastpool.avg_pool2d(x, 2, out=out) is out
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        fastpool.avg_pool2d(np.ascontiguousarray(x), 2, out=out)


def test_other_strides_are_copied_and_channel_one_is_plain():
    x = random_array((2, 3, 16, 16), np.float64)
    sliced = x[:, :, ::2, ::2]
    result = fastpool.avg_pool2d(sliced, 2)
    assert result.flags.c_contiguous
    np.testing.assert_array_equal(result, fastpool.avg_pool2d(sliced.copy(), 2))
    one_channel = to_channels_last(random_array((2, 1, 8, 8), np.float32), 2)
    assert fastpool.avg_pool2d(one_channel, 2).flags.c_contiguous
