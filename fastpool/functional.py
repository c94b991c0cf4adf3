"""fastpool's public pooling functions (names and argument order of torch.nn.functional).

Each function validates and normalises its arguments through ``fastpool._arguments``,
allocates (or checks) the output, and hands C-contiguous (planes, D, H, W) views to a Cython
kernel that releases the GIL. The 1-D, 2-D and 3-D families share one code path: lower
dimensions are unit dimensions of the 3-D kernels.
"""

from . import _arguments as args
from . import _avg_pool

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
