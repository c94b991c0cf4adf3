"""Average pooling kernels, forward and backward.

Layout: arrays are (planes, D, H, W), C-contiguous (planes = N * C; 2-D pooling has D = 1,
1-D has D = H = 1; for a channels-last array planes = N and W holds w * C + c, channels
innermost). Windows come as per-dimension tables built by fastpool._arguments: window o has
``w*[1, o]`` in-bounds taps from ``w*[0, o]``, one every ``d*`` (1, or C along a channels-last
W), and ``w*[2, o]`` is its factor of the divisor, so its average is its sum /
(scale * wd[2] * wh[2] * ww[2]). Padding adds zeros, so it adds nothing to the sum.
``c*[0, i]:c*[1, i]`` is the range of windows containing input index i, stepping by
``channels`` along W (only the windows of i's own channel).

Parallelism: a prange over bands of one plane's output rows (forward) or over input rows
(backward), so that few planes with large images still use every thread. Forward runs the
interior of each output row (windows wholly inside the input) over contiguous outputs,
several taps per vectorised pass (``_tap_loops``); the clipped edge windows are summed one
by one (channels-last: folded as the others, a column's windows being alike across
channels). ``forward_plane`` (stride 1, small planes) works a plane at a time on a
zero-padded copy, each pass over the whole flattened plane (floats: in vector instructions,
``_simd_passes``, each output row's sums divided and written as they are made). All add a
window's taps in the same (d, h, w) order, and padding zeros change no bits, so every path
gives the same sums. Each row is written by exactly one thread and each element is a
fixed-order sum, so results are bit-identical for any thread count.

Backward is the transpose of the forward map: every input element sums grad_output / divisor
over every window that contains it, in output order. With stride 1 along W, each input row
gathers its windows' divided gradients from a zero-padded row in one pass (a fold, as
forward; small planes a plane at a time, floats in vector instructions); otherwise inputs
covered by interior windows only get them by spreading each divided gradient row over
contiguous inputs (vectorised), and the others gather them window by window. Overlapping
windows (stride < kernel) need no atomics, and uncovered inputs get an exact 0. Where no two
windows share an input, ``backward_disjoint`` writes each input once, its window's divided
gradient + 0.0 (the bits of a sum from 0), with no zero pass.

Each average is its sum / its divisor (an integer, rounded to the element type once); where
the divisor is a power of two the kernels multiply by its inverse, which is exact, so the
bits are the division's. NaN and inf propagate through the sums as IEEE arithmetic says.
Kernels trust their inputs (validated in Python), release the GIL and never raise.
"""

from cython.parallel cimport prange, threadid

from fastpool._kernel_common cimport (Band, WindowRow, band_of, next_row, plane_after,
                                      prefetch, real, window_row, zero_around)
from fastpool._tap_loops cimport SUM, copy_plane, fill_planes, fold_window
from fastpool._simd_passes cimport (fastpool_plane_average_backward_double,
                                    fastpool_plane_average_backward_float,
                                    fastpool_plane_average_double, fastpool_plane_average_float)


cdef inline void divide_by(real* quotient, const real* dividend, Py_ssize_t divisor,
                           Py_ssize_t low, Py_ssize_t high) noexcept nogil:
    """quotient[i] = dividend[i] / divisor for i in [low, high) (divisor >= 1)."""
    # A power of two's inverse is exact, and a product with it is the same real quotient,
    # rounded once as the division rounds it: the same bits, without the divider's
    # throughput (measured, one thread, the 2x2/1 average on (32, 64, 56, 56): forward
    # 2.22-2.39 -> 2.01-2.15 ms, backward 4.39-4.57 -> 3.96-4.07 ms)
    cdef Py_ssize_t i
    cdef real whole = <real>divisor
    cdef real inverse = 1 / whole
    if divisor & (divisor - 1) == 0:
        for i in range(low, high):
            quotient[i] = dividend[i] * inverse
    else:
        for i in range(low, high):
            quotient[i] = dividend[i] / whole


cdef inline void forward_band(const real[:, :, :, ::1] x, real[:, :, :, ::1] out,
                              const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                              const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh,
                              Py_ssize_t dw, Py_ssize_t scale, Py_ssize_t low, Py_ssize_t high,
                              Py_ssize_t stride, Py_ssize_t offset, Py_ssize_t block,
                              Band band) noexcept nogil:
    """One task of ``forward``: the output rows of ``band``."""
    cdef Py_ssize_t out_h = out.shape[2], out_w = out.shape[3]
    cdef Py_ssize_t in_h = x.shape[2], in_w = x.shape[3]
    cdef Py_ssize_t row, plane = band.plane, od = band.d, oh = band.h
    cdef Py_ssize_t ow, jd, jh, jw, b, divisor_dh, edge
    cdef const real* source
    cdef const real* origin
    cdef real* result
    cdef real total
    for row in range(band.first, band.end):
        next_row(&od, &oh, out_h)
        divisor_dh = scale * wd[2, od] * wh[2, oh]
        result = &out[plane, od, oh, 0]
        # Interior outputs [low, high): taps outer, outputs inner, so the inner loop runs
        # over contiguous outputs; each output still sums its taps in (d, h, w) order,
        # from 0 (every window has a tap: padding is at most half the kernel).
        origin = &x[plane, wd[0, od], wh[0, oh], 0]
        if block > 1:  # channels-last: a contiguous run of channels per column, edge columns
            # too (a column's windows are alike across its channels)
            for b in range(out_w // block):
                fold_window(result + b * block, origin + ww[0, b * block], SUM, 0, block, 1,
                            wd[1, od], wh[1, oh], ww[1, b * block], dd * in_h * in_w,
                            dh * in_w, dw, True, 0)
        elif high > low:
            fold_window(result, origin + offset, SUM, low, high, stride, wd[1, od], wh[1, oh],
                        ww[1, low], dd * in_h * in_w, dh * in_w, dw, True, 0)
        if high > low:  # interior windows are whole: one divisor for the row
            divide_by(result, result, divisor_dh * ww[2, low], low, high)
        for edge in range(out_w - (high - low)):  # the outputs left and right of those
            ow = edge if edge < low else edge + (high - low)
            if block > 1:  # (summed above)
                total = result[ow]
            else:  # an edge window: clipped, so summed on its own
                total = 0
                for jd in range(wd[1, od]):
                    for jh in range(wh[1, oh]):
                        source = &x[plane, wd[0, od] + jd * dd, wh[0, oh] + jh * dh, 0]
                        for jw in range(ww[1, ow]):
                            total = total + source[ww[0, ow] + jw * dw]
            result[ow] = total / <real>(divisor_dh * ww[2, ow])


def plan_table(const Py_ssize_t[:, ::1] table):
    """A plan's window table as this module's typed memoryview, which its kernels take
    without a new buffer request (~0.1 us a table): prepared calls keep theirs so."""
    return table


def forward(const real[:, :, :, ::1] x, real[:, :, :, ::1] out,
            const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
            const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
            Py_ssize_t scale, Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride,
            Py_ssize_t offset, Py_ssize_t block, Py_ssize_t band_rows, int num_threads):
    cdef Py_ssize_t rows = out.shape[1] * out.shape[2], task
    cdef Py_ssize_t bands = (rows + band_rows - 1) // band_rows, tasks = out.shape[0] * bands
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than pooling a tiny array)
            for task in range(tasks):
                forward_band(x, out, wd, wh, ww, dd, dh, dw, scale, low, high, stride, offset,
                             block, band_of(task, bands, band_rows, rows, out.shape[2]))
        else:
            for task in prange(tasks, num_threads=num_threads, schedule="static"):
                forward_band(x, out, wd, wh, ww, dd, dh, dw, scale, low, high, stride, offset,
                             block, band_of(task, bands, band_rows, rows, out.shape[2]))


cdef inline Py_ssize_t divisor_table(real[::1] divisors, const Py_ssize_t[:, ::1] wh,
                                     const Py_ssize_t[:, ::1] ww,
                                     Py_ssize_t scale) noexcept nogil:
    """For the plane passes, where a row's windows differ in their divisors: divisors[oh *
    out_w + ow] = scale * wh[2, oh] * ww[2, ow], each integer product rounded once, as
    ``forward_band``'s. Returns 0 after making it, or without, where each row's windows share
    their divisor, scale * ww[2, 0] (row oh's: that times wh[2, oh])."""
    cdef Py_ssize_t oh, ow, out_w = ww.shape[1]
    cdef bint alike = True
    for ow in range(out_w):
        alike = alike and ww[2, ow] == ww[2, 0]
    if alike:
        return scale * ww[2, 0]
    for oh in range(wh.shape[1]):
        for ow in range(out_w):
            divisors[oh * out_w + ow] = <real>(scale * wh[2, oh] * ww[2, ow])
    return 0


cdef inline void divide_row_of(real* quotient, const real* dividend, const real* divisors,
                               Py_ssize_t shared, Py_ssize_t count) noexcept nogil:
    """quotient[i] = dividend[i] / divisors[i] for i < count, or / ``shared`` where not 0
    (``divisor_table``)."""
    # (edge windows' divisors from the table, in one vectorised loop: Inception's 3x3/1 pad
    # 1 backward on (32, 192, 28, 28), one thread, 3.58-3.80 -> 3.18-3.37 ms; its forward
    # 3.2-3.5 ms either way. Rows whose windows share their divisor do not read it: the
    # 2x2/1 average's large table made it 10% slower, crowding the caches)
    cdef Py_ssize_t i
    if shared:
        divide_by(quotient, dividend, shared, 0, count)
    else:
        for i in range(count):
            quotient[i] = dividend[i] / divisors[i]


cdef void forward_one_plane(const real* x, const real* ahead, real* out, Py_ssize_t in_h,
                            Py_ssize_t in_w, Py_ssize_t out_h, Py_ssize_t out_w,
                            real* padded, real* total, const real* divisors,
                            Py_ssize_t shared, const Py_ssize_t* factors,
                            Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t top,
                            Py_ssize_t left) noexcept nogil:
    """One task of ``forward_plane``: the plane ``x`` (``ahead``: the next, or NULL) into
    ``out``, with its thread's rows ``padded`` and ``total`` (``divisors``, ``shared`` and the
    row ``factors``: see ``divisor_table``). (Pointers, not memoryviews, as the max's.)"""
    cdef Py_ssize_t pitch = out_w + kernel_w - 1
    cdef Py_ssize_t count = (out_h - 1) * pitch + out_w
    cdef Py_ssize_t oh
    cdef const real* source = x
    # (the same passes in vector instructions, ``_simd_passes``, dividing as they go:
    # Inception's 3x3/1 pad 1 on (32, 192, 28, 28), two threads, 3.8-4.3 -> 2.9-3.3 ms)
    if real is float:
        if fastpool_plane_average_float(out, x, ahead, in_h, in_w, out_h, out_w, kernel_h,
                                        kernel_w, top, left, pitch, padded, divisors, shared,
                                        factors):
            return
    else:
        if fastpool_plane_average_double(out, x, ahead, in_h, in_w, out_h, out_w, kernel_h,
                                         kernel_w, top, left, pitch, padded, divisors, shared,
                                         factors):
            return
    if top or left:
        copy_plane(padded, source, in_h, in_w, top, left, pitch, ahead != NULL)
        source = padded
    fold_window(total, source, SUM, 0, count, 1, 1, kernel_h, kernel_w, 0, pitch, 1, True, 0)
    for oh in range(out_h):
        divide_row_of(out + oh * out_w, total + oh * pitch, divisors + oh * out_w,
                      shared * factors[oh], out_w)


def forward_plane(const real[:, :, :, ::1] x, real[:, :, :, ::1] out, real[:, ::1] padded,
                  real[:, ::1] totals, real[::1] divisors, const Py_ssize_t[:, ::1] wh,
                  const Py_ssize_t[:, ::1] ww, Py_ssize_t kernel_h, Py_ssize_t kernel_w,
                  Py_ssize_t top, Py_ssize_t left, Py_ssize_t scale, int num_threads):
    """Average pooling with stride 1, a plane at a time (2-D, D = 1): the plane is copied with
    its padding (zeros) into rows of pitch P = out_w + kernel_w - 1 (``padded[t]``), so that
    every window lies wholly inside it and one fold of the kernel's taps runs over the whole
    flattened plane (``totals[t]``); each row's out_w valid sums are then divided by their
    windows' divisors (``divisors``, out_h * out_w, made first). Without padding the plane is
    that copy already, and is folded where it lies (measured: the copy took half the time of
    a 2x2 stride-1 average). The taps add in (h, w) order as in ``forward``, and the
    padding's zeros change no bits (a sum from +0.0 is never -0.0), so the results are the
    same. Columns past out_w mix neighbouring rows and are never read."""
    cdef Py_ssize_t pitch = out.shape[3] + kernel_w - 1, rows = out.shape[2] + kernel_h - 1
    cdef Py_ssize_t plane, t
    cdef Py_ssize_t shared
    with nogil:
        shared = divisor_table(divisors, wh, ww, scale)
        if top or left:
            fill_planes(padded, rows * pitch, 0)
        if num_threads == 1:  # (an OpenMP region costs more than pooling a tiny array)
            for plane in range(out.shape[0]):
                forward_one_plane(&x[plane, 0, 0, 0], plane_after(x, plane),
                                  &out[plane, 0, 0, 0], x.shape[2], x.shape[3], out.shape[2],
                                  out.shape[3], &padded[0, 0], &totals[0, 0], &divisors[0],
                                  shared, &wh[2, 0], kernel_h, kernel_w, top, left)
        else:
            for plane in prange(out.shape[0], num_threads=num_threads, schedule="static"):
                t = threadid()
                forward_one_plane(&x[plane, 0, 0, 0], plane_after(x, plane),
                                  &out[plane, 0, 0, 0], x.shape[2], x.shape[3], out.shape[2],
                                  out.shape[3], &padded[t, 0], &totals[t, 0], &divisors[0],
                                  shared, &wh[2, 0], kernel_h, kernel_w, top, left)


cdef inline void divide_row(real* share, const real* gradient, Py_ssize_t divisor_dh,
                            const Py_ssize_t* factors, Py_ssize_t low, Py_ssize_t high,
                            Py_ssize_t out_w) noexcept nogil:
    """share[ow] = gradient[ow] / (divisor_dh * factors[ow]) for ow < out_w: the interior
    windows [low, high) share one divisor; the edge windows have their own."""
    cdef Py_ssize_t ow, edge
    if high > low:
        divide_by(share, gradient, divisor_dh * factors[low], low, high)
    for edge in range(out_w - (high - low)):
        ow = edge if edge < low else edge + (high - low)
        share[ow] = gradient[ow] / <real>(divisor_dh * factors[ow])


cdef void backward_one_plane(const real* grad_output, const real* ahead, real* grad_input,
                             Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t in_h,
                             Py_ssize_t in_w, real* share, real* total,
                             const real* divisors, Py_ssize_t shared,
                             const Py_ssize_t* factors, Py_ssize_t kernel_h,
                             Py_ssize_t kernel_w, Py_ssize_t top,
                             Py_ssize_t left) noexcept nogil:
    """One task of ``backward_plane``: the plane's gradient ``grad_output`` (``ahead``: the
    next plane's, or NULL) into ``grad_input``, with its thread's rows ``share`` and
    ``total``."""
    cdef Py_ssize_t pitch = in_w + kernel_w - 1, count = (in_h - 1) * pitch + in_w
    cdef Py_ssize_t oh, h, w
    cdef real* shares
    # (the same passes in vector instructions, ``_simd_passes``, the fold into the gradient's
    # rows: Inception's backward on (32, 192, 28, 28), two threads, 4.0-4.3 -> 3.3-3.6 ms)
    if real is float:
        if fastpool_plane_average_backward_float(
                grad_input, grad_output, ahead, out_h, out_w, in_h, in_w, kernel_h, kernel_w,
                top, left, share, divisors, shared, factors):
            return
    else:
        if fastpool_plane_average_backward_double(
                grad_input, grad_output, ahead, out_h, out_w, in_h, in_w, kernel_h, kernel_w,
                top, left, share, divisors, shared, factors):
            return
    # (each row asks for the next plane's row, as copy_plane does: Inception's backward, 300
    # interleaved rounds, median 8% faster on one thread, 6% on two)
    for oh in range(out_h):
        if ahead != NULL:
            prefetch(ahead + oh * out_w, out_w * sizeof(real))
        shares = share + (oh + kernel_h - 1 - top) * pitch + kernel_w - 1 - left
        divide_row_of(shares, grad_output + oh * out_w, divisors + oh * out_w,
                      shared * factors[oh], out_w)
    fold_window(total, share, SUM, 0, count, 1, 1, kernel_h, kernel_w, 0, pitch, 1, True, 0)
    for h in range(in_h):
        for w in range(in_w):
            grad_input[h * in_w + w] = total[h * pitch + w]


def backward_plane(const real[:, :, :, ::1] grad_output, real[:, :, :, ::1] grad_input,
                   real[:, ::1] shares, real[:, ::1] totals, real[::1] divisors,
                   const Py_ssize_t[:, ::1] wh, const Py_ssize_t[:, ::1] ww, Py_ssize_t kernel_h,
                   Py_ssize_t kernel_w, Py_ssize_t top, Py_ssize_t left, Py_ssize_t scale,
                   int num_threads):
    """Average pooling backward with stride 1, a plane at a time (2-D, D = 1): the divided
    gradients (by ``divisors``, as in ``forward_plane``) go into a zero-bordered plane of
    pitch P = W + kernel_w - 1 (``shares[t]``, zeros from the caller, and its border stays
    zero), where input (h, w) finds its windows' shares at rows h + jh and columns w + jw, in
    output order; so one fold of the kernel's taps over the flattened plane (``totals[t]``)
    gives every input's gradient, in the order and with the bits of ``backward``. Columns
    past W mix neighbouring rows and are never read."""
    cdef Py_ssize_t plane, t
    cdef Py_ssize_t shared
    with nogil:
        shared = divisor_table(divisors, wh, ww, scale)
        if num_threads == 1:  # (an OpenMP region costs more than a tiny array's gradient)
            for plane in range(grad_input.shape[0]):
                backward_one_plane(&grad_output[plane, 0, 0, 0],
                                   plane_after(grad_output, plane),
                                   &grad_input[plane, 0, 0, 0], grad_output.shape[2],
                                   grad_output.shape[3], grad_input.shape[2],
                                   grad_input.shape[3], &shares[0, 0], &totals[0, 0],
                                   &divisors[0], shared, &wh[2, 0], kernel_h, kernel_w, top,
                                   left)
        else:
            for plane in prange(grad_input.shape[0], num_threads=num_threads,
                                schedule="static"):
                t = threadid()
                backward_one_plane(&grad_output[plane, 0, 0, 0],
                                   plane_after(grad_output, plane),
                                   &grad_input[plane, 0, 0, 0], grad_output.shape[2],
                                   grad_output.shape[3], grad_input.shape[2],
                                   grad_input.shape[3], &shares[t, 0], &totals[t, 0],
                                   &divisors[0], shared, &wh[2, 0], kernel_h, kernel_w, top,
                                   left)


cdef inline void spread_taps(real* total, const real* share, Py_ssize_t low, Py_ssize_t high,
                            Py_ssize_t stride, Py_ssize_t taps) noexcept nogil:
    """total[o * stride + j] += share[o] for j < taps, o in [low, high): the vectorised inner
    loop, for windows that do not overlap (taps <= stride), so iterations are independent."""
    cdef Py_ssize_t o, j
    for o in range(low, high):
        for j in range(taps):
            total[o * stride + j] = total[o * stride + j] + share[o]


cdef inline void spread_row(real* total, const real* share, Py_ssize_t low, Py_ssize_t high,
                           Py_ssize_t stride, Py_ssize_t taps) noexcept nogil:
    """Spread share[o] over the taps of windows o in [low, high) so that each input adds its
    windows in output order: in one pass where windows do not overlap, else tap by tap, last
    tap first. Literal sizes make contiguous vector stores."""
    cdef Py_ssize_t jw
    if stride == 2 and taps == 2:
        spread_taps(total, share, low, high, 2, 2)
    elif taps <= stride:
        spread_taps(total, share, low, high, stride, taps)
    elif stride == 2:
        for jw in range(taps - 1, -1, -1):
            spread_taps(total + jw, share, low, high, 2, 1)
    else:
        for jw in range(taps - 1, -1, -1):
            spread_taps(total + jw, share, low, high, stride, 1)


cdef inline void put_shares(real* row, const real* share, Py_ssize_t low, Py_ssize_t high,
                            Py_ssize_t stride, Py_ssize_t taps) noexcept nogil:
    """row[o * stride + j] = share[o] + 0.0 for j < taps, o in [low, high) (the + 0.0 of the
    scatter's zero start): windows that do not overlap, so one write per input. Literal
    sizes from the caller make contiguous vector stores."""
    cdef Py_ssize_t o, j
    for o in range(low, high):
        for j in range(taps):
            row[o * stride + j] = share[o] + 0


cdef void backward_disjoint_band(const real[:, :, :, ::1] grad_output,
                                 real[:, :, :, ::1] grad_input,
                                 const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                                 const Py_ssize_t[:, ::1] ww, const Py_ssize_t[:, ::1] cd,
                                 const Py_ssize_t[:, ::1] ch, Py_ssize_t scale,
                                 Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride,
                                 Py_ssize_t offset, Band band, real* share) noexcept nogil:
    """One task of ``backward_disjoint``: the input rows of ``band``."""
    cdef Py_ssize_t in_h = grad_input.shape[2], in_w = grad_input.shape[3]
    cdef Py_ssize_t out_h = grad_output.shape[2], out_w = grad_output.shape[3]
    cdef Py_ssize_t plane = band.plane, d = band.d, h = band.h, r, j, ow, edge
    cdef Py_ssize_t divided = -1  # output row in ``share``
    cdef Py_ssize_t kernel = ww[1, low] if high > low else 0
    cdef bint tiled
    cdef WindowRow place
    cdef real* row
    for r in range(band.first, band.end):
        next_row(&d, &h, in_h)
        row = &grad_input[plane, d, h, 0]
        place = window_row(d, h, wd, wh, cd, ch, 1, 1)
        # all zeros outside every window, or where windows leave gaps; else the interior
        # windows tile [low * stride + offset, high * stride + offset)
        tiled = place.od >= 0 and kernel == stride
        zero_around(row, in_w, low * stride + offset if tiled else 0,
                    high * stride + offset if tiled else 0)
        if place.od < 0:
            continue
        if place.od * out_h + place.oh != divided:
            divided = place.od * out_h + place.oh
            divide_row(share, &grad_output[plane, place.od, place.oh, 0],
                       scale * wd[2, place.od] * wh[2, place.oh], &ww[2, 0], low, high, out_w)
        for edge in range(out_w - (high - low)):
            ow = edge if edge < low else edge + (high - low)
            for j in range(ww[1, ow]):
                row[ww[0, ow] + j] = share[ow] + 0
        if stride == 2 and kernel == 2:
            put_shares(row + offset, share, low, high, 2, 2)
        elif kernel:
            put_shares(row + offset, share, low, high, stride, kernel)


def backward_disjoint(const real[:, :, :, ::1] grad_output, real[:, :, :, ::1] grad_input,
                      const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                      const Py_ssize_t[:, ::1] ww, const Py_ssize_t[:, ::1] cd,
                      const Py_ssize_t[:, ::1] ch, Py_ssize_t scale, Py_ssize_t low,
                      Py_ssize_t high, Py_ssize_t stride, Py_ssize_t offset,
                      Py_ssize_t band_rows, real[:, ::1] scratch, int num_threads):
    """Backward (C order) where no input lies in two windows: each input row is written once,
    its window's divided gradient or 0, with no zero pass first; the bits of ``backward``.
    Tasks are bands of input rows; a task divides each output row once (into its thread's
    ``scratch`` row) for all the input rows its windows cover."""
    cdef Py_ssize_t rows = grad_input.shape[1] * grad_input.shape[2], task
    cdef Py_ssize_t bands = (rows + band_rows - 1) // band_rows
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than a tiny array's gradient)
            for task in range(grad_input.shape[0] * bands):
                backward_disjoint_band(grad_output, grad_input, wd, wh, ww, cd, ch, scale, low,
                                       high, stride, offset,
                                       band_of(task, bands, band_rows, rows,
                                               grad_input.shape[2]), &scratch[0, 0])
        else:
            for task in prange(grad_input.shape[0] * bands, num_threads=num_threads,
                               schedule="static"):
                backward_disjoint_band(grad_output, grad_input, wd, wh, ww, cd, ch, scale, low,
                                       high, stride, offset,
                                       band_of(task, bands, band_rows, rows,
                                               grad_input.shape[2]), &scratch[threadid(), 0])


cdef void backward_row(const real[:, :, :, ::1] grad_output,
                       real[:, :, :, ::1] grad_input, const Py_ssize_t[:, ::1] wd,
                       const Py_ssize_t[:, ::1] wh, const Py_ssize_t[:, ::1] ww,
                       const Py_ssize_t[:, ::1] cd, const Py_ssize_t[:, ::1] ch,
                       const Py_ssize_t[:, ::1] cw, Py_ssize_t channels,
                       Py_ssize_t scale, Py_ssize_t low, Py_ssize_t high,
                       Py_ssize_t stride, Py_ssize_t offset, Py_ssize_t inner_low,
                       Py_ssize_t inner_high, real* share, Py_ssize_t row) noexcept nogil:
    """One task of ``backward``: input row ``row`` (of all planes' rows), with its thread's
    row ``share``."""
    cdef Py_ssize_t in_d = grad_input.shape[1], in_h = grad_input.shape[2]
    cdef Py_ssize_t in_w = grad_input.shape[3]
    cdef Py_ssize_t od, oh, ow, w, divisor_dh, edge
    cdef real total
    cdef Py_ssize_t out_w = grad_output.shape[3], first_edge, end_edge
    cdef Py_ssize_t kernel = ww[1, low] if high > low else 0
    cdef bint gathered = stride == 1 and channels == 1 and high > low
    cdef Py_ssize_t plane = row // (in_d * in_h), d = (row // in_h) % in_d, h = row % in_h
    cdef real* result = &grad_input[plane, d, h, 0]
    if gathered:
        # Stride 1: input w gets the shares of windows w + p - kernel + 1 ... w + p, so
        # a pass over ``share`` (the caller's scratch row for this thread) with the
        # divided gradients at [kernel - 1, kernel - 1 + out_w) and zeros around them
        # adds every input's windows in output order, edges included (adding the
        # zeros changes no bits: a sum from +0.0 is never -0.0).
        for w in range(in_w):
            result[w] = 0
        for od in range(cd[0, d], cd[1, d]):
            for oh in range(ch[0, h], ch[1, h]):
                divide_row(share + kernel - 1, &grad_output[plane, od, oh, 0],
                           scale * wd[2, od] * wh[2, oh], &ww[2, 0], low, high, out_w)
                fold_window(result, share - offset, SUM, 0, in_w, 1, 1, 1, kernel,
                            0, 0, 1, False, 0)
        first_edge, end_edge = 0, in_w
    # Inner inputs [inner_low, inner_high) lie in interior windows only: each covering
    # output row is divided once into ``share``, then spread over its windows' inputs
    # window by window, so each input still adds its windows in (d, h, w) output order.
    # Spreading also touches edge inputs; the gather below then overwrites those.
    elif inner_high > inner_low:
        for w in range(inner_low, inner_high):
            result[w] = 0
        for od in range(cd[0, d], cd[1, d]):
            for oh in range(ch[0, h], ch[1, h]):
                # (interior windows share one divisor)
                divide_by(share, &grad_output[plane, od, oh, 0],
                          scale * wd[2, od] * wh[2, oh] * ww[2, low], low, high)
                spread_row(result + offset, share, low, high, stride, ww[1, low])
        first_edge, end_edge = inner_low, inner_high
    else:
        first_edge, end_edge = 0, 0
    for edge in range(in_w - (end_edge - first_edge)):  # the inputs left and right
        w = edge if edge < first_edge else edge + (end_edge - first_edge)
        total = 0
        for od in range(cd[0, d], cd[1, d]):
            for oh in range(ch[0, h], ch[1, h]):
                divisor_dh = scale * wd[2, od] * wh[2, oh]
                ow = cw[0, w]
                while ow < cw[1, w]:
                    total = total + grad_output[plane, od, oh, ow] / <real>(
                        divisor_dh * ww[2, ow])
                    ow = ow + channels
        result[w] = total


def backward(const real[:, :, :, ::1] grad_output, real[:, :, :, ::1] grad_input,
             const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
             const Py_ssize_t[:, ::1] ww, const Py_ssize_t[:, ::1] cd,
             const Py_ssize_t[:, ::1] ch, const Py_ssize_t[:, ::1] cw,
             Py_ssize_t channels, Py_ssize_t scale, Py_ssize_t low, Py_ssize_t high,
             Py_ssize_t stride, Py_ssize_t offset, Py_ssize_t inner_low, Py_ssize_t inner_high,
             real[:, ::1] scratch, int num_threads):
    cdef Py_ssize_t row, rows = grad_input.shape[0] * grad_input.shape[1] * grad_input.shape[2]
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than a tiny array's gradient)
            for row in range(rows):
                backward_row(grad_output, grad_input, wd, wh, ww, cd, ch, cw, channels, scale,
                             low, high, stride, offset, inner_low, inner_high, &scratch[0, 0],
                             row)
        else:
            for row in prange(rows, num_threads=num_threads, schedule="static"):
                backward_row(grad_output, grad_input, wd, wh, ww, cd, ch, cw, channels, scale,
                             low, high, stride, offset, inner_low, inner_high,
                             &scratch[threadid(), 0], row)
