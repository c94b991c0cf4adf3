"""Memory: repeated calls do not leak; empty batches and zero channels give empty results."""

import gc

import numpy as np
import pytest

import fastpool
from cases import random_array


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="Linux only")
def test_repeated_calls_do_not_leak():
    x = random_array((4, 16, 64, 64), np.float32)

    def calls():
        y, indices = fastpool.max_pool2d(x, 3, 2, 1, return_indices=True)
        fastpool.max_pool2d_backward(y, indices, x.shape, 3, 2, 1)
        _, compact = fastpool.max_pool2d(x, 3, 2, 1, return_indices="compact")
        fastpool.max_pool2d_backward(y, compact, x.shape, 3, 2, 1)
        z = fastpool.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        fastpool.avg_pool2d_backward(z, x.shape, 3, 1, 1, count_include_pad=False)
        fastpool.adaptive_avg_pool2d(x, 7)
        fastpool.adaptive_max_pool2d(x.astype(np.float16), 1)
        fastpool.max_unpool2d(y, indices, 3, 2, 1, output_size=(64, 64))
        with pytest.raises(ValueError):
            fastpool.max_pool2d_backward(y, indices + 1000, x.shape, 3, 2, 1)

    for _ in range(20):  # warm up caches and allocator pools
        calls()
    gc.collect()
    before = _resident_bytes()
    for _ in range(300):
        calls()
    gc.collect()
    growth = _resident_bytes() - before
    assert growth < 8 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB"


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (2, 0, 8, 8), (0, 0, 8, 8), (0, 8, 8)])
def test_empty_batches_and_zero_channels(shape):
    x = np.zeros(shape, np.float32)
    expected = shape[:-2] + (4, 4)
    y, indices = fastpool.max_pool2d(x, 2, return_indices=True)
    assert y.shape == expected and indices.shape == expected
    assert fastpool.max_pool2d_backward(y, indices, shape, 2).shape == shape
    assert fastpool.max_unpool2d(y, indices, 2).shape == shape
    assert fastpool.avg_pool2d_backward(fastpool.avg_pool2d(x, 2), shape, 2).shape == shape
    a = fastpool.adaptive_avg_pool2d(x, 1)
    assert a.shape == shape[:-2] + (1, 1)
    assert fastpool.adaptive_avg_pool2d_backward(a, shape).shape == shape
    m, i = fastpool.adaptive_max_pool2d(x, (3, 5), return_indices=True)
    assert fastpool.adaptive_max_pool2d_backward(m, i, shape).shape == shape
