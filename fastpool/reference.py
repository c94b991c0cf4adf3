"""Plain NumPy reference implementations of fastpool's functions.

Same names and positional signatures as the public functions (without ``out`` and
``num_threads``), written to be obviously right rather than fast: a loop over output positions,
each window cut from a zero-padded copy of the input (average pooling) or gathered from its
list of in-bounds positions (max and adaptive pooling), and backward as the literal transpose
(each window's gradient added into every element it covers, or into its winner). The tests compare the fast
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


def _max_windows(spatial, kernel, stride, padding, dilation, ceil_mode):
    """Yield (output index, the window's in-bounds input positions in row-major order)."""
    outs = [args.pooled_size("input", n, k, s, p, d, ceil_mode)
            for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)]
    for index in itertools.product(*(range(o) for o in outs)):
        taps = [[o * s - p + j * d for j in range(k) if 0 <= o * s - p + j * d < n]
                for o, n, k, s, p, d in zip(index, spatial, kernel, stride, padding, dilation)]
        yield index, list(itertools.product(*taps))


def _winners(values):
    """Per row of ``values`` (planes, taps): PyTorch's winner, the last NaN if there is one,
    else the first maximum."""
    nan = np.isnan(values)
    last_nan = values.shape[1] - 1 - np.argmax(nan[:, ::-1], axis=1)
    return np.where(nan.any(axis=1), last_nan, np.argmax(values, axis=1))


def _planes(a, nd):
    """``a`` as (planes, *spatial)."""
    return a.reshape((int(np.prod(a.shape[:a.ndim - nd])),) + a.shape[a.ndim - nd:])


def _adaptive_windows(spatial, out_spatial):
    """Yield (output index, the window's input positions in row-major order) for adaptive
    pooling: output o of n covers [floor(o * in / n), ceil((o + 1) * in / n))."""
    for index in itertools.product(*(range(o) for o in out_spatial)):
        ranges = [range(o * n // out, -(-(o + 1) * n // out))
                  for o, n, out in zip(index, spatial, out_spatial)]
        yield index, list(itertools.product(*ranges))


def _stack(planes, positions):
    """The values at ``positions`` of every plane, as (planes, len(positions))."""
    return np.stack([planes[(slice(None),) + position] for position in positions], 1)


def _max_over(x, nd, windows, index_dtype):
    """Max pooling of ``x`` over the (output index, positions) list ``windows``."""
    spatial = x.shape[x.ndim - nd:]
    planes = _planes(x, nd)
    out_spatial = tuple(np.add(windows[-1][0], 1))
    values = np.empty((len(planes),) + out_spatial, x.dtype)
    flat = np.empty((len(planes),) + out_spatial, np.int64)
    rank = np.zeros((len(planes),) + out_spatial, np.uint8)
    for index, positions in windows:
        where = (slice(None),) + index
        if not positions:
            values[where], flat[where] = args.lowest(x.dtype), -1
            continue
        window = _stack(planes, positions)
        winner = _winners(window)
        values[where] = window[np.arange(len(planes)), winner]
        flat[where] = np.ravel_multi_index(np.array(positions).T, spatial)[winner]
        rank[where] = winner
    shape = x.shape[:x.ndim - nd] + out_spatial
    if index_dtype is None:
        return values.reshape(shape)
    return values.reshape(shape), (flat if index_dtype == np.int64 else rank).reshape(shape)


def _max_backward_over(grad_output, indices, input_shape, nd, windows):
    """The scatter transpose of max pooling over ``windows``, in output order."""
    spatial = tuple(input_shape[len(input_shape) - nd:])
    g, idx = _planes(grad_output, nd), _planes(np.asarray(indices), nd)
    grad = np.zeros((len(g), int(np.prod(spatial))), grad_output.dtype)
    rows = np.arange(len(g))
    for index, positions in windows:
        where = (slice(None),) + index
        if not positions:
            continue  # a window without elements has no winner
        if idx.dtype == np.uint8:
            target = np.ravel_multi_index(np.array(positions).T, spatial)[idx[where]]
        else:
            target = idx[where]
        grad[rows, target] += g[where]
    return grad.reshape(input_shape)


def _max_pool_nd(nd, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x = args.input_array("x", x, nd, integers=True)
    arguments = args.max_arguments(nd, kernel_size, stride, padding, dilation, ceil_mode)
    spatial = x.shape[x.ndim - nd:]
    index_dtype = args.index_mode(return_indices, args.pool_plan(spatial, *arguments))
    return _max_over(x, nd, list(_max_windows(spatial, *arguments)), index_dtype)


def _max_pool_backward_nd(nd, grad_output, indices, input_shape, kernel_size, stride, padding,
                          dilation, ceil_mode):
    grad_output = args.input_array("grad_output", grad_output, nd)
    arguments = args.max_arguments(nd, kernel_size, stride, padding, dilation, ceil_mode)
    spatial = tuple(input_shape[len(input_shape) - nd:])
    return _max_backward_over(grad_output, indices, input_shape, nd,
                              _max_windows(spatial, *arguments))


def _adaptive_avg_pool_nd(nd, x, output_size):
    x = args.input_array("x", x, nd)
    spatial = x.shape[x.ndim - nd:]
    out_spatial = args.adaptive_output_size(output_size, spatial)
    planes = _planes(x, nd)
    out = np.empty((len(planes),) + out_spatial, x.dtype)
    for index, positions in _adaptive_windows(spatial, out_spatial):
        out[(slice(None),) + index] = _stack(planes, positions).sum(axis=1) / len(positions)
    return out.reshape(x.shape[:x.ndim - nd] + out_spatial)


def _adaptive_avg_pool_backward_nd(nd, grad_output, input_shape):
    grad_output = args.input_array("grad_output", grad_output, nd)
    spatial = tuple(input_shape[len(input_shape) - nd:])
    g = _planes(grad_output, nd)
    grad = np.zeros((len(g),) + spatial, grad_output.dtype)
    for index, positions in _adaptive_windows(spatial, g.shape[1:]):
        for position in positions:
            grad[(slice(None),) + position] += g[(slice(None),) + index] / len(positions)
    return grad.reshape(input_shape)


def _adaptive_max_pool_nd(nd, x, output_size, return_indices):
    x = args.input_array("x", x, nd, integers=True)
    spatial = x.shape[x.ndim - nd:]
    out_spatial = args.adaptive_output_size(output_size, spatial)
    index_dtype = args.index_mode(return_indices, args.adaptive_plan(spatial, out_spatial))
    return _max_over(x, nd, list(_adaptive_windows(spatial, out_spatial)), index_dtype)


def _adaptive_max_pool_backward_nd(nd, grad_output, indices, input_shape):
    grad_output = args.input_array("grad_output", grad_output, nd)
    spatial = tuple(input_shape[len(input_shape) - nd:])
    out_spatial = grad_output.shape[grad_output.ndim - nd:]
    return _max_backward_over(grad_output, indices, input_shape, nd,
                              _adaptive_windows(spatial, out_spatial))


def _max_unpool_nd(nd, x, indices, kernel_size, stride, padding, output_size):
    x = args.input_array("x", x, nd, integers=True)
    kernel, stride, padding, _ = args.window_arguments(nd, kernel_size, stride, padding, 1)
    spatial = args.unpool_size(x.shape[x.ndim - nd:], kernel, stride, padding, output_size)
    values, idx = _planes(x, nd), _planes(np.asarray(indices), nd)
    out = np.zeros((len(values), int(np.prod(spatial))), x.dtype)
    rows = np.arange(len(values))
    for index in np.ndindex(values.shape[1:]):  # in output order: a repeated index keeps the later
        out[rows, idx[(slice(None),) + index]] = values[(slice(None),) + index]
    return out.reshape(x.shape[:x.ndim - nd] + spatial)


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


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool_nd(1, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool_nd(2, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool_nd(3, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices)


def max_pool1d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False):
    return _max_pool_backward_nd(1, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode)


def max_pool2d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False):
    return _max_pool_backward_nd(2, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode)


def max_pool3d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False):
    return _max_pool_backward_nd(3, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode)


def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool_nd(1, x, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool_nd(2, x, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool_nd(3, x, indices, kernel_size, stride, padding, output_size)


def adaptive_avg_pool1d(x, output_size):
    return _adaptive_avg_pool_nd(1, x, output_size)


def adaptive_avg_pool1d_backward(grad_output, input_shape):
    return _adaptive_avg_pool_backward_nd(1, grad_output, input_shape)


def adaptive_max_pool1d(x, output_size, return_indices=False):
    return _adaptive_max_pool_nd(1, x, output_size, return_indices)


def adaptive_max_pool1d_backward(grad_output, indices, input_shape):
    return _adaptive_max_pool_backward_nd(1, grad_output, indices, input_shape)


def adaptive_avg_pool2d(x, output_size):
    return _adaptive_avg_pool_nd(2, x, output_size)


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    return _adaptive_avg_pool_backward_nd(2, grad_output, input_shape)


def adaptive_max_pool2d(x, output_size, return_indices=False):
    return _adaptive_max_pool_nd(2, x, output_size, return_indices)


def adaptive_max_pool2d_backward(grad_output, indices, input_shape):
    return _adaptive_max_pool_backward_nd(2, grad_output, indices, input_shape)


def adaptive_avg_pool3d(x, output_size):
    return _adaptive_avg_pool_nd(3, x, output_size)


def adaptive_avg_pool3d_backward(grad_output, input_shape):
    return _adaptive_avg_pool_backward_nd(3, grad_output, input_shape)


def adaptive_max_pool3d(x, output_size, return_indices=False):
    return _adaptive_max_pool_nd(3, x, output_size, return_indices)


def adaptive_max_pool3d_backward(grad_output, indices, input_shape):
    return _adaptive_max_pool_backward_nd(3, grad_output, indices, input_shape)
