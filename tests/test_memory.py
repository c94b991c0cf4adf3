"""Memory: repeated calls do not leak; large outputs reuse the buffers of dead ones, never of
live ones; empty batches and zero channels give empty results."""

import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import fastpool
from cases import random_array


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux only")
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


def test_large_outputs_reuse_the_memory_of_dead_ones_and_never_of_live_ones():
    fastpool.release_memory()
    x = random_array((4, 16, 128, 128), np.float32)  # outputs of 4 MiB and more
    first = fastpool.max_pool2d(x, 3, 1, 1)
    where = first.ctypes.data
    second = fastpool.max_pool2d(x, 3, 1, 1)  # the first is alive: other memory
    assert second.ctypes.data != where
    np.testing.assert_array_equal(second, first)
    part = first[1:3]  # a view keeps the memory in use
    del first
    third = fastpool.max_pool2d(x + 1, 3, 1, 1)
    assert not np.may_share_memory(third, part)
    np.testing.assert_array_equal(part, second[1:3])
    idle = (where, third.ctypes.data)
    del part, third
    fourth = fastpool.max_pool2d(x, 3, 1, 1)  # a dead output's buffer, reused
    assert fourth.ctypes.data in idle
    np.testing.assert_array_equal(fourth, second)
    assert fourth.flags.c_contiguous and fourth.flags.writeable and fourth.dtype == np.float32
    del fourth
    assert fastpool.release_memory() >= x.nbytes
    assert fastpool.release_memory() == 0


def test_the_output_cache_can_be_turned_off():
    code = ("import numpy as np, fastpool; x = np.ones((4, 16, 128, 128), np.float32); "
            "y = fastpool.avg_pool2d(x, 1); print(y.base is None, fastpool.release_memory())")
    env = dict(os.environ, FASTPOOL_CACHE_BYTES="0")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["True", "0"]


def test_idle_buffers_stay_under_the_limit_the_least_recently_used_given_up(monkeypatch):
    from fastpool import _output_cache
    fastpool.release_memory()
    monkeypatch.setattr(_output_cache, "LIMIT", 3 * 2**22 - 1)  # room for two 4 MiB buffers
    outputs = [fastpool.avg_pool2d(random_array((4, 16, 128, 128 + i), np.float32), 1)
               for i in range(3)]  # three sizes, 4 MiB and a little more each
    places = [y.ctypes.data for y in outputs]
    for i in range(3):  # given back in order: the first is given up
        outputs[i] = None
    assert _output_cache._idle_bytes <= _output_cache.LIMIT
    assert [b.ctypes.data for b in _output_cache._idle] == places[1:]
    assert fastpool.release_memory() > 2 * 2**22
