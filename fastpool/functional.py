"""fastpool's public pooling functions (names and argument order of torch.nn.functional).

Each function validates and normalises its arguments through ``fastpool._arguments``, gets the
window plan for its input's shape and layout, allocates (or checks) the output, and hands
(planes, D, H, W) views to a Cython kernel that releases the GIL. The 1-D, 2-D and 3-D families
and the adaptive functions share these code paths: lower dimensions are unit dimensions of the
3-D kernels, and adaptive pooling differs from the fixed-window kind only in its plan.
"""

import math

import numpy as np

from . import _arguments as args
from . import _output_cache, _prepared
from ._docstrings import (ADAPTIVE_AVG, ADAPTIVE_AVG_BACKWARD, ADAPTIVE_MAX,
                          ADAPTIVE_MAX_BACKWARD, AVG, AVG_BACKWARD, MAX, MAX_BACKWARD, UNPOOL,
                          documented)
from ._kernels import _avg_pool, _global_pool, _max_pool
from ._prepared import BAND, Call, Scratch

# Placeholder for the row-maxima kernel's index argument when forward is asked for no indices.
_NO_INDICES = np.empty((0, 0, 0, 0), np.int64)


class _Pooling:
    """One call's validated input, its layout (C order or channels-last) and dtype.

    float16 input is computed in float32: ``x`` is then a float32 copy, ``output`` hands the
    kernel a float32 work array and ``finish`` rounds it into the float16 result."""

    def __init__(self, name, x, nd, integers=False, channels_last=True):
        self.nd = nd
        x = args.input_array(name, x, nd, channels_last, integers)
        self.dtype = x.dtype
        self.x = x.astype(np.float32) if x.dtype.char == "e" else x  # float16; order "K"
        # input_array returns C order, or channels-last where that is allowed
        self.channels_last = not self.x.flags.c_contiguous
        self.spatial = self.x.shape[self.x.ndim - nd:]
        self.batch = self.x.shape[:self.x.ndim - nd]

    @property
    def channels(self):
        return self.x.shape[self.x.ndim - self.nd - 1] if self.channels_last else 1

    def view(self, a):
        return args.planes_view(a, self.nd, self.channels_last)

    def global_planes(self):
        """The input as the global-pooling kernels take it: (planes, plane_size) in C order;
        channels-last, (N, plane_size, C)."""
        if self.channels_last:
            view = self.view(self.x)
            return view.reshape(len(view), -1, self.channels)
        return self.x.reshape(math.prod(self.batch), math.prod(self.spatial))

    def global_partials(self, planes):
        """How many partial results the global kernels keep for ``planes`` (from
        ``global_planes``): one per (sample or plane, chunk, channel) where planes span more
        than one chunk; none otherwise."""
        chunks = args.chunk_count(planes.shape[1])
        return len(planes) * self.channels * chunks if chunks > 1 else 0

    def position(self, flat, a):
        """The (N, C, spatial...) position of element ``flat`` of ``view(a)``."""
        if not self.channels_last:
            return np.unravel_index(flat, a.shape)
        axis = a.ndim - self.nd - 1
        where = np.unravel_index(flat, np.moveaxis(a, axis, -1).shape)
        return where[:axis] + where[-1:] + where[axis:-1]

    def output(self, out, shape, *sources):
        """The array the kernel writes: ``out`` (checked) or a new array, or for float16 a
        float32 work array."""
        if out is None and not self.channels_last and self.dtype is self.x.dtype:
            self.result = _output_cache.empty(shape, self.dtype)  # the common case
            return self.result
        self.result = args.output_array(out, shape, self.dtype, self.nd, self.channels_last,
                                        self.x, *sources)
        if self.dtype == self.x.dtype:
            return self.result
        return args.output_array(None, shape, self.x.dtype, self.nd, self.channels_last)

    def finish(self, work):
        """The caller's result: ``work`` itself, or rounded into the float16 result."""
        if work is not self.result:
            self.result[...] = work
        return self.result


def _plain(kept_as, call, given):
    """``kept_as`` where the call can be kept for repeats (its array ``given`` used as
    it came, in C order, with no float16 work array), else None."""
    if (kept_as is None or call.x is not given or call.channels_last
            or call.result.dtype != call.x.dtype):
        return None
    return kept_as


def _launch(kept_as, kernel, pairs, num_threads, taken=1, valid=None):
    """Run the prepared ``kernel`` on the views of ``pairs`` ((array, its view), in the
    kernel's order: first the ``taken`` arrays the caller gave, then those the call makes), and
    keep it for repeats of ``kept_as`` (what is computed, with the caller's arguments; None:
    not kept) if it returned ``valid``. Returns what the kernel returned."""
    status = kernel.run([view for _, view in pairs], num_threads)
    if kept_as is not None and status == valid:
        kernel.keep(kept_as, pairs[:taken], pairs[taken:], valid)
    return status


def _bands(view):
    """(planes, rows per plane) of the (planes, D, H, W) view whose rows the tasks split
    (forward's output, backward's gradient)."""
    return view.shape[0], view.shape[1] * view.shape[2]


def _unit_stride_pass(plan):
    """Whether the average kernels' plane passes (stride 1) serve the plan."""
    return plan.plane_pass is not None and plan.plane_pass.stride == (1, 1)


def _avg_forward(x, nd, make_plan, out, num_threads, kept_as=None):
    call = _Pooling("x", x, nd)
    plan = make_plan(call.spatial, call.channels)
    result = call.output(out, call.batch + plan.out_spatial)
    if plan.is_global:
        planes = call.global_planes()
        partial = Scratch(call.global_partials(planes), result.dtype, shared=True)
        if call.channels_last:  # (N, C) means; each thread's lanes, C values a lane
            kernel = Call(_global_pool, "mean_channels_last", (result.dtype,), (
                Scratch(_global_pool.LANES_PER_CHANNEL * call.channels, result.dtype), partial,
                args.GLOBAL_CHUNK, plan.divisor()), work=call.x.size)
            means = call.view(result).reshape(len(planes), call.channels)
        else:
            kernel = Call(_global_pool, "mean", (result.dtype,), (
                partial, args.GLOBAL_CHUNK, plan.divisor()), work=call.x.size)
            means = result.reshape(-1)
        _launch(_plain(kept_as, call, x), kernel, [(call.x, planes), (result, means)],
                num_threads)
        return call.finish(result)
    view = call.view(result)
    if _unit_stride_pass(plan):
        passing = plan.plane_pass
        kernel = Call(_avg_pool, "forward_plane", (view.dtype,), (
            Scratch(passing.size, view.dtype), Scratch(passing.size, view.dtype),
            Scratch(view.shape[2] * view.shape[3], view.dtype, shared=True),
            *plan.windows[1:], *passing.kernel, *passing.padding, plan.scale), work=view.size)
    else:
        kernel = Call(_avg_pool, "forward", (view.dtype,), (
            *plan.windows, *plan.dilation, plan.scale, *plan.interior, BAND), _bands(view),
            view.size)
    _launch(_plain(kept_as, call, x), kernel, [(call.x, call.view(call.x)), (result, view)],
            num_threads)
    return call.finish(result)


def _avg_backward(grad_output, input_shape, nd, make_plan, out, num_threads, kept_as=None):
    call = _Pooling("grad_output", grad_output, nd)
    input_shape = args.shape_tuple("input_shape", input_shape, nd)
    plan = make_plan(input_shape[len(input_shape) - nd:], call.channels)
    args.check_grad_shape(call.x, input_shape[:len(input_shape) - nd] + plan.out_spatial)
    result = call.output(out, input_shape)
    spatial = input_shape[len(input_shape) - nd:]
    if plan.is_global:
        kernel = Call(_global_pool, "mean_backward", (result.dtype,), (
            args.GLOBAL_CHUNK, plan.divisor()), work=result.size)
        _launch(_plain(kept_as, call, grad_output), kernel, [
            (call.x, call.x.reshape(-1)), (result, result.reshape(-1, math.prod(spatial)))],
            num_threads)
        return call.finish(result)
    grad_view = call.view(call.x)
    result_view = call.view(result)
    dtype = result.dtype
    kernel = None
    if plan.disjoint:
        kernel = Call(_avg_pool, "backward_disjoint", (dtype,), (
            *plan.windows, *plan.coverage[:2], plan.scale, *plan.interior[:4], BAND,
            Scratch(grad_view.shape[3], dtype)), _bands(result_view), result.size)
    elif _unit_stride_pass(plan):
        (kernel_h, kernel_w), (top, left) = plan.plane_pass.kernel, plan.plane_pass.padding
        size = (result_view.shape[2] + kernel_h - 1) * (result_view.shape[3] + kernel_w - 1)
        if size <= args.PLANE_PASS_LIMIT:
            kernel = Call(_avg_pool, "backward_plane", (dtype,), (
                Scratch(size, dtype, 0), Scratch(size, dtype),  # (zeros: the border)
                Scratch(grad_view.shape[2] * grad_view.shape[3], dtype, shared=True),
                *plan.windows[1:], kernel_h, kernel_w, top, left, plan.scale),
                work=result.size)
    if kernel is None:
        # a row of divided gradients per thread, with room for the zeros around them
        kernel = Call(_avg_pool, "backward", (dtype,), (
            *plan.windows, *plan.coverage, plan.channels, plan.scale, *plan.interior[:4],
            *plan.inner, Scratch(grad_view.shape[3] + result_view.shape[3]
                                 + 2 * int(plan.windows[2][1].max()), dtype, 0)),
            work=result.size)
    _launch(_plain(kept_as, call, grad_output), kernel,
            [(call.x, grad_view), (result, result_view)], num_threads)
    return call.finish(result)


def _max_forward(x, nd, make_plan, return_indices, out, num_threads, kept_as=None):
    call = _Pooling("x", x, nd, integers=True)
    plan = make_plan(call.spatial, call.channels)
    index_dtype = args.index_mode(return_indices, plan)
    result = call.output(out, call.batch + plan.out_spatial)
    indices = None if index_dtype is None else \
        args.output_array(None, result.shape, index_dtype, nd, call.channels_last)
    view = call.view(result)
    dtype, lowest = view.dtype, args.lowest(view.dtype)
    dtypes = (dtype, np.dtype(np.int64) if indices is None else indices.dtype)
    pairs = [(call.x, call.view(call.x)), (result, view)]
    if indices is not None:
        pairs.append((indices, call.view(indices)))
    width = view.shape[3]
    recording = (None, False) if indices is None else (True,)  # (indices, whether to write them)
    if plan.is_global and not call.channels_last:  # (a compact rank is the flat position)
        planes = call.global_planes()
        partials = call.global_partials(planes)
        kernel = Call(_global_pool, "maximum", dtypes, (
            *recording, Scratch(partials, dtype, shared=True),
            Scratch(partials, np.int64, shared=True), args.GLOBAL_CHUNK), work=call.x.size)
        pairs = [(call.x, planes)] + [(a, a.reshape(-1)) for a, _ in pairs[1:]]
    elif plan.down_across is not None and indices is None:
        kernel_w, stride_w, left, padded = plan.down_across
        kernel = Call(_max_pool, "forward_down_across", (dtype,), (
            Scratch(padded, dtype), *plan.windows[1:], *plan.dilation[1:], kernel_w, stride_w,
            left, lowest, BAND), _bands(view), view.size)
    elif plan.plane_pass is not None and indices is None:
        passing = plan.plane_pass
        kernel = Call(_max_pool, "forward_plane", (dtype,), (
            Scratch(passing.size, dtype), Scratch(passing.size // passing.stride[1], dtype),
            Scratch(passing.size // passing.stride[1], dtype), *passing.kernel, passing.stride[1],
            *passing.dilation, *passing.padding, passing.pitch, lowest), work=view.size)
    elif plan.row_taps is not None and _rows_per_window(plan) < 1 << 15 \
            and plan.row_taps.shape[1] < 1 << 16:  # (row and tap numbers share an int32 code)
        slot_d, slot_h, slots = plan.row_slots
        kernel = Call(_max_pool, "forward_by_rows", dtypes, (
            *((_NO_INDICES, False) if indices is None else (True,)),
            Scratch(slots * width, dtype), Scratch(slots * width, np.intc),
            Scratch(slots, np.intp, -1),  # (no row cached yet)
            Scratch((width - 1) * plan.interior[2] + plan.dilation[2]
                    * (plan.row_taps.shape[1] - 1) + 1, dtype), slot_d, slot_h,
            Scratch(width, np.intc), *plan.windows, plan.row_taps, plan.first_taps,
            *plan.dilation, *plan.interior[2:4], lowest, BAND), _bands(view), view.size)
    else:
        kernel = Call(_max_pool, "forward", dtypes, (
            *recording, *plan.windows, *plan.dilation,
            plan.channels, *plan.interior, lowest, BAND),
            _bands(view), view.size)
    _launch(_plain(kept_as, call, x), kernel, pairs, num_threads)
    result = call.finish(result)
    return result if indices is None else (result, indices)


def _rows_per_window(plan):
    """The most input rows (D and H taps) a window of the plan spans."""
    return int(plan.windows[0][1].max()) * int(plan.windows[1][1].max())


def _max_backward(grad_output, indices, input_shape, nd, make_plan, out, num_threads,
                  kept_as=None):
    call = _Pooling("grad_output", grad_output, nd)
    input_shape = args.shape_tuple("input_shape", input_shape, nd)
    plan = make_plan(input_shape[len(input_shape) - nd:], call.channels)
    args.check_grad_shape(call.x, input_shape[:len(input_shape) - nd] + plan.out_spatial)
    given = indices
    indices = args.index_array(indices, call.x.shape, True, nd, call.channels_last)
    index_view = call.view(indices)
    work = call.x.size + math.prod(input_shape)
    depth, height, width = args.kernel_dims(input_shape[len(input_shape) - nd:])
    # per thread: two int rows of W outputs for the index check
    checks = Scratch(2 * index_view.shape[3], np.intc)

    def check_indices():
        bad = Call(_max_pool, "first_invalid_index", (indices.dtype,), (
            *plan.windows, *plan.dilation, plan.channels, depth, height,
            width * plan.channels, *plan.interior[:4], checks, BAND), _bands(index_view),
            work).run([index_view], num_threads)
        if bad >= 0:
            where = call.position(bad, indices)
            raise ValueError(f"indices{list(map(int, where))} = {indices[where]} does not name "
                             f"an element of its pooling window for input_shape {input_shape}")

    if out is not None:  # checked before anything is written
        check_indices()
    result = call.output(out, input_shape, indices)
    grad_view = call.view(result)
    dtypes = (result.dtype, indices.dtype)
    # A new result is checked while it is computed: on failure nobody has seen it.
    pairs = [(call.x, call.view(call.x)), (indices, index_view), (result, grad_view)]
    if plan.owners is not None and indices.dtype != args.COMPACT_INDEX_DTYPE:
        kernel = Call(_max_pool, "backward_owned", dtypes, (plan.owners,), work=work)
        pairs = [(a, view.reshape(len(view), math.prod(view.shape[1:]))) for a, view in pairs]
        valid = call.x.size  # (every index named a tap of its window)
    elif plan.disjoint:
        kernel = Call(_max_pool, "backward_disjoint", dtypes, (
            *plan.windows, *plan.coverage[:2], *plan.dilation, BAND, *plan.interior[:4]),
            _bands(grad_view), work)
        valid = call.x.size  # (every index named a tap of its window)
    else:
        kernel = Call(_max_pool, "backward", dtypes, (
            *plan.windows, *plan.coverage[:2], *plan.dilation, plan.channels, BAND,
            out is None, *plan.interior[:4], checks), _bands(grad_view), work)
        valid = 0  # (no index was invalid)
    kept_as = _plain(kept_as, call, grad_output) if out is None and indices is given else None
    if _launch(kept_as, kernel, pairs, num_threads, 2, valid) != valid:
        check_indices()
    return call.finish(result)


# --- average pooling ------------------------------------------------------------------------

def _avg_pool_nd(kind, x, out, num_threads):
    _, nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override = kind
    arguments = args.avg_arguments(nd, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override)
    return _avg_forward(x, nd, lambda spatial, channels: args.pool_plan(
        spatial, *arguments, channels=channels), out, num_threads, kind)


def _avg_pool_backward_nd(kind, grad_output, out, num_threads):
    (_, nd, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
     divisor_override) = kind
    arguments = args.avg_arguments(nd, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override)
    return _avg_backward(grad_output, input_shape, nd, lambda spatial, channels: args.pool_plan(
        spatial, *arguments, channels=channels), out, num_threads, kind)


# --- max pooling and unpooling ----------------------------------------------------------------

def _max_pool_nd(kind, x, out, num_threads):
    _, nd, kernel_size, stride, padding, dilation, ceil_mode, return_indices = kind
    arguments = args.max_arguments(nd, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_forward(x, nd, lambda spatial, channels: args.pool_plan(
        spatial, *arguments, channels=channels), return_indices, out, num_threads, kind)


def _max_pool_backward_nd(kind, grad_output, indices, out, num_threads):
    _, nd, input_shape, kernel_size, stride, padding, dilation, ceil_mode = kind
    arguments = args.max_arguments(nd, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_backward(grad_output, indices, input_shape, nd, lambda spatial, channels:
                         args.pool_plan(spatial, *arguments, channels=channels), out,
                         num_threads, kind)


def _max_unpool_nd(nd, x, indices, kernel_size, stride, padding, output_size, out,
                   num_threads):
    call = _Pooling("x", x, nd, integers=True, channels_last=False)
    kernel, stride, padding, _ = args.window_arguments(nd, kernel_size, stride, padding, 1)
    spatial = args.unpool_size(call.spatial, kernel, stride, padding, output_size)
    indices = args.index_array(indices, call.x.shape, compact_allowed=False)
    plane_size = math.prod(spatial)
    if indices.size and (indices.min() < 0 or indices.max() >= plane_size):
        bad = np.flatnonzero((indices < 0) | (indices >= plane_size))[0]
        where = np.unravel_index(bad, indices.shape)
        raise ValueError(f"indices{list(map(int, where))} = {indices[where]} is outside the "
                         f"output plane of {plane_size} elements (spatial size {spatial})")
    result = call.output(out, call.batch + spatial, indices)
    result.fill(0)
    planes = math.prod(call.batch)
    pooled_size = math.prod(call.spatial)
    _max_pool.unpool(call.x.reshape(planes, pooled_size), indices.reshape(planes, pooled_size),
                     result.reshape(planes, plane_size),
                     args.thread_count(num_threads, result.size))
    return call.finish(result)


# --- adaptive pooling -------------------------------------------------------------------------

def _adaptive_avg_nd(kind, x, out, num_threads):
    _, nd, output_size = kind
    return _avg_forward(x, nd, _adaptive_plan(output_size), out, num_threads, kind)


def _adaptive_avg_backward_nd(kind, grad_output, out, num_threads):
    _, nd, input_shape = kind
    return _avg_backward(grad_output, input_shape, nd, _adaptive_backward_plan(grad_output, nd),
                         out, num_threads, kind)


def _adaptive_max_nd(kind, x, out, num_threads):
    _, nd, output_size, return_indices = kind
    return _max_forward(x, nd, _adaptive_plan(output_size), return_indices, out, num_threads,
                        kind)


def _adaptive_max_backward_nd(kind, grad_output, indices, out, num_threads):
    _, nd, input_shape = kind
    return _max_backward(grad_output, indices, input_shape, nd,
                         _adaptive_backward_plan(grad_output, nd), out, num_threads, kind)


def _adaptive_plan(output_size):
    """make_plan for adaptive pooling to ``output_size`` (validated against the input)."""
    return lambda spatial, channels: args.adaptive_plan(
        spatial, args.adaptive_output_size(output_size, spatial), channels)


def _adaptive_backward_plan(grad_output, nd):
    """make_plan for an adaptive backward: the output size is grad_output's spatial shape."""
    shape = np.shape(grad_output)
    return _adaptive_plan(tuple(shape[len(shape) - nd:]))


@documented(AVG)
def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None, num_threads=None):
    kind = ("avg", 1, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _prepared.lean(kind, x, None, out, num_threads, _avg_pool_nd)


@documented(AVG_BACKWARD)
def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    kind = ("avg backward", 1, input_shape, kernel_size, stride, padding, ceil_mode,
            count_include_pad, divisor_override)
    return _prepared.lean(kind, grad_output, None, out, num_threads, _avg_pool_backward_nd)


@documented(MAX)
def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    kind = ("max", 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return _prepared.lean(kind, x, None, out, num_threads, _max_pool_nd)


@documented(MAX_BACKWARD)
def max_pool1d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    kind = ("max backward", 1, input_shape, kernel_size, stride, padding, dilation, ceil_mode)
    return _prepared.lean(kind, grad_output, indices, out, num_threads, _max_pool_backward_nd)


@documented(UNPOOL)
def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(1, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)


@documented(ADAPTIVE_AVG)
def adaptive_avg_pool1d(x, output_size, *, out=None, num_threads=None):
    kind = ("adaptive avg", 1, output_size)
    return _prepared.lean(kind, x, None, out, num_threads, _adaptive_avg_nd)


@documented(ADAPTIVE_AVG_BACKWARD)
def adaptive_avg_pool1d_backward(grad_output, input_shape, *, out=None, num_threads=None):
    kind = ("adaptive avg backward", 1, input_shape)
    return _prepared.lean(kind, grad_output, None, out, num_threads, _adaptive_avg_backward_nd)


@documented(ADAPTIVE_MAX)
def adaptive_max_pool1d(x, output_size, return_indices=False, *, out=None, num_threads=None):
    kind = ("adaptive max", 1, output_size, return_indices)
    return _prepared.lean(kind, x, None, out, num_threads, _adaptive_max_nd)


@documented(ADAPTIVE_MAX_BACKWARD)
def adaptive_max_pool1d_backward(grad_output, indices, input_shape, *, out=None,
                                  num_threads=None):
    kind = ("adaptive max backward", 1, input_shape)
    return _prepared.lean(kind, grad_output, indices, out, num_threads, _adaptive_max_backward_nd)


@documented(AVG)
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None, num_threads=None):
    kind = ("avg", 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _prepared.lean(kind, x, None, out, num_threads, _avg_pool_nd)


@documented(AVG_BACKWARD)
def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    kind = ("avg backward", 2, input_shape, kernel_size, stride, padding, ceil_mode,
            count_include_pad, divisor_override)
    return _prepared.lean(kind, grad_output, None, out, num_threads, _avg_pool_backward_nd)


@documented(MAX)
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    kind = ("max", 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return _prepared.lean(kind, x, None, out, num_threads, _max_pool_nd)


@documented(MAX_BACKWARD)
def max_pool2d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    kind = ("max backward", 2, input_shape, kernel_size, stride, padding, dilation, ceil_mode)
    return _prepared.lean(kind, grad_output, indices, out, num_threads, _max_pool_backward_nd)


@documented(UNPOOL)
def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(2, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)


@documented(ADAPTIVE_AVG)
def adaptive_avg_pool2d(x, output_size, *, out=None, num_threads=None):
    kind = ("adaptive avg", 2, output_size)
    return _prepared.lean(kind, x, None, out, num_threads, _adaptive_avg_nd)


@documented(ADAPTIVE_AVG_BACKWARD)
def adaptive_avg_pool2d_backward(grad_output, input_shape, *, out=None, num_threads=None):
    kind = ("adaptive avg backward", 2, input_shape)
    return _prepared.lean(kind, grad_output, None, out, num_threads, _adaptive_avg_backward_nd)


@documented(ADAPTIVE_MAX)
def adaptive_max_pool2d(x, output_size, return_indices=False, *, out=None, num_threads=None):
    kind = ("adaptive max", 2, output_size, return_indices)
    return _prepared.lean(kind, x, None, out, num_threads, _adaptive_max_nd)


@documented(ADAPTIVE_MAX_BACKWARD)
def adaptive_max_pool2d_backward(grad_output, indices, input_shape, *, out=None,
                                  num_threads=None):
    kind = ("adaptive max backward", 2, input_shape)
    return _prepared.lean(kind, grad_output, indices, out, num_threads, _adaptive_max_backward_nd)


@documented(AVG)
def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None, num_threads=None):
    kind = ("avg", 3, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _prepared.lean(kind, x, None, out, num_threads, _avg_pool_nd)


@documented(AVG_BACKWARD)
def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    kind = ("avg backward", 3, input_shape, kernel_size, stride, padding, ceil_mode,
            count_include_pad, divisor_override)
    return _prepared.lean(kind, grad_output, None, out, num_threads, _avg_pool_backward_nd)


@documented(MAX)
def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    kind = ("max", 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return _prepared.lean(kind, x, None, out, num_threads, _max_pool_nd)


@documented(MAX_BACKWARD)
def max_pool3d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    kind = ("max backward", 3, input_shape, kernel_size, stride, padding, dilation, ceil_mode)
    return _prepared.lean(kind, grad_output, indices, out, num_threads, _max_pool_backward_nd)


@documented(UNPOOL)
def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(3, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)


@documented(ADAPTIVE_AVG)
def adaptive_avg_pool3d(x, output_size, *, out=None, num_threads=None):
    kind = ("adaptive avg", 3, output_size)
    return _prepared.lean(kind, x, None, out, num_threads, _adaptive_avg_nd)


@documented(ADAPTIVE_AVG_BACKWARD)
def adaptive_avg_pool3d_backward(grad_output, input_shape, *, out=None, num_threads=None):
    kind = ("adaptive avg backward", 3, input_shape)
    return _prepared.lean(kind, grad_output, None, out, num_threads, _adaptive_avg_backward_nd)


@documented(ADAPTIVE_MAX)
def adaptive_max_pool3d(x, output_size, return_indices=False, *, out=None, num_threads=None):
    kind = ("adaptive max", 3, output_size, return_indices)
    return _prepared.lean(kind, x, None, out, num_threads, _adaptive_max_nd)


@documented(ADAPTIVE_MAX_BACKWARD)
def adaptive_max_pool3d_backward(grad_output, indices, input_shape, *, out=None,
                                  num_threads=None):
    kind = ("adaptive max backward", 3, input_shape)
    return _prepared.lean(kind, grad_output, indices, out, num_threads, _adaptive_max_backward_nd)
