"""Bad calls raise ValueError/TypeError naming the parameter and value, before any output is
written."""

import re

import numpy as np
import pytest

import fastpool

X = np.zeros((2, 3, 8, 8), np.float32)
G = np.zeros((2, 3, 4, 4), np.float32)

BAD_CALLS = [
    # (function, args, kwargs, exception, message fragment)
    ("avg_pool2d", (np.zeros((8, 8), np.float32), 2), {}, ValueError, "shape (8, 8)"),
    ("avg_pool2d", (np.zeros((1, 1, 1, 8, 8), np.float32), 2), {}, ValueError, "x must have"),
    ("avg_pool1d", (X, 2), {}, ValueError, "(N, C, L)"),
    ("avg_pool2d", (X.astype(np.int32), 2), {}, TypeError, "dtype int32"),
    ("avg_pool2d", (X.astype(bool), 2), {}, TypeError, "dtype bool"),
    ("avg_pool2d", (X.astype(np.complex64), 2), {}, TypeError, "dtype complex64"),
    ("avg_pool2d", (X, 0), {}, ValueError, "kernel_size must be >= 1, got 0"),
    ("avg_pool2d", (X, -1), {}, ValueError, "kernel_size must be >= 1, got -1"),
    ("avg_pool2d", (X, 2.0), {}, TypeError, "kernel_size must be an int or a sequence of 2 ints, got 2.0"),
    ("avg_pool2d", (X, True), {}, TypeError, "kernel_size must be an int"),
    ("avg_pool2d", (X, (2, 2, 2)), {}, ValueError, "sequence of 2 ints, got (2, 2, 2)"),
    ("avg_pool2d", (X, "2"), {}, TypeError, "kernel_size"),
    ("avg_pool2d", (X, 2), dict(stride=0), ValueError, "stride must be >= 1, got 0"),
    ("avg_pool2d", (X, 2), dict(stride=(1,)), ValueError, "stride must be an int or a sequence"),
    ("avg_pool2d", (X, 2), dict(padding=-1), ValueError, "padding must be >= 0, got -1"),
    ("avg_pool2d", (X, 2), dict(padding=2), ValueError, "padding must be at most half"),
    ("avg_pool2d", (X, (3, 2)), dict(padding=(1, 2)), ValueError, "got 2"),
    ("avg_pool2d", (X, 9), {}, ValueError, "input size 8 is too small for kernel_size 9"),
    ("avg_pool2d", (X, 2), dict(ceil_mode=1), TypeError, "ceil_mode must be a bool, got 1"),
    ("avg_pool2d", (X, 2), dict(count_include_pad="yes"), TypeError, "count_include_pad"),
    ("avg_pool2d", (X, 2), dict(divisor_override=0), ValueError, "divisor_override must be >= 1, got 0"),
    ("avg_pool2d", (X, 2), dict(divisor_override=1.5), TypeError, "divisor_override must be None or an int, got 1.5"),
    ("avg_pool2d", (X, 2), dict(num_threads=0), ValueError, "num_threads must be >= 1, got 0"),
    ("avg_pool2d", (X, 2), dict(num_threads=2.0), TypeError, "num_threads must be None or an int"),
    ("avg_pool2d", (X, 2), dict(out=np.empty((2, 3, 4, 5), np.float32)), ValueError, "out has shape (2, 3, 4, 5), expected (2, 3, 4, 4)"),
    ("avg_pool2d", (X, 2), dict(out=np.empty((2, 3, 4, 4), np.float64)), TypeError, "out has dtype float64, expected float32"),
    ("avg_pool2d", (X, 2), dict(out=np.empty((2, 3, 4, 4), np.float32, order="F")), ValueError, "out must be C-contiguous"),
    ("avg_pool2d", (X, 2), dict(out=[[0.0]]), TypeError, "out must be a numpy.ndarray"),
    ("avg_pool2d", (X, 1), dict(out=X), ValueError, "out overlaps an input array"),
    ("avg_pool2d_backward", (G, (2, 3, 8, 8), 3), {}, ValueError, "grad_output has shape (2, 3, 4, 4), but"),
    ("avg_pool2d_backward", (G, (8,), 2), {}, ValueError, "input_shape must be a shape (N, C, H, W) or (C, H, W) with non-negative sizes and non-empty spatial sizes, got (8,)"),
    ("avg_pool2d_backward", (G, (2, 3, -8, 8), 2), {}, ValueError, "got (2, 3, -8, 8)"),
    ("avg_pool2d_backward", (G, "2, 3, 8, 8", 2), {}, TypeError, "input_shape must be a tuple of ints"),
    ("avg_pool2d_backward", (G.astype(np.int64), (2, 3, 8, 8), 2), {}, TypeError, "grad_output has dtype int64"),
    ("avg_pool2d_backward", (G, (2, 3, 8, 8), 2), dict(out=np.empty((2, 3, 8, 8), np.float64)), TypeError, "out has dtype float64"),
    ("avg_pool3d", (X[0], 2), {}, ValueError, "(N, C, D, H, W)"),
    ("max_pool2d", (X, 2), dict(dilation=0), ValueError, "dilation must be >= 1, got 0"),
    ("max_pool2d", (X, 3), dict(dilation=2, padding=3), ValueError,
     "padding must be at most half the effective kernel size ((3 - 1) * 2 + 1) // 2 = 2, got 3"),
    ("max_pool2d", (X, 3), dict(dilation=4), ValueError, "input size 8 is too small for kernel_size 3, dilation 4"),
    ("max_pool2d", (X, 2), dict(return_indices=1), TypeError, "return_indices must be a bool, got 1"),
    ("max_pool2d", (X.astype(np.complex64), 2), {}, TypeError,
     "x has dtype complex64; supported dtypes are float16, float32, float64, int8, uint8, int16, uint16, int32, int64"),
    ("max_pool2d", (X.astype(object), 2), {}, TypeError, "x has dtype object"),
    ("max_pool2d", (X.astype(np.uint32), 2), {}, TypeError, "x has dtype uint32"),
    ("avg_pool2d", (X.astype(np.uint8), 2), {}, TypeError,
     "x has dtype uint8; supported dtypes are float16, float32, float64"),
    ("max_pool2d_backward", (G.astype(np.int32), np.zeros((2, 3, 4, 4), np.int64), (2, 3, 8, 8), 2), {}, TypeError,
     "grad_output has dtype int32; supported dtypes are float16, float32, float64"),
    ("max_pool1d", (X[0, 0], 2), dict(out=np.empty((8, 4), np.float32), num_threads=-3), ValueError, "num_threads must be >= 1, got -3"),
    ("max_pool2d_backward", (G, np.zeros((2, 3, 4, 4), np.int64), (2, 3, 8, 8), 2), dict(dilation=(1, 0)), ValueError, "dilation must be >= 1, got (1, 0)"),
    ("max_pool2d_backward", (G, np.zeros((2, 3, 4, 5), np.int64), (2, 3, 8, 8), 2), {}, ValueError, "indices has shape (2, 3, 4, 5), expected (2, 3, 4, 4)"),
    ("max_pool2d_backward", (G, np.zeros((2, 3, 4, 4), np.int64), (2, 3, 8, 8), 3), {}, ValueError, "grad_output has shape (2, 3, 4, 4), but"),
    ("max_unpool2d", (G, np.zeros((2, 3, 4, 4), np.int64), 2), dict(output_size=(8,)), ValueError, "output_size must have 2 entries"),
    ("max_unpool2d", (G, np.zeros((2, 3, 4, 4), np.int64), 2), dict(output_size=8), TypeError, "output_size must be None or a sequence of ints, got 8"),
    ("max_unpool2d", (G, np.zeros((2, 3, 4), np.int64), 2), {}, ValueError, "indices has shape (2, 3, 4), expected (2, 3, 4, 4)"),
    ("max_unpool2d", (G, np.zeros((2, 3, 4, 4), np.int64), 1), dict(padding=2), ValueError, "give an empty unpooled size"),
]


@pytest.mark.parametrize("name, args, kwargs, error, fragment", BAD_CALLS,
                         ids=[f"{i}-{c[0]}" for i, c in enumerate(BAD_CALLS)])
def test_bad_call_raises_a_clear_error(name, args, kwargs, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        getattr(fastpool, name)(*args, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(padding=3), dict(divisor_override=-2),
                                    dict(num_threads=-1), dict(stride=(0, 1))])
def test_nothing_is_written_on_error(kwargs):
    out = np.full((2, 3, 4, 4), 7.0, np.float32)
    with pytest.raises((ValueError, TypeError)):
        fastpool.avg_pool2d(X, 2, out=out, **kwargs)
    assert (out == 7.0).all()
    grad = np.full(X.shape, 7.0, np.float32)
    with pytest.raises((ValueError, TypeError)):
        fastpool.avg_pool2d_backward(G, X.shape, 2, out=grad, **kwargs)
    assert (grad == 7.0).all()


def test_read_only_out_is_rejected_untouched():
    out = np.full((2, 3, 4, 4), 7.0, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fastpool.avg_pool2d(X, 2, out=out)
    assert (out == 7.0).all()


EQUAL_BUT_WRONG = [  # each equal to (and hashing as) a valid value that is called first
    ("kernel_size", (2, 2), (2.0, 2.0)), ("kernel_size", (1, 2), (True, 2)),
    ("stride", (2, 2), (2.0, 2)), ("padding", (1, 0), (1, 0.0)),
    ("dilation", (1, 1), (True, True)), ("dilation", 1, True), ("kernel_size", 2, 2.0),
    ("ceil_mode", True, 1), ("ceil_mode", False, 0), ("count_include_pad", True, 1),
    ("divisor_override", 2, 2.0), ("divisor_override", 1, True), ("return_indices", False, 0),
]
ONLY = {"dilation": "max", "return_indices": "max", "count_include_pad": "avg",
        "divisor_override": "avg"}


@pytest.mark.parametrize("family, name, valid, wrong", [
    (family, *case) for family in ("avg", "max") for case in EQUAL_BUT_WRONG
    if ONLY.get(case[0], family) == family])
def test_a_cached_call_does_not_accept_an_equal_value_of_the_wrong_type(family, name, valid,
                                                                        wrong):
    # Repeated calls skip argument normalisation (the lean path is looked up by the caller's
    # own arguments); an argument equal to one already seen must still get the TypeError, not
    # that call's result.
    base = {"kernel_size": (3, 3)}
    forward = getattr(fastpool, f"{family}_pool2d")
    for value in (valid, valid, wrong):
        call = {**base, name: value}
        if value is wrong:
            with pytest.raises(TypeError, match=name):
                forward(X, **call)
        else:
            forward(X, **call)


@pytest.mark.parametrize("family", ["avg", "max"])
@pytest.mark.parametrize("shape", [(2.0, 3, 8, 8), (2, 3, 8, np.float64(8)), (2, True, 8, 8)])
def test_a_cached_backward_does_not_accept_an_equal_input_shape_of_the_wrong_type(family,
                                                                                 shape):
    good = (2, 1 if shape[1] is True else 3, 8, 8)
    x = np.random.default_rng(0).standard_normal(good).astype(np.float32)
    backward = getattr(fastpool, f"{family}_pool2d_backward")
    _, indices = fastpool.max_pool2d(x, 2, return_indices=True)
    given = (indices,) if family == "max" else ()
    grad = np.ones(indices.shape, np.float32)
    for _ in range(3):
        backward(grad, *given, good, 2)
    with pytest.raises(TypeError, match="input_shape must be a tuple of ints"):
        backward(grad, *given, shape, 2)
