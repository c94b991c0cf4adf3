"""Every dtype fastpool takes: float16 (computed in float32), float32/float64, exact integer
max pooling and unpooling, byte-swapped arrays and array-likes."""

import numpy as np
import pytest

import fastpool
from fastpool import reference
from cases import random_array

INTEGERS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64]


@pytest.mark.parametrize("name, kwargs", [
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", dict(kernel_size=3, stride=1, padding=1)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 4))),
    ("adaptive_max_pool2d", dict(output_size=1)),
])
def test_float16_is_computed_in_float32(name, kwargs):
    x = random_array((2, 3, 9, 10), np.float16)
    y = getattr(fastpool, name)(x, **kwargs)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, getattr(fastpool, name)(x.astype(np.float32), **kwargs)
                                  .astype(np.float16))
    g = random_array(y.shape, np.float16, seed=1)
    backward = getattr(fastpool, name + "_backward")
    if "max" in name:
        _, indices = getattr(fastpool, name)(x, **kwargs, return_indices=True)
        grad = backward(g, indices, x.shape, **({} if "adaptive" in name else kwargs))
        expected = backward(g.astype(np.float32), indices, x.shape,
                            **({} if "adaptive" in name else kwargs))
    else:
        grad = backward(g, x.shape, **({} if "adaptive" in name else kwargs))
        expected = backward(g.astype(np.float32), x.shape, **({} if "adaptive" in name else kwargs))
    assert grad.dtype == np.float16
    np.testing.assert_array_equal(grad, expected.astype(np.float16))


def test_float16_out_and_channels_last():
    x = np.moveaxis(random_array((2, 9, 9, 4), np.float16), -1, 1)
    out = np.moveaxis(np.empty((2, 4, 4, 4), np.float16), -1, 1)
    assert fastpool.avg_pool2d(x, 2, out=out) is out
    np.testing.assert_array_equal(out, fastpool.avg_pool2d(np.ascontiguousarray(x), 2))


@pytest.mark.parametrize("dtype", INTEGERS)
def test_integer_max_pooling_is_exact(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    x = rng.integers(info.min, info.max, (2, 3, 9, 8), dtype=dtype, endpoint=True)
    x[0, 0, :3, :3] = info.max   # ties at the extreme
    x[0, 1, :, :] = info.min     # a plane at the type's least value
    for kwargs in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, stride=1,
                                                                  dilation=2, ceil_mode=True)):
        y, indices = fastpool.max_pool2d(x, **kwargs, return_indices=True)
        expected_y, expected_indices = reference.max_pool2d(x, **kwargs, return_indices=True)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, expected_y)
        np.testing.assert_array_equal(indices, expected_indices)
        if "dilation" in kwargs:
            continue  # unpooling's output size knows no dilation
        restored = fastpool.max_unpool2d(y, indices, kwargs["kernel_size"], kwargs["stride"],
                                         kwargs.get("padding", 0), output_size=x.shape[2:])
        assert restored.dtype == dtype
        np.testing.assert_array_equal(
            restored, reference.max_unpool2d(y, indices, kwargs["kernel_size"], kwargs["stride"],
                                             kwargs.get("padding", 0), output_size=x.shape[2:]))
    y, indices = fastpool.adaptive_max_pool2d(x, 1, return_indices=True)
    np.testing.assert_array_equal(y[..., 0, 0], x.max(axis=(2, 3)))
    np.testing.assert_array_equal(indices[..., 0, 0], x.reshape(2, 3, -1).argmax(axis=2))


def test_integer_window_without_elements_gives_the_least_value():
    y, indices = fastpool.max_pool1d(np.array([[[7]]], np.int16), 2, stride=2, padding=2,
                                     dilation=3, return_indices=True)
    assert y.item() == np.iinfo(np.int16).min and indices.item() == -1


def test_large_int64_values_stay_exact():
    x = np.array([[[2**62 + 1, 2**62 + 3, 2**62 + 2, -2**63]]], np.int64)
    np.testing.assert_array_equal(fastpool.max_pool1d(x, 2)[0, 0], [2**62 + 3, 2**62 + 2])


@pytest.mark.parametrize("dtype", [">f4", ">f8", "<f4", ">i4", ">f2"])
def test_byte_swapped_input(dtype):
    x = random_array((2, 3, 8, 8), np.float32) * 10
    swapped = x.astype(dtype)
    native = swapped.astype(np.dtype(dtype).newbyteorder("="))
    np.testing.assert_array_equal(fastpool.max_pool2d(swapped, 2), fastpool.max_pool2d(native, 2))
    if np.dtype(dtype).kind == "f":
        np.testing.assert_array_equal(fastpool.avg_pool2d(swapped, 2),
                                      fastpool.avg_pool2d(native, 2))


def test_array_likes():
    class Wrapped:
        def __array__(self, dtype=None, copy=None):
            return np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(fastpool.max_pool2d(Wrapped(), 2)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(fastpool.avg_pool1d([[[1.0, 3.0, 5.0, 7.0]]], 2), [[[2, 6]]])
