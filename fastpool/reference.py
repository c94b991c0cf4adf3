"""Plain NumPy reference implementations of fastpool's functions.

Same names and positional signatures as the public functions (without ``out`` and
``num_threads``), written to be obviously right rather than fast: a loop over output positions,
each window cut from a zero-padded copy of the input, and backward as the literal transpose
(each window's gradient added into every element it covers). The tests compare the fast
kernels with these over a wide parameter generator; ``python -m fastpool`` times them.
"""

import itertools

import numpy as np

from . import _arguments as args


def _windows(spatial, kernel, stride, padding, ceil_mode):
    """Yield (output index, slices into the padded input, pool size, in-bounds count)."""
    outs = [args.pooled_size("input", n, k, s, p, 1, ceil_mode)
            for n, k, s, p in zip(spatial, kernel, stride, padding)]
    for index in itertools.product(*(range(o) for o in outs)):
        slices, pool_size, count = [], 1, 1
        for o, n, k, s, p in zip(index, spatial, kernel, stride, padding):
            start = o * s                               # in padded coordinates
            stop = min(start + k, n + 2 * p)            # the window may not pass the padding
            slices.append(slice(start, stop))
            pool_size *= stop - start
            count *= min(stop, n + p) - max(start, p)   # elements inside the real input
        yield index, tuple(slices), pool_size, count


def _avg_pool_nd(nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):
    x = args.input_array("x", x, nd)
    kernel, stride, padding, _, ceil_mode, count_include_pad, divisor_override = \
        args.avg_arguments(nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
                           divisor_override)
    spatial = x.shape[x.ndim - nd:]
    padded = np.pad(x, [(0, 0)] * (x.ndim - nd) + [(p, p) for p in padding])
    windows = list(_windows(spatial, kernel, stride, padding, ceil_mode))
    out_spatial = tuple(np.add(windows[-1][0], 1))
    out = np.zeros(x.shape[:x.ndim - nd] + out_spatial, x.dtype)
    axes = tuple(range(x.ndim - nd, x.ndim))
    for index, slices, pool_size, count in windows:
        divisor = divisor_override or (pool_size if count_include_pad else count)
        window = padded[(Ellipsis,) + slices]
        out[(Ellipsis,) + index] = window.sum(axis=axes) / divisor
    return out


def _avg_pool_backward_nd(nd, grad_output, input_shape, kernel_size, stride, padding,
                          ceil_mode, count_include_pad, divisor_override):
    grad_output = args.input_array("grad_output", grad_output, nd)
    kernel, stride, padding, _, ceil_mode, count_include_pad, divisor_override = \
        args.avg_arguments(nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
                           divisor_override)
    spatial = tuple(input_shape[len(input_shape) - nd:])
    batch = grad_output.shape[:grad_output.ndim - nd]
    padded = np.zeros(batch + tuple(n + 2 * p for n, p in zip(spatial, padding)),
                      grad_output.dtype)
    for index, slices, pool_size, count in _windows(spatial, kernel, stride, padding, ceil_mode):
        divisor = divisor_override or (pool_size if count_include_pad else count)
        g = grad_output[(Ellipsis,) + index] / divisor
        padded[(Ellipsis,) + slices] += g.reshape(g.shape + (1,) * nd)
    inner = tuple(slice(p, p + n) for n, p in zip(spatial, padding))
    return np.ascontiguousarray(padded[(Ellipsis,) + inner]).reshape(input_shape)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool_nd(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool_nd(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool_nd(3, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    return _avg_pool_backward_nd(1, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    return _avg_pool_backward_nd(2, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override)


def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    return _avg_pool_backward_nd(3, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override)
