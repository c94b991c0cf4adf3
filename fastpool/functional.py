"""fastpool's public pooling functions (names and argument order of torch.nn.functional).

Each function validates and normalises its arguments through ``fastpool._arguments``,
allocates (or checks) the output, and hands C-contiguous (planes, D, H, W) views to a Cython
kernel that releases the GIL. The 1-D, 2-D and 3-D families share one code path: lower
dimensions are unit dimensions of the 3-D kernels.
"""

import numpy as np

from . import _arguments as args
from . import _avg_pool, _max_pool

_SHAPES = {1: ("(N, C, L)", "(C, L)", "(2, 3, 8)", "(2, 3, 4)"),
           2: ("(N, C, H, W)", "(C, H, W)", "(2, 3, 8, 8)", "(2, 3, 4, 4)"),
           3: ("(N, C, D, H, W)", "(C, D, H, W)", "(2, 3, 8, 8, 8)", "(2, 3, 4, 4, 4)")}


def _documented(template):
    """Fill a docstring template for a function of the 1-D, 2-D or 3-D family."""
    def decorate(function):
        nd = int(function.__name__.split("pool")[1][0])
        batched, unbatched, example_in, example_out = _SHAPES[nd]
        function.__doc__ = template.format(nd=nd, batched=batched, unbatched=unbatched,
                                           example_in=example_in, example_out=example_out)
        return function
    return decorate


# --- average pooling ------------------------------------------------------------------------

_AVG_DOC = """{nd}-D average pooling over an array of shape {batched} or {unbatched}.

    Matches ``torch.nn.functional.avg_pool{nd}d`` on CPU: padding contributes zeros, and each
    window's sum is divided by ``divisor_override`` if given, else by its size including padding
    (``count_include_pad=True``) or by its number of in-bounds elements.

    Parameters
    ----------
    x : array_like of float32 or float64
        Input of shape {batched} or {unbatched}.
    kernel_size : int or tuple of {nd} ints
        Window size.
    stride : int or tuple of {nd} ints, optional
        Window step; defaults to ``kernel_size``.
    padding : int or tuple of {nd} ints, default 0
        Implicit zero padding on both sides; at most half the kernel size.
    ceil_mode : bool, default False
        Use ceil instead of floor for the output size (a window may still not start in the
        right padding).
    count_include_pad : bool, default True
        Count padded positions in the divisor.
    divisor_override : int, optional
        Divide every window sum by this (>= 1) instead.
    out : numpy.ndarray, optional
        C-contiguous array of the output's shape and the input's dtype to write into.
    num_threads : int, optional
        OpenMP threads to use; defaults to OpenMP's maximum (OMP_NUM_THREADS, threadpoolctl).

    Returns
    -------
    numpy.ndarray
        The pooled array, in the input's dtype.

    Raises
    ------
    TypeError, ValueError
        For an unsupported dtype or a bad parameter, naming it, before anything is written.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> fastpool.avg_pool{nd}d(x, kernel_size=2).shape
    {example_out}
    """

_AVG_BACKWARD_DOC = """Gradient of :func:`avg_pool{nd}d` with respect to its input.

    Every input element receives the sum, over every window that contains it, of that window's
    output gradient divided by its divisor: the transpose of the forward map, exact for
    overlapping windows (stride < kernel) and for windows clipped by padding or ceil_mode.

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        Gradient of the loss with respect to the pooled output.
    input_shape : tuple of ints
        Shape of the forward input, {batched} or {unbatched}.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As passed to :func:`avg_pool{nd}d`.
    out : numpy.ndarray, optional
        C-contiguous array of shape ``input_shape`` and grad_output's dtype to write into.
    num_threads : int, optional
        OpenMP threads to use; defaults to OpenMP's maximum.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to the input, of shape ``input_shape``, in grad_output's dtype.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, or a grad_output whose shape does not match what the forward
        pass gives for ``input_shape``, before anything is written.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> g = np.ones({example_out}, dtype=np.float32)
    >>> fastpool.avg_pool{nd}d_backward(g, {example_in}, kernel_size=2).shape
    {example_in}
    """


def _avg_pool_nd(nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override, out, num_threads):
    x = args.input_array("x", x, nd)
    plan = args.pool_plan(x.shape[x.ndim - nd:], *args.avg_arguments(
        nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override))
    result = args.output_array(out, x.shape[:x.ndim - nd] + plan.out_spatial, x.dtype, x)
    _avg_pool.forward(args.planes_view(x, nd), args.planes_view(result, nd), *plan.windows,
                      plan.scale, args.thread_count(num_threads, result.size))
    return result


def _avg_pool_backward_nd(nd, grad_output, input_shape, kernel_size, stride, padding,
                          ceil_mode, count_include_pad, divisor_override, out, num_threads):
    grad_output = args.input_array("grad_output", grad_output, nd)
    input_shape = args.shape_tuple("input_shape", input_shape, nd)
    plan = args.pool_plan(input_shape[len(input_shape) - nd:], *args.avg_arguments(
        nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override))
    args.check_grad_shape(grad_output, input_shape[:len(input_shape) - nd] + plan.out_spatial)
    result = args.output_array(out, input_shape, grad_output.dtype, grad_output)
    _avg_pool.backward(args.planes_view(grad_output, nd), args.planes_view(result, nd),
                       *plan.windows, *plan.coverage, plan.scale,
                       args.thread_count(num_threads, result.size))
    return result


@_documented(_AVG_DOC)
def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None, num_threads=None):
    return _avg_pool_nd(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, out, num_threads)


@_documented(_AVG_DOC)
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None, num_threads=None):
    return _avg_pool_nd(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, out, num_threads)


@_documented(_AVG_DOC)
def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None, num_threads=None):
    return _avg_pool_nd(3, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, out, num_threads)


@_documented(_AVG_BACKWARD_DOC)
def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    return _avg_pool_backward_nd(1, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override, out, num_threads)


@_documented(_AVG_BACKWARD_DOC)
def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    return _avg_pool_backward_nd(2, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override, out, num_threads)


@_documented(_AVG_BACKWARD_DOC)
def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    return _avg_pool_backward_nd(3, grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override, out, num_threads)


# --- max pooling ----------------------------------------------------------------------------

_MAX_DOC = """{nd}-D max pooling over an array of shape {batched} or {unbatched}.

    Matches ``torch.nn.functional.max_pool{nd}d`` on CPU: padding never wins, the first maximum
    in row-major window order wins ties, a window holding NaN gives NaN (indexing its last NaN)
    and an all -inf window gives -inf (indexing its first element).

    Parameters
    ----------
    x : array_like of float32 or float64
        Input of shape {batched} or {unbatched}.
    kernel_size : int or tuple of {nd} ints
        Window size.
    stride : int or tuple of {nd} ints, optional
        Window step; defaults to ``kernel_size``.
    padding : int or tuple of {nd} ints, default 0
        Implicit -inf padding on both sides; at most half the effective kernel size.
    dilation : int or tuple of {nd} ints, default 1
        Spacing between window elements.
    ceil_mode : bool, default False
        Use ceil instead of floor for the output size.
    return_indices : bool or 'compact', default False
        True also returns int64 flat indices of the winners within each input plane
        (``(d * H + h) * W + w``), the format :func:`max_unpool{nd}d` and torch take.
        ``'compact'`` returns uint8 indices instead: the winner's rank among its window's
        in-bounds elements (windows of at most 256 elements), 8x smaller, accepted by
        :func:`max_pool{nd}d_backward` but not by unpooling.
    out : numpy.ndarray, optional
        C-contiguous array of the output's shape and the input's dtype for the values.
    num_threads : int, optional
        OpenMP threads to use; defaults to OpenMP's maximum (OMP_NUM_THREADS, threadpoolctl).

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, numpy.ndarray) with return_indices
        The pooled values in the input's dtype, and the indices if asked for.

    Raises
    ------
    TypeError, ValueError
        For an unsupported dtype or a bad parameter, naming it, before anything is written.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> y, indices = fastpool.max_pool{nd}d(x, kernel_size=2, return_indices=True)
    >>> y.shape, indices.dtype
    ({example_out}, dtype('int64'))
    """

_MAX_BACKWARD_DOC = """Gradient of :func:`max_pool{nd}d` with respect to its input.

    Each output gradient goes to its window's winner; an input that wins several overlapping
    windows receives the sum of their gradients; every other input gets 0.

    Parameters
    ----------
    grad_output : array_like of float32 or float64
        Gradient of the loss with respect to the pooled output.
    indices : numpy.ndarray
        The indices :func:`max_pool{nd}d` returned: flat (int64, or int32) or compact (uint8).
        Each must name an element of its own window, else ValueError.
    input_shape : tuple of ints
        Shape of the forward input, {batched} or {unbatched}.
    kernel_size, stride, padding, dilation, ceil_mode
        As passed to :func:`max_pool{nd}d`.
    out : numpy.ndarray, optional
        C-contiguous array of shape ``input_shape`` and grad_output's dtype to write into.
    num_threads : int, optional
        OpenMP threads to use; defaults to OpenMP's maximum.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to the input, of shape ``input_shape``, in grad_output's dtype.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, a grad_output or indices whose shape does not match the forward
        pass, or an index outside its window, before anything is written.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> y, indices = fastpool.max_pool{nd}d(x, 2, return_indices="compact")
    >>> grad = fastpool.max_pool{nd}d_backward(np.ones_like(y), indices, x.shape, 2)
    >>> grad.shape, float(grad.sum()) == y.size
    ({example_in}, True)
    """

_UNPOOL_DOC = """Partial inverse of :func:`max_pool{nd}d`: scatter values to their recorded positions.

    Matches ``torch.nn.functional.max_unpool{nd}d``: the output is zero except at ``indices``.
    Where an index repeats within a plane (overlapping windows with a shared winner), the value
    of the later output position in row-major order is kept, as PyTorch's CPU kernel does.

    Parameters
    ----------
    x : array_like of float32 or float64
        Pooled values, of shape {batched} or {unbatched}.
    indices : numpy.ndarray of int64 or int32
        Flat indices from :func:`max_pool{nd}d` (``return_indices=True``), same shape as x.
        An index outside the output plane raises ValueError.
    kernel_size, stride, padding
        As passed to :func:`max_pool{nd}d`.
    output_size : sequence of ints, optional
        Spatial output size (or the full output shape); each must lie strictly within one
        stride of the default ``(in - 1) * stride + kernel_size - 2 * padding``.
    out : numpy.ndarray, optional
        C-contiguous array of the output's shape and x's dtype to write into.
    num_threads : int, optional
        OpenMP threads to use; defaults to OpenMP's maximum.

    Returns
    -------
    numpy.ndarray
        The unpooled array in x's dtype.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, mismatched indices or an index out of range, before anything is
        written.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> y, indices = fastpool.max_pool{nd}d(x, 2, return_indices=True)
    >>> restored = fastpool.max_unpool{nd}d(y, indices, 2)
    >>> restored.shape, bool((restored == np.where(restored != 0, x, 0)).all())
    ({example_in}, True)
    """

# Placeholder for the kernel's index argument when forward is asked for no indices.
_NO_INDICES = np.empty((0, 0, 0, 0), np.int64)


def _max_pool_nd(nd, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, out,
                 num_threads):
    x = args.input_array("x", x, nd)
    arguments = args.max_arguments(nd, kernel_size, stride, padding, dilation, ceil_mode)
    plan = args.pool_plan(x.shape[x.ndim - nd:], *arguments)
    index_dtype = args.index_mode(return_indices, arguments[0])
    shape = x.shape[:x.ndim - nd] + plan.out_spatial
    result = args.output_array(out, shape, x.dtype, x)
    threads = args.thread_count(num_threads, result.size)
    if index_dtype is None:
        _max_pool.forward(args.planes_view(x, nd), args.planes_view(result, nd), _NO_INDICES,
                          False, *plan.windows, *plan.dilation, threads)
        return result
    indices = np.empty(shape, index_dtype)
    _max_pool.forward(args.planes_view(x, nd), args.planes_view(result, nd),
                      args.planes_view(indices, nd), True, *plan.windows, *plan.dilation, threads)
    return result, indices


def _max_pool_backward_nd(nd, grad_output, indices, input_shape, kernel_size, stride, padding,
                          dilation, ceil_mode, out, num_threads):
    grad_output = args.input_array("grad_output", grad_output, nd)
    input_shape = args.shape_tuple("input_shape", input_shape, nd)
    plan = args.pool_plan(input_shape[len(input_shape) - nd:], *args.max_arguments(
        nd, kernel_size, stride, padding, dilation, ceil_mode))
    args.check_grad_shape(grad_output, input_shape[:len(input_shape) - nd] + plan.out_spatial)
    indices = args.index_array(indices, grad_output.shape, compact_allowed=True)
    threads = args.thread_count(num_threads, grad_output.size + int(np.prod(input_shape)))
    index_view = args.planes_view(indices, nd)
    bad = _max_pool.first_invalid_index(index_view, *plan.windows, *plan.dilation,
                                        *args.kernel_dims(input_shape[len(input_shape) - nd:]),
                                        threads)
    if bad >= 0:
        where = np.unravel_index(bad, indices.shape)
        raise ValueError(f"indices{list(map(int, where))} = {indices[where]} does not name an "
                         f"element of its pooling window for input_shape {input_shape}")
    result = args.output_array(out, input_shape, grad_output.dtype, grad_output, indices)
    grad_view = args.planes_view(result, nd)
    _max_pool.backward(args.planes_view(grad_output, nd), index_view, grad_view, *plan.windows,
                       *plan.coverage[:2], *plan.dilation,
                       args.band_rows(len(grad_view), grad_view.shape[1] * grad_view.shape[2],
                                      threads), threads)
    return result


def _max_unpool_nd(nd, x, indices, kernel_size, stride, padding, output_size, out,
                   num_threads):
    x = args.input_array("x", x, nd)
    kernel, stride, padding, _ = args.window_arguments(nd, kernel_size, stride, padding, 1)
    spatial = args.unpool_size(x.shape[x.ndim - nd:], kernel, stride, padding, output_size)
    indices = args.index_array(indices, x.shape, compact_allowed=False)
    plane_size = int(np.prod(spatial))
    if indices.size and (indices.min() < 0 or indices.max() >= plane_size):
        bad = np.flatnonzero((indices < 0) | (indices >= plane_size))[0]
        where = np.unravel_index(bad, indices.shape)
        raise ValueError(f"indices{list(map(int, where))} = {indices[where]} is outside the "
                         f"output plane of {plane_size} elements (spatial size {spatial})")
    result = args.output_array(out, x.shape[:x.ndim - nd] + spatial, x.dtype, x, indices)
    result.fill(0)
    planes = result.size // plane_size
    pooled_size = int(np.prod(x.shape[x.ndim - nd:]))
    _max_pool.unpool(x.reshape(planes, pooled_size), indices.reshape(planes, pooled_size),
                     result.reshape(planes, plane_size),
                     args.thread_count(num_threads, result.size))
    return result


@_documented(_MAX_DOC)
def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    return _max_pool_nd(1, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices, out, num_threads)


@_documented(_MAX_DOC)
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    return _max_pool_nd(2, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices, out, num_threads)


@_documented(_MAX_DOC)
def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    return _max_pool_nd(3, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices, out, num_threads)


@_documented(_MAX_BACKWARD_DOC)
def max_pool1d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    return _max_pool_backward_nd(1, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode, out, num_threads)


@_documented(_MAX_BACKWARD_DOC)
def max_pool2d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    return _max_pool_backward_nd(2, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode, out, num_threads)


@_documented(_MAX_BACKWARD_DOC)
def max_pool3d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    return _max_pool_backward_nd(3, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode, out, num_threads)


@_documented(_UNPOOL_DOC)
def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(1, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)


@_documented(_UNPOOL_DOC)
def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(2, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)


@_documented(_UNPOOL_DOC)
def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(3, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)
