"""fastpool's public pooling functions (names and argument order of torch.nn.functional).

Each function validates and normalises its arguments through ``fastpool._arguments``, gets the
window plan for its input's shape and layout, allocates (or checks) the output, and hands
(planes, D, H, W) views to a Cython kernel that releases the GIL. The 1-D, 2-D and 3-D families
and the adaptive functions share these code paths: lower dimensions are unit dimensions of the
3-D kernels, and adaptive pooling differs from the fixed-window kind only in its plan.
"""

import math
import sys

import numpy as np

from . import _arguments as args
from . import _global_pool
from ._docstrings import (ADAPTIVE_AVG, ADAPTIVE_AVG_BACKWARD, ADAPTIVE_MAX,
                          ADAPTIVE_MAX_BACKWARD, AVG, AVG_BACKWARD, MAX, MAX_BACKWARD, UNPOOL,
                          documented)
from ._kernels import _avg_pool, _max_pool

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
        """The input as (planes, plane_size), for the global-pooling kernels."""
        return self.x.reshape(math.prod(self.batch), math.prod(self.spatial))

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
            self.result = np.empty(shape, self.dtype)  # the common case, directly
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


class _Prepared:
    """A forward kernel call prepared for one signature: the input's shape, strides and dtype
    and the normalised pooling arguments. It holds everything a call needs besides the data
    (views, output shape, plan tables, scratch sizes). The full path builds one and runs it;
    for a plain call (no indices, an input that is C-contiguous, native, not float16) it is
    kept, so that repeated calls skip validation, planning and layout work: the lean path for
    small arrays, where that work costs more than the pooling. It serves calls into a new
    array and into an ``out=`` array that is exactly the one it would make."""

    __slots__ = ("kernel", "in_view", "out_shape", "out_view", "dtype", "scratch", "statics",
                 "banded", "one_band", "serial")

    def __init__(self, kernel, x_view, result, view, scratch, statics, banded):
        self.kernel, self.dtype = _specialised(kernel, view.dtype), view.dtype
        self.in_view, self.out_shape, self.out_view = x_view.shape, result.shape, view.shape
        table = sys.modules[kernel.__module__].plan_table  # (the statics' arrays are tables)
        statics = tuple(table(s) if isinstance(s, np.ndarray) else s for s in statics)
        self.scratch, self.statics, self.banded = scratch, statics, banded
        self.one_band = self._band(1)  # (the common case for small arrays)
        # The kernel's arguments after the views, where every call runs on one thread and
        # needs no scratch: a tiny array's call, at its cheapest.
        self.serial = (*statics, *self.one_band, 1) \
            if not scratch and view.size < args.SERIAL_WORK_LIMIT else None

    def _band(self, threads):
        planes, depth, height, _ = self.out_view
        return (args.band_rows(planes, depth * height, threads),) if self.banded else ()

    def run(self, x_view, view, num_threads):
        """The kernel on the (planes, D, H, W) views of an input and its output."""
        threads = args.thread_count(num_threads, view.size)
        band = self.one_band if threads == 1 else self._band(threads)
        scratch = [args.scratch(threads, size, self.dtype) for size in self.scratch] \
            if self.scratch else ()
        self.kernel(x_view, view, *scratch, *self.statics, *band, threads)

    def takes(self, out, x):
        """Whether ``out`` is exactly what this call writes, as ``args.output_array`` checks
        it: otherwise the full path says what is wrong with it."""
        return (type(out) is np.ndarray and out.shape == self.out_shape
                and out.dtype == self.dtype and out.flags.c_contiguous and out.flags.writeable
                and not np.may_share_memory(out, x))

    def __call__(self, x, num_threads, out=None):
        """The result for ``x``, of the signature this call was prepared for: a new array,
        or ``out`` (which ``takes`` accepted)."""
        result = np.empty(self.out_view, self.dtype) if out is None else \
            out.reshape(self.out_view)
        if self.serial is not None and num_threads is None:  # (any thread count gives one)
            self.kernel(x.reshape(self.in_view), result, *self.serial)
        else:
            self.run(x.reshape(self.in_view), result, num_threads)
        return result.reshape(self.out_shape) if out is None else out


_KERNEL_TYPES = {np.dtype(t): name for t, name in [
    (np.float32, "float"), (np.float64, "double"), (np.int8, "int8_t"), (np.uint8, "uint8_t"),
    (np.int16, "int16_t"), (np.uint16, "uint16_t"), (np.int32, "int32_t"), (np.int64, "int64_t")]}


def _specialised(kernel, dtype):
    """The kernel compiled for ``dtype`` (with int64 indices, where it takes indices): calling
    it directly skips the fused-type dispatch. The fused kernel itself if none matches."""
    for signature, function in getattr(kernel, "__signatures__", {}).items():
        types = signature.split("|")
        if types[0] == _KERNEL_TYPES.get(dtype) and types[1:] in ([], ["int64_t"]):
            return function
    return kernel


_PREPARED = {}  # (kind, nd, normalised arguments, shape, strides, dtype) -> _Prepared


def _prepared(kind, nd, arguments, x):
    """The prepared call for this signature, or None."""
    if type(x) is not np.ndarray:
        return None
    return _PREPARED.get((kind, nd, arguments, x.shape, x.strides, x.dtype))


def _run(key, x, call, num_threads, kernel, x_view, result, view, scratch, statics, banded):
    """Run a forward kernel as a _Prepared call (its arguments after ``num_threads``), and
    keep that for the signature of a plain call (``key`` is (kind, nd, arguments), or None
    where calls are not kept)."""
    prepared = _Prepared(kernel, x_view, result, view, scratch, statics, banded)
    prepared.run(x_view, view, num_threads)
    if key is None or call.x is not x or call.channels_last or call.result.dtype.char == "e":
        return
    if len(_PREPARED) >= 512:
        _PREPARED.clear()
    _PREPARED[key + (x.shape, x.strides, x.dtype)] = prepared


def _avg_forward(x, nd, make_plan, out, num_threads, key=None):
    call = _Pooling("x", x, nd)
    plan = make_plan(call.spatial, call.channels)
    result = call.output(out, call.batch + plan.out_spatial)
    if plan.is_global:
        planes = call.global_planes()
        _global_pool.mean(planes, result.reshape(-1), np.empty(
            len(planes) * args.chunk_count(planes.shape[1]), result.dtype), args.GLOBAL_CHUNK,
            plan.divisor(), args.thread_count(num_threads, call.x.size))
        return call.finish(result)
    views = (call.view(call.x), result, call.view(result))
    if plan.plane_pass is not None:
        kernel_h, kernel_w, _, _, top, left, size = plan.plane_pass
        _run(key, x, call, num_threads, _avg_pool.forward_plane, *views, (size, size),
             (*plan.windows[1:], kernel_h, kernel_w, top, left, plan.scale, *plan.interior[:2]),
             False)
    else:
        _run(key, x, call, num_threads, _avg_pool.forward, *views, (),
             (*plan.windows, *plan.dilation, plan.scale, *plan.interior), True)
    return call.finish(result)


def _avg_backward(grad_output, input_shape, nd, make_plan, out, num_threads):
    call = _Pooling("grad_output", grad_output, nd)
    input_shape = args.shape_tuple("input_shape", input_shape, nd)
    plan = make_plan(input_shape[len(input_shape) - nd:], call.channels)
    args.check_grad_shape(call.x, input_shape[:len(input_shape) - nd] + plan.out_spatial)
    result = call.output(out, input_shape)
    threads = args.thread_count(num_threads, result.size)
    spatial = input_shape[len(input_shape) - nd:]
    if plan.is_global:
        _global_pool.mean_backward(call.x.reshape(-1), result.reshape(-1, math.prod(spatial)),
                                   args.GLOBAL_CHUNK, plan.divisor(), threads)
        return call.finish(result)
    grad_view = call.view(call.x)
    result_view = call.view(result)
    if plan.disjoint:
        _avg_pool.backward_disjoint(grad_view, result_view, *plan.windows, *plan.coverage[:2],
                                    plan.scale, *plan.interior[:4],
                                    _band(result_view, threads),
                                    args.scratch(threads, grad_view.shape[3], result.dtype),
                                    threads)
        return call.finish(result)
    if plan.plane_pass is not None:
        kernel_h, kernel_w, _, _, top, left, _ = plan.plane_pass
        size = (result_view.shape[2] + kernel_h - 1) * (result_view.shape[3] + kernel_w - 1)
        if size <= args.PLANE_PASS_LIMIT:
            shares = args.scratch(threads, size, result.dtype)
            shares.fill(0)  # the border of zeros
            _avg_pool.backward_plane(grad_view, result_view, shares,
                                     args.scratch(threads, size, result.dtype),
                                     *plan.windows[1:], kernel_h, kernel_w, top, left,
                                     plan.scale, *plan.interior[:2], threads)
            return call.finish(result)
    # a row of divided gradients per thread, with room for the zeros around them
    shares = args.scratch(threads, grad_view.shape[3] + result_view.shape[3]
                          + 2 * int(plan.windows[2][1].max()), result.dtype)
    shares.fill(0)
    _avg_pool.backward(grad_view, result_view, *plan.windows, *plan.coverage, plan.channels,
                       plan.scale, *plan.interior[:4], *plan.inner, shares, threads)
    return call.finish(result)


def _max_forward(x, nd, make_plan, return_indices, out, num_threads, key=None):
    call = _Pooling("x", x, nd, integers=True)
    plan = make_plan(call.spatial, call.channels)
    index_dtype = args.index_mode(return_indices, plan)
    result = call.output(out, call.batch + plan.out_spatial)
    indices = None if index_dtype is None else \
        args.output_array(None, result.shape, index_dtype, nd, call.channels_last)
    if plan.is_global and math.prod(call.spatial) >= args.GLOBAL_MAX_MIN_SIZE:
        planes = call.global_planes()
        chunks = len(planes) * args.chunk_count(planes.shape[1])
        flat = indices.reshape(-1) if index_dtype == np.int64 else np.empty(len(planes), np.int64)
        _global_pool.maximum(planes, result.reshape(-1), flat, np.empty(chunks, result.dtype),
                             np.empty(chunks, np.int64), args.GLOBAL_CHUNK,
                             args.thread_count(num_threads, call.x.size))
        if index_dtype == args.COMPACT_INDEX_DTYPE:
            indices.reshape(-1)[:] = flat  # in a whole-plane window, rank = flat position
    elif plan.plane_pass is not None and indices is None:
        *geometry, size = plan.plane_pass
        _run(key, x, call, num_threads, _max_pool.forward_plane, call.view(call.x), result,
             call.view(result), (size,) * 3, (*geometry, args.lowest(result.dtype)), False)
    elif plan.row_taps is not None and _rows_per_window(plan) < 1 << 15 \
            and plan.row_taps.shape[1] < 1 << 16:  # (row and tap numbers share an int32 code)
        threads = args.thread_count(num_threads, result.size)
        view = call.view(result)
        slot_d, slot_h, slots = plan.row_slots
        keys = args.scratch(threads, slots, np.intp)
        keys.fill(-1)  # no row cached yet
        _max_pool.forward_by_rows(
            call.view(call.x), view, _NO_INDICES if indices is None else call.view(indices),
            indices is not None, args.scratch(threads, slots * view.shape[3], result.dtype),
            args.scratch(threads, slots * view.shape[3], np.intc), keys,
            args.scratch(threads, (view.shape[3] - 1) * plan.interior[2] + plan.dilation[2]
                         * (plan.row_taps.shape[1] - 1) + 1, result.dtype), slot_d, slot_h,
            args.scratch(threads, view.shape[3], np.intc), *plan.windows, plan.row_taps,
            plan.first_taps, *plan.dilation, *plan.interior[2:4], args.lowest(result.dtype),
            _band(view, threads), threads)
    else:
        view = call.view(result)
        statics = (*plan.windows, *plan.dilation, plan.channels, *plan.interior,
                   args.lowest(result.dtype))
        if indices is None:  # (the index and rank buffers go unused: None)
            _run(key, x, call, num_threads, _max_pool.forward, call.view(call.x), result, view,
                 (), (None, False, None, None) + statics, True)
        else:  # per-thread scratch rows: winners' ranks, and the flat offset of each rank
            threads = args.thread_count(num_threads, result.size)
            _max_pool.forward(call.view(call.x), view, call.view(indices), True,
                              args.scratch(threads, view.shape[3], np.intc),
                              args.scratch(threads, plan.largest_window(), np.intp), *statics,
                              _band(view, threads), threads)
    result = call.finish(result)
    return result if indices is None else (result, indices)


def _band(view, threads):
    """Rows per task, for the (planes, D, H, W) view whose rows the tasks split (forward's
    output, backward's gradient)."""
    return args.band_rows(view.shape[0], view.shape[1] * view.shape[2], threads)


def _rows_per_window(plan):
    """The most input rows (D and H taps) a window of the plan spans."""
    return int(plan.windows[0][1].max()) * int(plan.windows[1][1].max())


def _max_backward(grad_output, indices, input_shape, nd, make_plan, out, num_threads):
    call = _Pooling("grad_output", grad_output, nd)
    input_shape = args.shape_tuple("input_shape", input_shape, nd)
    plan = make_plan(input_shape[len(input_shape) - nd:], call.channels)
    args.check_grad_shape(call.x, input_shape[:len(input_shape) - nd] + plan.out_spatial)
    indices = args.index_array(indices, call.x.shape, True, nd, call.channels_last)
    index_view = call.view(indices)
    threads = args.thread_count(num_threads, call.x.size + math.prod(input_shape))
    depth, height, width = args.kernel_dims(input_shape[len(input_shape) - nd:])
    scratch = args.scratch(threads, 2 * index_view.shape[3], np.intc)

    def check_indices():
        bad = _max_pool.first_invalid_index(index_view, *plan.windows, *plan.dilation,
                                            plan.channels, depth, height,
                                            width * plan.channels, *plan.interior[:4], scratch,
                                            threads)
        if bad >= 0:
            where = call.position(bad, indices)
            raise ValueError(f"indices{list(map(int, where))} = {indices[where]} does not name "
                             f"an element of its pooling window for input_shape {input_shape}")

    if out is not None:  # checked before anything is written
        check_indices()
    result = call.output(out, input_shape, indices)
    grad_view = call.view(result)
    band = _band(grad_view, threads)
    # A new result is checked while it is computed: on failure nobody has seen it.
    if plan.disjoint:
        invalid = _max_pool.backward_disjoint(
            call.view(call.x), index_view, grad_view, *plan.windows, *plan.coverage[:2],
            *plan.dilation, band, *plan.interior[:4], threads) != call.x.size
    else:
        invalid = _max_pool.backward(call.view(call.x), index_view, grad_view, *plan.windows,
                                     *plan.coverage[:2], *plan.dilation, plan.channels, band,
                                     out is None, *plan.interior[:4], scratch, threads)
    if invalid:
        check_indices()
    return call.finish(result)


# --- average pooling ------------------------------------------------------------------------

def _avg_pool_nd(nd, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override, out, num_threads):
    arguments = args.avg_arguments(nd, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override)
    prepared = _prepared("avg", nd, arguments, x)
    if prepared is not None and (out is None or prepared.takes(out, x)):
        return prepared(x, num_threads, out)
    return _avg_forward(x, nd, lambda spatial, channels: args.pool_plan(
        spatial, *arguments, channels=channels), out, num_threads, ("avg", nd, arguments))


def _avg_pool_backward_nd(nd, grad_output, input_shape, kernel_size, stride, padding,
                          ceil_mode, count_include_pad, divisor_override, out, num_threads):
    arguments = args.avg_arguments(nd, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override)
    return _avg_backward(grad_output, input_shape, nd, lambda spatial, channels: args.pool_plan(
        spatial, *arguments, channels=channels), out, num_threads)


# --- max pooling and unpooling ----------------------------------------------------------------

def _max_pool_nd(nd, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, out,
                 num_threads):
    arguments = args.max_arguments(nd, kernel_size, stride, padding, dilation, ceil_mode)
    plain = return_indices is False
    prepared = _prepared("max", nd, arguments, x) if plain else None
    if prepared is not None and (out is None or prepared.takes(out, x)):
        return prepared(x, num_threads, out)
    return _max_forward(x, nd, lambda spatial, channels: args.pool_plan(
        spatial, *arguments, channels=channels), return_indices, out, num_threads,
        ("max", nd, arguments) if plain else None)


def _max_pool_backward_nd(nd, grad_output, indices, input_shape, kernel_size, stride, padding,
                          dilation, ceil_mode, out, num_threads):
    arguments = args.max_arguments(nd, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_backward(grad_output, indices, input_shape, nd, lambda spatial, channels:
                         args.pool_plan(spatial, *arguments, channels=channels), out, num_threads)


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
    return _avg_pool_nd(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override, out, num_threads)


@documented(AVG_BACKWARD)
def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    return _avg_pool_backward_nd(1, grad_output, input_shape, kernel_size, stride, padding,
                                 ceil_mode, count_include_pad, divisor_override, out,
                                 num_threads)


@documented(MAX)
def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    return _max_pool_nd(1, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices, out, num_threads)


@documented(MAX_BACKWARD)
def max_pool1d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    return _max_pool_backward_nd(1, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode, out, num_threads)


@documented(UNPOOL)
def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(1, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)


@documented(ADAPTIVE_AVG)
def adaptive_avg_pool1d(x, output_size, *, out=None, num_threads=None):
    return _avg_forward(x, 1, _adaptive_plan(output_size), out, num_threads)


@documented(ADAPTIVE_AVG_BACKWARD)
def adaptive_avg_pool1d_backward(grad_output, input_shape, *, out=None, num_threads=None):
    return _avg_backward(grad_output, input_shape, 1,
                         _adaptive_backward_plan(grad_output, 1), out, num_threads)


@documented(ADAPTIVE_MAX)
def adaptive_max_pool1d(x, output_size, return_indices=False, *, out=None, num_threads=None):
    return _max_forward(x, 1, _adaptive_plan(output_size), return_indices, out, num_threads)


@documented(ADAPTIVE_MAX_BACKWARD)
def adaptive_max_pool1d_backward(grad_output, indices, input_shape, *, out=None,
                                  num_threads=None):
    return _max_backward(grad_output, indices, input_shape, 1,
                         _adaptive_backward_plan(grad_output, 1), out, num_threads)


@documented(AVG)
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None, num_threads=None):
    return _avg_pool_nd(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override, out, num_threads)


@documented(AVG_BACKWARD)
def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    return _avg_pool_backward_nd(2, grad_output, input_shape, kernel_size, stride, padding,
                                 ceil_mode, count_include_pad, divisor_override, out,
                                 num_threads)


@documented(MAX)
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    return _max_pool_nd(2, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices, out, num_threads)


@documented(MAX_BACKWARD)
def max_pool2d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    return _max_pool_backward_nd(2, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode, out, num_threads)


@documented(UNPOOL)
def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(2, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)


@documented(ADAPTIVE_AVG)
def adaptive_avg_pool2d(x, output_size, *, out=None, num_threads=None):
    return _avg_forward(x, 2, _adaptive_plan(output_size), out, num_threads)


@documented(ADAPTIVE_AVG_BACKWARD)
def adaptive_avg_pool2d_backward(grad_output, input_shape, *, out=None, num_threads=None):
    return _avg_backward(grad_output, input_shape, 2,
                         _adaptive_backward_plan(grad_output, 2), out, num_threads)


@documented(ADAPTIVE_MAX)
def adaptive_max_pool2d(x, output_size, return_indices=False, *, out=None, num_threads=None):
    return _max_forward(x, 2, _adaptive_plan(output_size), return_indices, out, num_threads)


@documented(ADAPTIVE_MAX_BACKWARD)
def adaptive_max_pool2d_backward(grad_output, indices, input_shape, *, out=None,
                                  num_threads=None):
    return _max_backward(grad_output, indices, input_shape, 2,
                         _adaptive_backward_plan(grad_output, 2), out, num_threads)


@documented(AVG)
def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None, num_threads=None):
    return _avg_pool_nd(3, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override, out, num_threads)


@documented(AVG_BACKWARD)
def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        out=None, num_threads=None):
    return _avg_pool_backward_nd(3, grad_output, input_shape, kernel_size, stride, padding,
                                 ceil_mode, count_include_pad, divisor_override, out,
                                 num_threads)


@documented(MAX)
def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None, num_threads=None):
    return _max_pool_nd(3, x, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices, out, num_threads)


@documented(MAX_BACKWARD)
def max_pool3d_backward(grad_output, indices, input_shape, kernel_size, stride=None,
                        padding=0, dilation=1, ceil_mode=False, *, out=None, num_threads=None):
    return _max_pool_backward_nd(3, grad_output, indices, input_shape, kernel_size, stride,
                                 padding, dilation, ceil_mode, out, num_threads)


@documented(UNPOOL)
def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 out=None, num_threads=None):
    return _max_unpool_nd(3, x, indices, kernel_size, stride, padding, output_size, out,
                          num_threads)


@documented(ADAPTIVE_AVG)
def adaptive_avg_pool3d(x, output_size, *, out=None, num_threads=None):
    return _avg_forward(x, 3, _adaptive_plan(output_size), out, num_threads)


@documented(ADAPTIVE_AVG_BACKWARD)
def adaptive_avg_pool3d_backward(grad_output, input_shape, *, out=None, num_threads=None):
    return _avg_backward(grad_output, input_shape, 3,
                         _adaptive_backward_plan(grad_output, 3), out, num_threads)


@documented(ADAPTIVE_MAX)
def adaptive_max_pool3d(x, output_size, return_indices=False, *, out=None, num_threads=None):
    return _max_forward(x, 3, _adaptive_plan(output_size), return_indices, out, num_threads)


@documented(ADAPTIVE_MAX_BACKWARD)
def adaptive_max_pool3d_backward(grad_output, indices, input_shape, *, out=None,
                                  num_threads=None):
    return _max_backward(grad_output, indices, input_shape, 3,
                         _adaptive_backward_plan(grad_output, 3), out, num_threads)
