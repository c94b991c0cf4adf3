"""Argument normalisation, validation and shape arithmetic for every fastpool function.

This module is the one source of truth for what a call means. It turns user arguments into
plain tuples, checks them (raising ValueError/TypeError that name the parameter and the value,
before any output is touched), computes output sizes, and builds the per-dimension window
tables the kernels run on. The kernels trust what comes out of here.

Window tables. The kernels see every input as (planes, D, H, W): 2-D pooling has D = 1, 1-D has
D = H = 1. Along each spatial dimension the windows are a ``(3, out)`` intp table (see
``pool_plan``): ``[0]`` the first in-bounds tap, ``[1]`` the number of in-bounds taps (one every
``dilation``), ``[2]`` that dimension's factor of the average divisor. The divisor is separable
(pool sizes and in-bounds counts are products over dimensions), so the average kernels divide by
``scale * fd[od] * fh[oh] * fw[ow]`` with ``scale = divisor_override`` (the factors then 1).
The transpose, for the backward gathers, is a ``(2, in)`` table per dimension: the contiguous
range of windows whose span contains each input index.
"""

import functools
import math
import numbers
from typing import NamedTuple

import numpy as np

from . import _build_info, _output_cache

FLOAT_DTYPES = tuple(map(np.dtype, (np.float16, np.float32, np.float64)))
# Max pooling and unpooling also take integers, exactly.
INTEGER_DTYPES = tuple(map(np.dtype, (np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                      np.int64)))
_SUPPORTED = {False: frozenset(FLOAT_DTYPES), True: frozenset(FLOAT_DTYPES + INTEGER_DTYPES)}

# Below this many output elements a call runs on one thread: starting a team costs more than
# the work.
SERIAL_WORK_LIMIT = 1 << 15

# Stride-1 pooling of planes up to this many elements (with their padding) runs a plane at a
# time, each pass of taps over the whole flattened plane: on small planes (28x28 Inception,
# 20x20 SPPF) per-row loops cost more than the work. So does max pooling without indices
# whose windows overlap down the columns at stride H 1 (a stride W above 1 allowed).
PLANE_PASS_LIMIT = 1 << 16
# Max pooling's backward where no input lies in two windows takes a plane at a time up to
# this many elements a plane (``backward_owned``), as each row's work costs more than the
# row on small planes.
OWNED_PLANE_LIMIT = 1 << 12

# Global pooling reduces planes in chunks of this many elements (a fixed size, so the result
# does not depend on the thread count).
GLOBAL_CHUNK = 1 << 14


# --- scalars and tuples -------------------------------------------------------------------

def _is_int(value):
    return type(value) is int or (isinstance(value, numbers.Integral)
                                  and not isinstance(value, (bool, np.bool_)))


def spatial_tuple(name, value, nd, minimum):
    """``value`` (an int or a sequence of ``nd`` ints) as a tuple of ``nd`` ints >= minimum."""
    if _is_int(value):
        values = (int(value),) * nd
    elif isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        if len(value) != nd:
            raise ValueError(f"{name} must be an int or a sequence of {nd} ints, got {value!r}")
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{name} must be an int or a sequence of {nd} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def optional_positive_int(name, value):
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(f"{name} must be None or an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def thread_count(num_threads, work):
    """How many OpenMP threads a call uses: ``num_threads``, or OpenMP's maximum when None
    (which honours OMP_NUM_THREADS and threadpoolctl); one for tiny work."""
    if num_threads is None:
        num_threads = _build_info.max_threads()
    elif not _is_int(num_threads):
        raise TypeError(f"num_threads must be None or an int, got {num_threads!r}")
    elif num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads!r}")
    return 1 if work < SERIAL_WORK_LIMIT else int(num_threads)


def chunk_count(plane_size):
    """How many GLOBAL_CHUNK pieces a plane of ``plane_size`` elements is reduced in."""
    return -(-plane_size // GLOBAL_CHUNK)


def band_rows(planes, rows, threads):
    """Rows per task when a kernel splits each plane's ``rows`` into bands: whole planes when
    there are enough of them, else bands small enough for about four tasks per thread, and
    where the rows allow, as many tasks for each thread (they are handed out in equal shares):
    (1, 3, 1024, 1024) in 9 tasks kept one of two threads busy 25% longer than the other: in
    12, its 2x2/2 max forward 0.60 -> 0.49 ms; in 12 bands of 256 rows, not of 341, 341, 341
    and 1, 0.355 -> 0.330 ms, backward 1.01 -> 0.91 ms (medians of 20 interleaved rounds)."""
    if threads == 1 or planes >= 4 * threads:
        return max(rows, 1)
    bands = min(rows, -(-4 * threads // max(planes, 1)))
    size = -(-rows // bands)
    while size > 1 and planes * -(-rows // size) % threads:  # (the bands that size makes)
        bands += 1
        size = -(-rows // bands)
    return size


# --- arrays -------------------------------------------------------------------------------

def _layout_names(nd):
    return {1: "(N, C, L) or (C, L)", 2: "(N, C, H, W) or (C, H, W)",
            3: "(N, C, D, H, W) or (C, D, H, W)"}[nd]


def is_channels_last(a, nd):
    """Whether ``a`` (axes (N, C, spatial...) or (C, spatial...)) lies in memory as
    (N, spatial..., C): C-contiguous once the channel axis is moved last, and not already
    C-contiguous as it stands (as when C == 1)."""
    return (not a.flags.c_contiguous
            and np.moveaxis(a, a.ndim - nd - 1, -1).flags.c_contiguous)


def input_array(name, x, nd, channels_last=False, integers=False):
    """``x`` as a native-endian array of nd + 1 or nd + 2 dimensions with non-empty spatial
    dimensions, of a float dtype (or, where ``integers``, an integer one), C-contiguous or,
    where the caller's kernels take it, channels-last."""
    if (type(x) is np.ndarray and x.dtype in _SUPPORTED[integers] and x.flags.c_contiguous
            and nd + 1 <= x.ndim <= nd + 2 and 0 not in x.shape[x.ndim - nd:]):
        return x  # the common case, in a few checks
    x = np.asarray(x)
    if x.dtype not in _SUPPORTED[integers] and (
            x.dtype.isnative or x.dtype.newbyteorder("=") not in _SUPPORTED[integers]):
        supported = FLOAT_DTYPES + (INTEGER_DTYPES if integers else ())
        raise TypeError(f"{name} has dtype {x.dtype}; supported dtypes are "
                        f"{', '.join(map(str, supported))}")
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{name} must have shape {_layout_names(nd)}, got shape {x.shape}")
    if 0 in x.shape[x.ndim - nd:]:
        raise ValueError(f"{name} has shape {x.shape}: its spatial dimensions must be non-empty")
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))  # order "K": keeps a channels-last layout
    if channels_last and is_channels_last(x, nd):
        return x
    return np.ascontiguousarray(x)


def shape_tuple(name, shape, nd):
    """An ``input_shape`` argument as a tuple of nd + 1 or nd + 2 non-negative ints."""
    if not isinstance(shape, (tuple, list)) or not all(_is_int(v) for v in shape):
        raise TypeError(f"{name} must be a tuple of ints, got {shape!r}")
    if (len(shape) not in (nd + 1, nd + 2) or any(v < 0 for v in shape)
            or 0 in shape[len(shape) - nd:]):
        raise ValueError(f"{name} must be a shape {_layout_names(nd)} with non-negative sizes "
                         f"and non-empty spatial sizes, got {tuple(shape)!r}")
    return tuple(int(v) for v in shape)


def lowest(dtype):
    """The identity of max in ``dtype``: -inf, or an integer type's least value."""
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def output_array(out, shape, dtype, nd, channels_last, *sources):
    """A new output array of ``shape`` in the given layout, or ``out`` checked to be exactly
    what the kernel will write (and sharing no memory with the arrays it reads)."""
    if out is None:
        if not channels_last:
            return _output_cache.empty(shape, dtype)
        axis = len(shape) - nd - 1
        return np.moveaxis(_output_cache.empty(shape[:axis] + shape[axis + 1:]
                                               + shape[axis:axis + 1], dtype), -1, axis)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if channels_last and not is_channels_last(out, nd):
        raise ValueError("out must be channels-last, like the input it is computed from")
    if not channels_last and not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if any(np.may_share_memory(out, source) for source in sources):
        raise ValueError("out overlaps an input array")
    return out


def kernel_dims(spatial):
    """The (D, H, W) sizes the kernels see for these spatial sizes (leading unit dimensions)."""
    return (1,) * (3 - len(spatial)) + tuple(spatial)


def planes_view(a, nd, channels_last=False):
    """The (planes, D, H, W) view the kernels take: planes = N * C for a C-contiguous array;
    for a channels-last one planes = N and the last axis holds W * C interleaved values."""
    shape = a.shape
    if not channels_last:
        return a.reshape((math.prod(shape[:len(shape) - nd]),) + (1,) * (3 - nd)
                         + shape[len(shape) - nd:])
    axis = a.ndim - nd - 1
    depth, height, width = kernel_dims(a.shape[a.ndim - nd:])
    return np.moveaxis(a, axis, -1).reshape(
        (math.prod(a.shape[:axis]), depth, height, width * a.shape[axis]))


FLAT_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
COMPACT_INDEX_DTYPE = np.dtype(np.uint8)


def index_mode(return_indices, plan):
    """The index array a max-pooling forward returns: None, int64 (flat) or uint8 (compact)."""
    if isinstance(return_indices, str):
        if return_indices != "compact":
            raise ValueError(f"return_indices must be False, True or 'compact', "
                             f"got {return_indices!r}")
        largest = plan.largest_window()
        if largest > 256:
            raise ValueError(f"return_indices='compact' needs windows of at most 256 elements; "
                             f"these windows have up to {largest}")
        return COMPACT_INDEX_DTYPE
    return np.dtype(np.int64) if flag("return_indices", return_indices) else None


def index_array(indices, shape, compact_allowed, nd=None, channels_last=False):
    """``indices`` as a native integer array of ``shape``, C-contiguous or channels-last:
    int32/int64 flat indices or, where ``compact_allowed``, uint8 compact ones."""
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"indices must be a numpy.ndarray, got {type(indices).__name__}")
    allowed = FLAT_INDEX_DTYPES + ((COMPACT_INDEX_DTYPE,) if compact_allowed else ())
    if indices.dtype.newbyteorder("=") not in allowed:
        names = ", ".join(str(dtype) for dtype in allowed)
        raise TypeError(f"indices has dtype {indices.dtype}; supported dtypes are {names}")
    if indices.shape != tuple(shape):
        raise ValueError(f"indices has shape {indices.shape}, expected {tuple(shape)}")
    indices = indices.astype(indices.dtype.newbyteorder("="), copy=False)
    if not channels_last:
        return np.ascontiguousarray(indices)
    axis = indices.ndim - nd - 1
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(indices, axis, -1)), -1, axis)


def unpool_size(spatial, kernel, stride, padding, output_size):
    """Output spatial size of max_unpool: torch's default, or ``output_size`` (its last nd
    entries) checked to lie strictly within one stride of the default."""
    default = tuple((n - 1) * s + k - 2 * p for n, k, s, p in zip(spatial, kernel, stride, padding))
    if output_size is None:
        if min(default) < 1:
            raise ValueError(f"kernel_size {kernel}, stride {stride} and padding {padding} give "
                             f"an empty unpooled size {default}")
        return default
    nd = len(spatial)
    if not isinstance(output_size, (tuple, list)) or not all(_is_int(v) for v in output_size):
        raise TypeError(f"output_size must be None or a sequence of ints, got {output_size!r}")
    if len(output_size) not in (nd, nd + 1, nd + 2):
        raise ValueError(f"output_size must have {nd} entries (or the full shape), "
                         f"got {output_size!r}")
    size = tuple(int(v) for v in output_size[len(output_size) - nd:])
    for n, d, s in zip(size, default, stride):
        if n < 1 or not d - s < n < d + s:
            low = tuple(d - s for d, s in zip(default, stride))
            high = tuple(d + s for d, s in zip(default, stride))
            raise ValueError(f"output_size {tuple(output_size)} must lie strictly between "
                             f"{low} and {high}")
    return size


def check_grad_shape(grad_output, expected):
    if grad_output.shape != tuple(expected):
        raise ValueError(f"grad_output has shape {grad_output.shape}, but the input shape and "
                         f"pooling parameters give an output of shape {tuple(expected)}")


# --- output sizes and window tables -------------------------------------------------------

def pooled_size(name, size, kernel, stride, padding, dilation, ceil_mode):
    """Output length along one dimension, exactly as PyTorch computes it."""
    span = dilation * (kernel - 1) + 1
    if padding > span // 2:
        raise ValueError(f"padding must be at most half the effective kernel size "
                         f"(({kernel} - 1) * {dilation} + 1) // 2 = {span // 2}, got {padding}")
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # a window may not start in the right padding
    if out < 1:
        raise ValueError(f"{name} size {size} is too small for kernel_size {kernel}, "
                         f"dilation {dilation}, padding {padding}: the output would be empty")
    return out


class PlanePass(NamedTuple):
    """The (H, W) geometry of a plane-at-a-time kernel, which copies each plane with its
    padding into ``size`` elements of rows of ``pitch`` (a multiple of stride W, so that a pass
    at that stride over the flattened rows meets each row's windows at the same columns), the
    input's element (0, 0) at ``padding``."""
    kernel: tuple
    stride: tuple
    dilation: tuple
    padding: tuple
    pitch: int
    size: int


class PoolPlan(NamedTuple):
    out_spatial: tuple  # output sizes of the real spatial dimensions
    windows: tuple      # D, H, W: (3, out) intp: first in-bounds tap, tap count, divisor factor
    coverage: tuple     # D, H, W: (2, in) intp: the windows whose span holds each input index
    dilation: tuple     # D, H, W (for channels-last, W's is multiplied by channels)
    channels: int       # C for a channels-last array, else 1
    scale: int          # divisor_override, or 1
    # W outputs [lo, hi) whose windows are whole and regular, in blocks of ``block`` outputs
    # (1, or C for channels-last): block b's first taps are b * stride + offset + [0, block).
    interior: tuple = (0, 0, 1, 0, 1)
    inner: tuple = (0, 0)           # W inputs [lo, hi) covered by interior windows only
    is_global: bool = False         # one window per plane holding every element (either layout)
    # For the row-maxima max kernel (C order, fixed windows whose rows overlap, so that a row's
    # maxima serve several output rows): per W tap j, the outputs [lo, hi) it lies in bounds
    # for ((2, kernel) intp), and each output's first in-bounds tap ((out,) intp); else None.
    row_taps: object = None
    first_taps: object = None
    # and where it caches input row (d, h): slot_d[d] + slot_h[h] of ``slots`` ((in,) intp,
    # (in,) intp, int): distinct for the rows of any one window
    row_slots: object = None
    # For the plane-at-a-time kernels (C order, D = 1, small planes, stride H 1): a PlanePass;
    # else None.
    plane_pass: object = None
    # For max pooling's down-then-across kernel (C order, 2-D, rows overlapping at a stride H
    # above 1): (kernel W, stride W, padding W, width of the padded row); else None.
    down_across: object = None
    # C order, no input in two windows' spans along any dimension, no empty window: backward
    # can write each input once (the kernels' ``backward_disjoint``).
    disjoint: bool = False
    # For disjoint plans on planes of up to OWNED_PLANE_LIMIT elements: per plane position,
    # the output whose window holds it as a tap, or -1 ((D * H * W,) int32, for the max
    # backward's ``backward_owned``); else None.
    owners: object = None

    def largest_window(self):
        """The most in-bounds taps any window has."""
        return math.prod(int(window[1].max()) for window in self.windows)

    def divisor(self):
        """The average divisor of a global plan's one window."""
        return self.scale * math.prod(int(window[2, 0]) for window in self.windows)


def _frozen(*rows):
    table = np.array(rows, dtype=np.intp).reshape(len(rows), -1)
    table.flags.writeable = False
    return table


def _dimension_tables(size, start, first, taps, factor, span_end):
    """The window table and the coverage table of one dimension. Windows are given by their
    span [start, span_end) (monotone in the output index), first in-bounds tap, tap count and
    divisor factor; input i is covered by the contiguous range of windows whose span holds it."""
    index = np.arange(size)
    first_window = np.searchsorted(span_end, index, side="right")
    end_window = np.searchsorted(start, index, side="right")
    return (_frozen(first, taps, factor),
            _frozen(first_window, np.maximum(first_window, end_window)))


def _plan(out_spatial, tables, dilation, channels, scale=1, interior=(0, 0, 1, 0, 1),
          row_taps=None, first_taps=None, row_slots=None, plane_pass=None, down_across=None):
    """A PoolPlan from per-dimension (window, coverage) tables, with the leading unit
    dimensions of the (D, H, W) kernels added.

    For a channels-last array the kernels' last axis interleaves W and C (position w * C + c),
    so its tables list one window per (ow, c), taps C times further apart, and the coverage of
    each (w, c) steps through the windows of channel c only (every C-th entry).
    """
    dilation = list(dilation)
    is_global = all(window.shape[1] == 1 and window[0, 0] == 0
                    and window[1, 0] == coverage.shape[1] and step == 1
                    for (window, coverage), step in zip(tables, dilation))
    if channels > 1:
        c = np.arange(channels)
        (first, taps, factor), (begin, end) = tables[-1]
        tables[-1] = (_frozen((first[:, None] * channels + c).ravel(),
                              np.repeat(taps, channels), np.repeat(factor, channels)),
                      _frozen((begin[:, None] * channels + c).ravel(),
                              (end[:, None] * channels + c).ravel()))
        dilation[-1] *= channels
        low, high, stride, offset, _ = interior
        interior = (low * channels, high * channels, stride * channels, offset * channels,
                    channels)
        # (kernels for C order)
        row_taps = first_taps = row_slots = plane_pass = down_across = None
    low, high = interior[:2]
    begin, end = tables[-1][1]
    # (the vectorised backward runs on C-order arrays only)
    inner = np.flatnonzero((begin >= low) & (end <= high)) if high > low and channels == 1 else ()
    disjoint = channels == 1 and all(
        (coverage[1] - coverage[0]).max(initial=0) <= 1 and window[1].min(initial=1) > 0
        for window, coverage in tables)
    owners = None
    if disjoint and math.prod(c.shape[1] for _, c in tables) <= OWNED_PLANE_LIMIT:
        owners = _tap_owners(tables, dilation)
    unit = 3 - len(out_spatial)
    return PoolPlan(tuple(out_spatial), (_frozen(0, 1, 1),) * unit + tuple(w for w, _ in tables),
                    (_frozen(0, 1),) * unit + tuple(c for _, c in tables),
                    (1,) * unit + tuple(dilation), channels, scale, interior,
                    (int(inner[0]), int(inner[-1]) + 1) if len(inner) else (0, 0), is_global,
                    row_taps, first_taps, row_slots, plane_pass, down_across, disjoint, owners)


def _tap_owners(tables, dilation):
    """PoolPlan.owners for windows that share no input: per flat plane position, the flat
    output index whose window holds it as a tap, or -1."""
    nd = len(tables)
    flat, taken = np.zeros((1,) * 2 * nd, np.intp), np.ones((1,) * 2 * nd, bool)
    for axis, ((window, coverage), step) in enumerate(zip(tables, dilation)):
        first, taps = window[0], window[1]
        j = np.arange(int(taps.max(initial=1)))
        shape = [1] * 2 * nd
        shape[axis], shape[nd + axis] = len(first), len(j)
        flat = flat * coverage.shape[1] + (first[:, None] + j * step).reshape(shape)
        taken = taken & (j < taps[:, None]).reshape(shape)
    outputs = np.arange(math.prod(len(w[0]) for w, _ in tables)).reshape(taken.shape[:nd])
    owners = np.full(math.prod(c.shape[1] for _, c in tables), -1, np.int32)
    owners[np.broadcast_to(flat, taken.shape)[taken]] = np.broadcast_to(
        outputs.reshape(outputs.shape + (1,) * nd), taken.shape)[taken]
    owners.flags.writeable = False
    return owners


@functools.lru_cache(maxsize=512)
def pool_plan(spatial, kernel, stride, padding, dilation, ceil_mode, count_include_pad=True,
              divisor_override=None, channels=1):
    """Output sizes and window tables for pooling over ``spatial`` (normalised arguments).

    Window o along a dimension has taps at ``o * stride - padding + j * dilation`` for j in
    [0, kernel); only in-bounds taps are listed (padding never reaches the kernels). The
    divisor factor is the window's size clipped to input + padding (count_include_pad), its
    number of in-bounds taps, or 1 when divisor_override is given.
    """
    out_spatial, tables = [], []
    for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation):
        out = pooled_size("input", size, k, s, p, d, ceil_mode)
        start = np.arange(out) * s - p
        skipped = (np.maximum(-start, 0) + d - 1) // d      # taps in the left padding
        first = start + skipped * d
        taps = np.clip((size - first + d - 1) // d, 0, k - skipped)
        if divisor_override is not None:
            factor = np.ones(out)
        elif count_include_pad:
            factor = np.minimum(start + k, size + p) - start
        else:
            factor = taps
        out_spatial.append(out)
        tables.append(_dimension_tables(size, start, first, taps, factor,
                                        start + (k - 1) * d + 1))
    # Along W (the loop's last values are W's), the outputs whose k taps all lie in the input
    # form one range; and tap j lies in bounds for outputs [lo_j, hi_j).
    low = min(-(-p // s), out)
    high = max(low, min(out, (size - 1 - (k - 1) * d + p) // s + 1))
    offsets = np.arange(k) * d - p
    tap_low = np.clip(-(offsets // s), 0, out)  # ceil(-offset / s)
    tap_high = np.maximum(tap_low, np.clip((size - 1 - offsets) // s + 1, 0, out))
    rows_overlap = any((k_ - 1) * d_ + 1 > s_ for k_, s_, d_
                       in zip(kernel[:-1], stride[:-1], dilation[:-1]))
    row_taps = first_taps = row_slots = None
    if rows_overlap:
        row_taps, first_taps = _frozen(tap_low, tap_high), _frozen(skipped)[0]
        (depth, height, _), unit = kernel_dims(spatial), (1,) * (3 - len(spatial))
        span_d, span_h = (unit + tuple((k_ - 1) * d_ + 1 for k_, d_ in zip(kernel, dilation)))[:2]
        row_slots = (_frozen(np.arange(depth) % span_d * span_h)[0],
                     _frozen(np.arange(height) % span_h)[0], span_d * span_h)
    plane_pass = down_across = None
    if len(spatial) == 2 and rows_overlap and stride[0] > 1:  # (k, s, p, d, size, out: W's)
        down_across = (k, s, p, max((out - 1) * s + (k - 1) * d + 1, p + size))
    elif len(spatial) <= 2:
        (kh, kw), (sh, sw), (dh, dw), (ph, pw), (in_h, in_w) = (
            (unit,) * (2 - len(spatial)) + tuple(v) for v, unit in (
                (kernel, 1), (stride, 1), (dilation, 1), (padding, 0), (spatial, 1)))
        out_h = out_spatial[-2] if len(spatial) == 2 else 1
        # every window, and the input at (ph, pw), inside rows of a multiple of sw
        pitch = -(-max((out - 1) * sw + (kw - 1) * dw + 1, pw + in_w) // sw) * sw
        size = max((out_h - 1) * sh + (kh - 1) * dh + 1, ph + in_h) * pitch
        if size <= PLANE_PASS_LIMIT and (rows_overlap or (sh, sw) == (1, 1)):
            plane_pass = PlanePass((kh, kw), (sh, sw), (dh, dw), (ph, pw), pitch, size)
    return _plan(out_spatial, tables, dilation, channels, divisor_override or 1,
                 (low, high, s, -p, 1), row_taps, first_taps, row_slots, plane_pass,
                 down_across)


@functools.lru_cache(maxsize=512)
def adaptive_plan(spatial, out_spatial, channels=1):
    """Window tables for adaptive pooling: output o of n covers [floor(o * in / n),
    ceil((o + 1) * in / n)), in integer arithmetic; the divisor is the window's size."""
    tables = []
    for size, out in zip(spatial, out_spatial):
        o = np.arange(out)
        start, end = o * size // out, -(-(o + 1) * size // out)
        tables.append(_dimension_tables(size, start, start, end - start, end - start, end))
    # (the loop's last values are W's)
    return _plan(out_spatial, tables, (1,) * len(spatial), channels,
                 interior=_regular_run(start, end - start) + (1,))


def _regular_run(first, taps):
    """The longest run [low, high) of windows with one tap count whose first taps step by one
    stride >= 1: (low, high, stride, offset), first[o] = o * stride + offset there; the
    kernels fold those as a fixed window's, not one by one (where the input size is a
    multiple of the output size, every window: (32, 512, 14, 14) -> 7x7 8-11x faster). A run
    at stride 1 counts only if it holds every window: the stride-1 average backward gathers
    the windows around it as clipped copies of it, as fixed windows' edges are."""
    best = (0, 0, 1, 0)
    low = 0
    while low < len(first) - 1:
        stride, high = int(first[low + 1] - first[low]), low + 1
        while (stride >= 1 and high < len(first) and taps[high] == taps[low]
               and first[high] - first[high - 1] == stride):
            high += 1
        if high - low > max(best[1] - best[0], 1) and (stride > 1 or high - low == len(first)):
            best = (low, high, stride, int(first[low]) - low * stride)
        low = high if high > low + 1 else low + 1
    return best


def adaptive_output_size(output_size, spatial):
    """``output_size`` (an int, or one int or None per dimension; None keeps that input size)
    as a tuple of ints >= 1."""
    nd = len(spatial)
    if isinstance(output_size, (tuple, list)) and len(output_size) == nd:
        output_size = tuple(n if v is None else v for v, n in zip(output_size, spatial))
    return spatial_tuple("output_size", output_size, nd, 1)


def _memoised(function):
    """Cache a normalisation on its raw arguments, types included: those of the arguments (so
    True is not taken for 1) and of a tuple's items (so (2.0, 2.0), equal to (2, 2), is still
    refused). Arguments that cannot be hashed, such as lists, are normalised afresh. Errors are
    never cached."""
    arity = function.__code__.co_argcount
    cached = functools.lru_cache(maxsize=1024, typed=True)(lambda *key: function(*key[:arity]))

    @functools.wraps(function)
    def normalise(*arguments):
        try:
            return cached(*arguments, *[tuple(map(type, a)) for a in arguments
                                        if type(a) is tuple])
        except TypeError as error:
            if "unhashable" not in str(error):
                raise
            return function(*arguments)
    return normalise


def window_arguments(nd, kernel_size, stride, padding, dilation):
    """Normalised (kernel, stride, padding, dilation) tuples; stride None means kernel_size."""
    kernel = spatial_tuple("kernel_size", kernel_size, nd, 1)
    stride = kernel if stride is None else spatial_tuple("stride", stride, nd, 1)
    return (kernel, stride, spatial_tuple("padding", padding, nd, 0),
            spatial_tuple("dilation", dilation, nd, 1))


@_memoised
def avg_arguments(nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override):
    """Normalised average-pooling arguments, in pool_plan's order (less the spatial shape)."""
    return window_arguments(nd, kernel_size, stride, padding, 1) + (
        flag("ceil_mode", ceil_mode), flag("count_include_pad", count_include_pad),
        optional_positive_int("divisor_override", divisor_override))


@_memoised
def max_arguments(nd, kernel_size, stride, padding, dilation, ceil_mode):
    """Normalised max-pooling arguments, in pool_plan's order (less the spatial shape)."""
    return window_arguments(nd, kernel_size, stride, padding, dilation) + (
        flag("ceil_mode", ceil_mode),)
