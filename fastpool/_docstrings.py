"""Docstring templates for the public functions, filled in for the 1-D, 2-D and 3-D families.

Each family shares one numpydoc template; ``documented`` fills in the layout names and a
runnable example sized for the function's number of spatial dimensions.
"""

SHAPES = {1: ("(N, C, L)", "(C, L)", "(2, 3, 8)", "(2, 3, 4)"),
          2: ("(N, C, H, W)", "(C, H, W)", "(2, 3, 8, 8)", "(2, 3, 4, 4)"),
          3: ("(N, C, D, H, W)", "(C, D, H, W)", "(2, 3, 8, 8, 8)", "(2, 3, 4, 4, 4)")}


# Sections that several templates share, written once (each fills a {field} of a template).
FRAGMENTS = dict(
    num_threads="""\
    num_threads : int, optional
        OpenMP threads to use; defaults to OpenMP's maximum (OMP_NUM_THREADS, threadpoolctl).""",
    returns_pooled="""\
    Returns
    -------
    numpy.ndarray
        The pooled array, in the input's dtype.""",
    returns_gradient="""\
    Returns
    -------
    numpy.ndarray
        Gradient with respect to the input, of shape ``input_shape``, in grad_output's dtype.""",
    raises_forward="""\
    Raises
    ------
    TypeError, ValueError
        For an unsupported dtype or a bad parameter, naming it, before anything is written.""",
)


def documented(template):
    """Fill a docstring template for a function of the 1-D, 2-D or 3-D family."""
    def decorate(function):
        nd = int(function.__name__.split("pool")[1][0])
        batched, unbatched, example_in, example_out = SHAPES[nd]
        function.__doc__ = template.format(nd=nd, batched=batched, unbatched=unbatched,
                                           example_in=example_in, example_out=example_out,
                                           adaptive_out=(3,) * nd, **FRAGMENTS)
        return function
    return decorate


AVG = """{nd}-D average pooling over an array of shape {batched} or {unbatched}.

    Matches ``torch.nn.functional.avg_pool{nd}d`` on CPU: padding contributes zeros, and each
    window's sum is divided by ``divisor_override`` if given, else by its size including padding
    (``count_include_pad=True``) or by its number of in-bounds elements.

    An input whose memory is channels-last ((N, spatial..., C) order, e.g.
    ``nhwc.transpose(0, 3, 1, 2)``) is pooled without a copy and the result keeps that
    layout; other strided inputs are copied once to C order.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Input of shape {batched} or {unbatched}; float16 is computed in float32.
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
        Array of the output's shape and the input's dtype, in the result's layout (C order,
        or channels-last for a channels-last input), to write into.
{num_threads}

{returns_pooled}

{raises_forward}

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> fastpool.avg_pool{nd}d(x, kernel_size=2).shape
    {example_out}
    """


AVG_BACKWARD = """Gradient of :func:`avg_pool{nd}d` with respect to its input.

    Every input element receives the sum, over every window that contains it, of that window's
    output gradient divided by its divisor: the transpose of the forward map, exact for
    overlapping windows (stride < kernel) and for windows clipped by padding or ceil_mode.

    Parameters
    ----------
    grad_output : array_like of float16, float32 or float64
        Gradient of the loss with respect to the pooled output.
    input_shape : tuple of ints
        Shape of the forward input, {batched} or {unbatched}.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As passed to :func:`avg_pool{nd}d`.
    out : numpy.ndarray, optional
        Array of shape ``input_shape`` and grad_output's dtype, in grad_output's layout, to
        write into.
{num_threads}

{returns_gradient}

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


MAX = """{nd}-D max pooling over an array of shape {batched} or {unbatched}.

    Matches ``torch.nn.functional.max_pool{nd}d`` on CPU: padding never wins, the first maximum
    in row-major window order wins ties, a window holding NaN gives NaN (indexing its last NaN)
    and an all -inf window gives -inf (indexing its first element).

    An input whose memory is channels-last ((N, spatial..., C) order, e.g.
    ``nhwc.transpose(0, 3, 1, 2)``) is pooled without a copy and the result keeps that
    layout; other strided inputs are copied once to C order.

    Parameters
    ----------
    x : array_like of a float or integer dtype
        Input of shape {batched} or {unbatched}: float16 (computed in float32), float32,
        float64, or int8, uint8, int16, uint16, int32, int64 (exact).
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
        Array of the output's shape and the input's dtype, in the result's layout, for the
        values.
{num_threads}

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, numpy.ndarray) with return_indices
        The pooled values in the input's dtype, and the indices if asked for.

{raises_forward}

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> y, indices = fastpool.max_pool{nd}d(x, kernel_size=2, return_indices=True)
    >>> y.shape, indices.dtype
    ({example_out}, dtype('int64'))
    """


MAX_BACKWARD = """Gradient of :func:`max_pool{nd}d` with respect to its input.

    Each output gradient goes to its window's winner; an input that wins several overlapping
    windows receives the sum of their gradients; every other input gets 0.

    Parameters
    ----------
    grad_output : array_like of float16, float32 or float64
        Gradient of the loss with respect to the pooled output.
    indices : numpy.ndarray
        The indices :func:`max_pool{nd}d` returned: flat (int64, or int32) or compact (uint8).
        Each must name an element of its own window, else ValueError.
    input_shape : tuple of ints
        Shape of the forward input, {batched} or {unbatched}.
    kernel_size, stride, padding, dilation, ceil_mode
        As passed to :func:`max_pool{nd}d`.
    out : numpy.ndarray, optional
        Array of shape ``input_shape`` and grad_output's dtype, in grad_output's layout, to
        write into.
{num_threads}

{returns_gradient}

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


UNPOOL = """Partial inverse of :func:`max_pool{nd}d`: scatter values to their recorded positions.

    Matches ``torch.nn.functional.max_unpool{nd}d``: the output is zero except at ``indices``.
    Where an index repeats within a plane (overlapping windows with a shared winner), the value
    of the later output position in row-major order is kept, as PyTorch's CPU kernel does.

    Parameters
    ----------
    x : array_like of a float or integer dtype
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
{num_threads}

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


ADAPTIVE_AVG = """{nd}-D adaptive average pooling to a fixed output size.

    Matches ``torch.nn.functional.adaptive_avg_pool{nd}d``: output o of n along a dimension of
    input size ``in`` averages inputs ``floor(o * in / n)`` to ``ceil((o + 1) * in / n)``
    (exclusive). An output size of 1 is global average pooling.

    An input whose memory is channels-last ((N, spatial..., C) order, e.g.
    ``nhwc.transpose(0, 3, 1, 2)``) is pooled without a copy and the result keeps that
    layout; other strided inputs are copied once to C order.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Input of shape {batched} or {unbatched}; float16 is computed in float32.
    output_size : int or tuple of {nd} ints or None
        Output spatial size; None in a position keeps that input size.
    out : numpy.ndarray, optional
        Array of the output's shape, the input's dtype and layout to write into.
{num_threads}

{returns_pooled}

{raises_forward}

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> fastpool.adaptive_avg_pool{nd}d(x, 3).shape[2:]
    {adaptive_out}
    """

ADAPTIVE_AVG_BACKWARD = """Gradient of :func:`adaptive_avg_pool{nd}d` with respect to its input.

    Every input element receives the sum, over every window that contains it (adaptive windows
    can overlap), of that window's output gradient divided by the window's size.

    Parameters
    ----------
    grad_output : array_like of float16, float32 or float64
        Gradient of the loss with respect to the pooled output; its spatial shape is the
        forward's output size.
    input_shape : tuple of ints
        Shape of the forward input, {batched} or {unbatched}.
    out : numpy.ndarray, optional
        Array of shape ``input_shape``, grad_output's dtype and layout to write into.
{num_threads}

{returns_gradient}

    Raises
    ------
    TypeError, ValueError
        For a bad parameter or a grad_output whose batch shape does not match ``input_shape``,
        before anything is written.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> g = np.ones({example_out}, dtype=np.float32)
    >>> grad = fastpool.adaptive_avg_pool{nd}d_backward(g, {example_in})
    >>> grad.shape, float(grad.sum()) == g.size
    ({example_in}, True)
    """

ADAPTIVE_MAX = """{nd}-D adaptive max pooling to a fixed output size.

    Matches ``torch.nn.functional.adaptive_max_pool{nd}d``: windows as in
    :func:`adaptive_avg_pool{nd}d`, with :func:`max_pool{nd}d`'s tie, NaN and index rules.

    An input whose memory is channels-last ((N, spatial..., C) order, e.g.
    ``nhwc.transpose(0, 3, 1, 2)``) is pooled without a copy and the result keeps that
    layout; other strided inputs are copied once to C order.

    Parameters
    ----------
    x : array_like of a float or integer dtype
        Input of shape {batched} or {unbatched}, as for :func:`max_pool{nd}d`.
    output_size : int or tuple of {nd} ints or None
        Output spatial size; None in a position keeps that input size.
    return_indices : bool or 'compact', default False
        As for :func:`max_pool{nd}d`: int64 flat indices, or uint8 ranks within each window
        (windows of at most 256 elements).
    out : numpy.ndarray, optional
        Array of the output's shape, the input's dtype and layout for the values.
{num_threads}

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, numpy.ndarray) with return_indices
        The pooled values in the input's dtype, and the indices if asked for.

{raises_forward}

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> y, indices = fastpool.adaptive_max_pool{nd}d(x, 3, return_indices=True)
    >>> y.shape[2:], int(indices.max()) < x[0, 0].size
    ({adaptive_out}, True)
    """

ADAPTIVE_MAX_BACKWARD = """Gradient of :func:`adaptive_max_pool{nd}d` with respect to its input.

    Each output gradient goes to its window's winner; an input that wins several windows
    receives the sum of their gradients.

    Parameters
    ----------
    grad_output : array_like of float16, float32 or float64
        Gradient of the loss with respect to the pooled output.
    indices : numpy.ndarray
        The indices :func:`adaptive_max_pool{nd}d` returned: flat (int64, or int32) or compact
        (uint8). Each must name an element of its own window, else ValueError.
    input_shape : tuple of ints
        Shape of the forward input, {batched} or {unbatched}.
    out : numpy.ndarray, optional
        Array of shape ``input_shape``, grad_output's dtype and layout to write into.
{num_threads}

{returns_gradient}

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, mismatched shapes or an index outside its window, before anything
        is written.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> x = np.arange(np.prod({example_in}), dtype=np.float32).reshape{example_in}
    >>> y, indices = fastpool.adaptive_max_pool{nd}d(x, 3, return_indices=True)
    >>> grad = fastpool.adaptive_max_pool{nd}d_backward(np.ones_like(y), indices, x.shape)
    >>> grad.shape, float(grad.sum()) == y.size
    ({example_in}, True)
    """
