"""Arrays past 2**31 elements, and single planes past 2**31 elements (flat indices past int32),
with the smallest dtype that exercises the path. Slow-marked; CI runs them."""

import numpy as np
import pytest

import fastpool

# (one after another in one process: side by side, the two would need ~20 GB)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("huge")]


def test_array_with_more_than_2_31_elements():
    x = np.zeros((2**15 + 1, 1, 256, 256), np.int8)  # 2,147,549,184 elements
    assert x.size > 2**31
    x[-1, 0, 255, 254] = 7
    x[2**14, 0, 0, 1] = 5
    y, indices = fastpool.max_pool2d(x, 2, return_indices=True)
    assert y.shape == (2**15 + 1, 1, 128, 128)
    assert y[-1, 0, 127, 127] == 7 and indices[-1, 0, 127, 127] == 255 * 256 + 254
    assert y[2**14, 0, 0, 0] == 5 and indices[2**14, 0, 0, 0] == 1
    assert int(y.sum(dtype=np.int64)) == 12


def test_plane_with_more_than_2_31_elements():
    side = 46341  # side**2 = 2,147,488,281 > 2**31
    x = np.zeros((1, 1, side, side), np.int8)
    x[0, 0, side - 1, side - 11] = 9  # in the last window (columns 46328 to 46335)
    x[0, 0, 0, 3] = 4
    kernel = (side, 8)
    y, indices = fastpool.max_pool2d(x, kernel, return_indices=True)
    assert indices.dtype == np.int64
    flat = (side - 1) * side + side - 11
    assert flat > 2**31
    assert y[0, 0, 0, -1] == 9 and indices[0, 0, 0, -1] == flat
    assert y[0, 0, 0, 0] == 4 and indices[0, 0, 0, 0] == 3
    restored = fastpool.max_unpool2d(y, indices, kernel, output_size=(side, side))
    assert restored[0, 0, side - 1, side - 11] == 9 and restored[0, 0, 0, 3] == 4
    g = np.ones(y.shape, np.float32)
    grad = fastpool.max_pool2d_backward(g, indices, x.shape, kernel)
    assert grad[0, 0, side - 1, side - 11] == 1 and grad[0, 0, 0, 3] == 1
    assert grad.sum(dtype=np.float64) == y.size
