"""Max pooling kernels: forward (with or without indices), backward, index checks, unpooling.

Layout: arrays are (planes, D, H, W), C-contiguous (planes = N * C; 2-D pooling has D = 1,
1-D has D = H = 1). Windows come as per-dimension tables from fastpool._arguments.pool_plan:
window o has ``w*[1, o]`` in-bounds taps starting at ``w*[0, o]``, one every ``dilation``.
Padding is never visited, so it never wins.

Indices: "flat" indices are positions in the input plane, (d * H + h) * W + w (int64 from
forward; int32 also accepted), the format torch's max_unpool takes. "Compact" indices (uint8)
are the winner's rank among its window's in-bounds taps in row-major order: 8x less memory,
for windows of at most 256 taps. A window with no in-bounds tap (possible only with dilation
on tiny inputs) gives ``lowest`` (-inf, or an integer type's least value) and flat index -1
(compact 0), and its gradient goes nowhere.

Ties and NaN (PyTorch's CPU rule): a tap replaces the running maximum when it is greater or
when it is NaN (never, for integers, which forward and unpooling take exactly). So the first
maximum in row-major window order wins ties, a window holding NaN gives NaN with the index of
its last NaN, and an all -inf window gives -inf with its first tap.

Parallelism: forward is a prange over bands of one plane's output rows, so each output is
written by one thread. ``forward`` runs the interior of each row (windows wholly inside the
input) over contiguous outputs, several taps per vectorised pass (``_tap_loops``), a run of
rows alike in their windows per call (2x2 windows at stride 2, floats, no NaN: in explicit
vector instructions, ``_simd_passes``); with indices, four taps a pass too, branch-free,
each winner's flat position (a tap's position + o * stride for window o) or rank written
with its value (measured, VGG's (32, 128, 56, 56) 2x2/2: 14.4 -> 6.0 ms, tap by tap into a
scratch row of ranks before). Clipped edge windows are scanned one by one (channels-last,
without indices: folded as the others, a column's windows being alike across channels).
``forward_by_rows``, for windows whose rows overlap, computes each input row's W-window
maxima once into a per-thread cache and combines them down each output row; meeting rows in
order and each row's taps in order, it picks the same winner as the row-major scan.
``forward_plane`` (no indices, small 2-D planes, stride H 1) does the same a plane at a
time, on a padded copy, each pass over the whole flattened plane (at stride 1, floats
without NaN: in vector instructions, ``_simd_passes``, the last pass into the output rows).
``forward_down_across`` (no indices, 2-D, windows overlapping down the columns at a stride H
above 1, as the ResNet stem's 3x3/2) folds each output row's window rows down the columns
first, then across the result at stride W: the strided pass runs over output rows, not input
rows, and the input is read where it lies (measured on the ResNet stem: 6.2-7.3 -> 3.5-3.6
ms on 2 threads, against the plane pass). Without indices, passes take NaN apart (see
``_tap_loops``) and the value is the row-major scan's, bit for bit; where the kernel copies
or first reads its input (a row, a plane) it notes whether it holds NaN, and passes over
taps that hold none skip that bookkeeping.
Backward is a scatter split into tasks that each own a band of input rows of one plane: a task
walks, in row-major order, the outputs whose windows can reach the band and adds each gradient
to its winner when the winner lies in the band, zeroing the band's rows as the walk first
reaches them (so that the adds meet rows just written, in L1: measured on the ResNet stem's
(32, 64, 112, 112) backward, one thread 14.4 -> 10.5 ms, two 7.6-9.8 -> 5.5-5.7 ms, against
zeroing the band first). Bands are disjoint, so there are no races and no atomics; every
input element receives its gradients in output order whatever the banding, so the bits are
the same for any thread count (and the same as PyTorch's serial scatter). Overlapping
windows that share a winner accumulate. Into a new result a task also checks the indices, a
run of up to CHECKED_ROWS output rows at a time just after their scatter, while they are in
L1; an invalid index's gradient lands in the task's own band or nowhere, and the caller then
discards the result and names the index. Where no two windows share an input,
``backward_disjoint`` writes each input row once instead (the winners' gradients + 0.0,
which is what the scatter's zero start gives, and zeros elsewhere), finding each window's
winner by comparing keys in 32-bit vector lanes; on small planes with flat indices,
``backward_owned`` zeroes a whole plane and puts each gradient at its index, a task per
plane (each plane written by one thread), checking the index against a table of each
position's window.
Unpooling writes through indices, so it runs a plane per thread, in output order (a repeated
index keeps the later value). Kernels trust validated input, release the GIL, never raise.
"""

from cython.parallel cimport prange, threadid
from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint8_t, uint64_t

from fastpool._kernel_common cimport (Band, WindowRow, alike_rows, band_of, next_row,
                                      plane_after, pooled, real, window_row, zero_around)
from fastpool._tap_loops cimport (MAX, MAX_OF_NUMBERS, Fold, copy_plane, fill_planes,
                                  fold_pass, fold_rows, fold_window, holds_nan, pad_row)
from fastpool._simd_passes cimport fastpool_plane_max_double, fastpool_plane_max_float

ctypedef fused recorded_index:  # what forward writes
    int64_t
    uint8_t

ctypedef fused code_t:  # what the fused passes record: ranks, or flat positions
    int
    int64_t

ctypedef fused any_index:  # what backward reads
    int32_t
    int64_t
    uint8_t

ctypedef fused flat_index:  # what unpooling reads
    int32_t
    int64_t


cdef inline bint is_tap(Py_ssize_t position, const Py_ssize_t[:, ::1] window, Py_ssize_t o,
                        Py_ssize_t dilation) noexcept nogil:
    """Whether an in-bounds tap of window o sits at ``position`` along one dimension."""
    cdef Py_ssize_t offset = position - window[0, o]
    if dilation == 1:  # skips two integer divisions in the common case
        return 0 <= offset < window[1, o]
    return offset >= 0 and offset % dilation == 0 and offset // dilation < window[1, o]


cdef inline void take_ranked_taps(pooled* best, int* ranks, const pooled* tap, Py_ssize_t low,
                                  Py_ssize_t high, Py_ssize_t stride, int rank) noexcept nogil:
    """Where tap[o * stride] is greater than best[o] or NaN, take it and record ``rank``, for
    o in [low, high): branch-free, so the compiler vectorises it."""
    cdef Py_ssize_t o
    cdef pooled value
    cdef bint take
    for o in range(low, high):
        value = tap[o * stride]
        take = (value > best[o]) | (value != value)
        best[o] = value if take else best[o]
        ranks[o] = rank if take else ranks[o]


cdef inline void take_ranked_row(pooled* best, int* ranks, const pooled* tap, Py_ssize_t low,
                                 Py_ssize_t high, Py_ssize_t stride, int rank) noexcept nogil:
    # Literal strides become constants once the loop is inlined: packed loads for 1 and 2.
    if stride == 1:
        take_ranked_taps(best, ranks, tap, low, high, 1, rank)
    elif stride == 2:
        take_ranked_taps(best, ranks, tap, low, high, 2, rank)
    else:
        take_ranked_taps(best, ranks, tap, low, high, stride, rank)


cdef inline void take_tap(pooled* m, Py_ssize_t* k, pooled value,
                          Py_ssize_t code) noexcept nogil:
    """One step of PyTorch's rule: ``value`` (with ``code``) wins if greater or NaN."""
    cdef bint take = (value > m[0]) | (value != value)
    m[0] = value if take else m[0]
    k[0] = code if take else k[0]


cdef inline void take_fused(pooled* best, code_t* codes, const pooled** taps,
                            const Py_ssize_t* tap_codes, int count, Py_ssize_t code_step,
                            Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride, bint fresh,
                            pooled start) noexcept nogil:
    """Fold the first ``count`` (1 to 4) of the taps taps[j][o * stride], in that order, into
    best[o] by PyTorch's rule (a tap wins if greater or NaN), recording the winner in codes[o]
    as tap_codes[j] + o * code_step. ``fresh``: start from ``start`` and tap 0 (a window of
    ``start`` values keeps its first tap)."""
    # Branch-free selects over contiguous outputs, which the compiler vectorises; the running
    # maxima and codes stay in registers for all the pass's taps.
    cdef const pooled* a = taps[0]
    cdef const pooled* b = taps[1]
    cdef const pooled* c = taps[2]
    cdef const pooled* d = taps[3]
    cdef Py_ssize_t o, k
    cdef pooled m
    for o in range(low, high):
        m = start if fresh else best[o]
        k = tap_codes[0] + o * code_step if fresh else codes[o]
        take_tap(&m, &k, a[o * stride], tap_codes[0] + o * code_step)
        if count > 1:
            take_tap(&m, &k, b[o * stride], tap_codes[1] + o * code_step)
        if count > 2:
            take_tap(&m, &k, c[o * stride], tap_codes[2] + o * code_step)
        if count > 3:
            take_tap(&m, &k, d[o * stride], tap_codes[3] + o * code_step)
        best[o] = m
        codes[o] = <code_t>k


cdef inline void take_counted(pooled* best, code_t* codes, const pooled** taps,
                              const Py_ssize_t* tap_codes, int count, Py_ssize_t code_step,
                              Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride, bint fresh,
                              pooled start) noexcept nogil:
    if count == 4:
        take_fused(best, codes, taps, tap_codes, 4, code_step, low, high, stride, fresh, start)
    else:
        take_fused(best, codes, taps, tap_codes, count, code_step, low, high, stride, fresh,
                   start)


cdef inline void take_pass(pooled* best, code_t* codes, const pooled** taps,
                           const Py_ssize_t* tap_codes, int count, Py_ssize_t code_step,
                           Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride, bint fresh,
                           pooled start) noexcept nogil:
    # Literal counts and strides become constants once take_fused is inlined: each
    # combination is its own vectorised loop, with packed loads for strides 1 and 2.
    if stride == 1:
        take_counted(best, codes, taps, tap_codes, count, code_step, low, high, 1, fresh, start)
    elif stride == 2:
        take_counted(best, codes, taps, tap_codes, count, code_step, low, high, 2, fresh, start)
    else:
        take_counted(best, codes, taps, tap_codes, count, code_step, low, high, stride, fresh,
                     start)


cdef inline void take_taps(pooled* best, code_t* codes, const pooled* origin,
                           Py_ssize_t origin_code, Py_ssize_t code_step, Py_ssize_t low,
                           Py_ssize_t high, Py_ssize_t stride, Py_ssize_t td, Py_ssize_t th,
                           Py_ssize_t tw, Py_ssize_t step_d, Py_ssize_t step_h,
                           Py_ssize_t step_w, Py_ssize_t channels,
                           pooled start) noexcept nogil:
    """``take_window`` with codes of type code_t: int codes are ranks."""
    cdef const pooled* taps[4]
    cdef Py_ssize_t tap_codes[4]
    cdef int count = 0
    cdef Py_ssize_t jd, jh, jw, rank = 0, at
    cdef bint fresh = True
    taps[0] = taps[1] = taps[2] = taps[3] = origin  # (a short last pass reads its first few)
    tap_codes[0] = tap_codes[1] = tap_codes[2] = tap_codes[3] = 0
    for jd in range(td):
        for jh in range(th):
            for jw in range(tw):
                at = jd * step_d + jh * step_h + jw * step_w
                taps[count] = origin + at
                if code_t is int:
                    tap_codes[count] = rank
                else:  # (no division where it would be by 1)
                    tap_codes[count] = (origin_code + at if channels == 1 else
                                        (origin_code + at) // channels)
                count, rank = count + 1, rank + 1
                if count == 4:
                    take_pass(best, codes, taps, tap_codes, 4, code_step, low, high, stride,
                              fresh, start)
                    count, fresh = 0, False
    if count:
        take_pass(best, codes, taps, tap_codes, count, code_step, low, high, stride, fresh,
                  start)


cdef inline void take_window(pooled* best, recorded_index* codes, const pooled* origin,
                             Py_ssize_t origin_code, Py_ssize_t code_step, Py_ssize_t low,
                             Py_ssize_t high, Py_ssize_t stride, Py_ssize_t td, Py_ssize_t th,
                             Py_ssize_t tw, Py_ssize_t step_d, Py_ssize_t step_h,
                             Py_ssize_t step_w, Py_ssize_t channels,
                             pooled start) noexcept nogil:
    """Whole windows o in [low, high), taps origin[o * stride + jd * step_d + jh * step_h +
    jw * step_w] (at least one), folded four per pass in row-major order, each window's
    winner recorded in codes[o]: its rank among the window's taps (compact indices), or its
    flat position, (origin_code + the tap's offset) // channels + o * code_step."""
    cdef int ranks[64]
    cdef Py_ssize_t first, end, o
    if recorded_index is uint8_t:
        # Ranks go through an int row: stores through a uint8 pointer may alias the values,
        # which keeps the compiler from vectorising (measured: no faster than tap by tap).
        for first in range(low, high, 64):
            end = min(first + 64, high)
            take_taps(best + first, ranks, origin + first * stride, 0, 0, 0, end - first,
                      stride, td, th, tw, step_d, step_h, step_w, 1, start)
            for o in range(first, end):
                codes[o] = <uint8_t>ranks[o - first]
    else:
        take_taps(best, codes, origin, origin_code, code_step, low, high, stride, td, th, tw,
                  step_d, step_h, step_w, channels, start)


cdef inline Py_ssize_t scan_window(pooled* best, const pooled* origin, Py_ssize_t td,
                                   Py_ssize_t th, Py_ssize_t tw, Py_ssize_t step_d,
                                   Py_ssize_t step_h, Py_ssize_t step_w,
                                   pooled lowest) noexcept nogil:
    """best[0] = the maximum of the taps origin[jd * step_d + jh * step_h + jw * step_w]
    (jd < td, jh < th, jw < tw), scanned one by one in row-major order by PyTorch's rule (a tap
    wins if greater or NaN); returns the winner's rank among them (0 for no taps: ``lowest``).
    For the windows the vectorised passes do not serve (clipped edges), or not bit for bit."""
    cdef Py_ssize_t jd, jh, jw, rank = 0, winner = 0
    cdef pooled value, maximum = lowest
    for jd in range(td):
        for jh in range(th):
            for jw in range(tw):
                value = origin[jd * step_d + jh * step_h + jw * step_w]
                if value > maximum or value != value:
                    maximum, winner = value, rank
                rank = rank + 1
    best[0] = maximum
    return winner


cdef inline void forward_band(const pooled[:, :, :, ::1] x, pooled[:, :, :, ::1] out,
                              recorded_index[:, :, :, ::1] indices, bint store_indices,
                              const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                              const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh,
                              Py_ssize_t dw, Py_ssize_t channels, Py_ssize_t low,
                              Py_ssize_t high, Py_ssize_t stride, Py_ssize_t offset,
                              Py_ssize_t block, pooled lowest, Band band) noexcept nogil:
    """One task of ``forward``: the output rows of ``band``."""
    cdef Py_ssize_t out_h = out.shape[2], out_w = out.shape[3]
    cdef Py_ssize_t in_h = x.shape[2], in_w = x.shape[3]
    cdef Py_ssize_t row, plane = band.plane, od = band.d, oh = band.h
    cdef Py_ssize_t ow, jd, jh, jw, td, th, tw, b, winner, position
    cdef Py_ssize_t interior, edge, run, step, folded = 0
    cdef const pooled* origin
    cdef pooled* best
    row = band.first - 1
    while row + 1 < band.end:
        row = row + 1
        next_row(&od, &oh, out_h)
        folded = folded - 1  # rows whose interior a fold has written already, this one on
        td, th = wd[1, od], wh[1, oh]
        best = &out[plane, od, oh, 0]
        # Interior outputs [low, high): taps outer, outputs inner (vectorised); each output
        # still meets its taps in row-major order, so ties and NaN resolve as below.
        tw = ww[1, low] if high > low else 0
        if store_indices and td * th > 0 and high > low:  # recording each window's winner
            origin = &x[plane, wd[0, od], wh[0, oh], 0] + offset
            position = (wd[0, od] * in_h + wh[0, oh]) * in_w + offset  # (origin's, flat)
            if block == 1:
                take_window(best, &indices[plane, od, oh, 0], origin, position,
                            0 if recorded_index is uint8_t else stride, low, high, stride, td,
                            th, tw, dd * in_h * in_w, dh * in_w, dw, 1, lowest)
            else:  # channels-last: a column's channels share their windows' flat positions
                for b in range(low // block, high // block):
                    take_window(best + b * block, &indices[plane, od, oh, b * block],
                                origin + b * stride, position + b * stride, 0, 0, block, 1, td,
                                th, tw, dd * in_h * in_w, dh * in_w, dw, channels, lowest)
        elif not store_indices and td * th > 0 and folded <= 0:  # (else: edges, below)
            origin = &x[plane, wd[0, od], wh[0, oh], 0] + offset
            if block == 1:  # the interiors of the rows alike to this one, in one call
                run = alike_rows(wh, oh, min(band.end - row, out_h - oh), &step)
                fold_rows(best, origin, MAX, low, high, stride, td, th, tw,
                          dd * in_h * in_w, dh * in_w, dw, lowest, run, out_w, step * in_w)
                folded = run
                if high - low == out_w:  # no edge windows: the run's rows are done
                    row, oh, folded = row + run - 1, oh + run - 1, 0
                    continue
            else:  # channels-last: a contiguous run of channels per column, edge columns
                # too (a column's windows are alike across its channels; scanned one by one,
                # its edge windows took a fifth of a channels-last ResNet stem's time)
                for b in range(out_w // block):
                    fold_window(best + b * block, origin - offset + ww[0, b * block], MAX, 0,
                                block, 1, td, th, ww[1, b * block], dd * in_h * in_w,
                                dh * in_w, dw, True, lowest)
        interior = high - low if td * th > 0 else 0
        if block > 1 and td * th > 0 and not store_indices:
            interior = out_w  # (the edge windows were folded above)
        for edge in range(out_w - interior):  # the outputs left and right of those
            ow = edge if edge < low else edge + interior
            tw = ww[1, ow]
            # An edge window: clipped, so scanned on its own, in the same order. (A window
            # with no taps may start past the input: its first tap's place is not formed.)
            winner = 0
            best[ow] = lowest
            if td * th * tw > 0:
                winner = scan_window(&best[ow], &x[plane, wd[0, od], wh[0, oh], ww[0, ow]], td,
                                     th, tw, dd * in_h * in_w, dh * in_w, dw, lowest)
            if store_indices:
                if recorded_index is uint8_t:
                    indices[plane, od, oh, ow] = <uint8_t>winner
                elif td * th * tw == 0:
                    indices[plane, od, oh, ow] = -1
                else:
                    jd, jh, jw = winner // (th * tw), (winner // tw) % th, winner % tw
                    indices[plane, od, oh, ow] = (
                        ((wd[0, od] + jd * dd) * in_h + wh[0, oh] + jh * dh) * in_w
                        + ww[0, ow] + jw * dw) // channels


def plan_table(const Py_ssize_t[:, ::1] table):
    """A plan's window table as this module's typed memoryview, which its kernels take
    without a new buffer request (~0.1 us a table): prepared calls keep theirs so."""
    return table


def forward(const pooled[:, :, :, ::1] x, pooled[:, :, :, ::1] out,
            recorded_index[:, :, :, ::1] indices, bint store_indices,
            const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
            const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
            Py_ssize_t channels, Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride,
            Py_ssize_t offset, Py_ssize_t block, pooled lowest, Py_ssize_t band_rows,
            int num_threads):
    cdef Py_ssize_t rows = out.shape[1] * out.shape[2], task
    cdef Py_ssize_t bands = (rows + band_rows - 1) // band_rows, tasks = out.shape[0] * bands
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than pooling a tiny array)
            for task in range(tasks):
                forward_band(x, out, indices, store_indices, wd, wh, ww, dd, dh, dw, channels,
                             low, high, stride, offset, block, lowest,
                             band_of(task, bands, band_rows, rows, out.shape[2]))
        else:
            for task in prange(tasks, num_threads=num_threads, schedule="static"):
                forward_band(x, out, indices, store_indices, wd, wh, ww, dd, dh, dw, channels,
                             low, high, stride, offset, block, lowest,
                             band_of(task, bands, band_rows, rows, out.shape[2]))


cdef void forward_one_plane(const pooled* x, const pooled* ahead, pooled* out,
                            Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t out_h,
                            Py_ssize_t out_w, pooled* source, pooled* across, pooled* down,
                            Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t sw,
                            Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t top,
                            Py_ssize_t left, Py_ssize_t pitch, pooled lowest) noexcept nogil:
    """One task of ``forward_plane``: the plane ``x`` (``ahead``: the next, or NULL) into
    ``out``, with its thread's rows ``source`` (padded), ``across`` and ``down``. (Pointers,
    not memoryviews: a call copies a memoryview whole, ~45 ns a 20x20 plane of SPPF.)"""
    cdef Py_ssize_t span = pitch // sw
    cdef Py_ssize_t rows = out_h + (kernel_h - 1) * dh  # padded rows used
    cdef Py_ssize_t oh, ow
    # (stride 1, floats without NaN: the same passes in vector instructions, ``_simd_passes``;
    # measured on SPPF's 5x5/1, (32, 256, 20, 20): one thread 7.4 -> 4.7 ms, two 5.3 -> 2.1)
    if pooled is float:
        if sw == 1 and fastpool_plane_max_float(
                out, x, ahead, in_h, in_w, out_h, out_w, kernel_h, kernel_w, dh, dw, top, left,
                pitch, lowest, source, across):
            return
    elif pooled is double:
        if sw == 1 and fastpool_plane_max_double(
                out, x, ahead, in_h, in_w, out_h, out_w, kernel_h, kernel_w, dh, dw, top, left,
                pitch, lowest, source, across):
            return
    cdef Fold fold = MAX if copy_plane(source, x, in_h, in_w, top, left, pitch,
                                       ahead != NULL) else MAX_OF_NUMBERS
    fold_window(across, source, fold, 0, (rows - 1) * span + out_w, sw, 1, 1, kernel_w, 0, 0,
                dw, True, lowest)
    # one pass down the whole flattened plane, then the out_w valid columns of each row copied
    # out (measured: on short rows, e.g. 20x20 SPPF, a third faster than a pass per row)
    fold_window(down, across, fold, 0, (out_h - 1) * span + out_w, 1, 1, kernel_h, 1, 0,
                dh * span, 0, True, lowest)
    for oh in range(out_h):
        for ow in range(out_w):
            out[oh * out_w + ow] = down[oh * span + ow]


def forward_plane(const pooled[:, :, :, ::1] x, pooled[:, :, :, ::1] out,
                  pooled[:, ::1] padded, pooled[:, ::1] row_maxima, pooled[:, ::1] maxima,
                  Py_ssize_t kernel_h, Py_ssize_t kernel_w, Py_ssize_t sw, Py_ssize_t dh,
                  Py_ssize_t dw, Py_ssize_t top, Py_ssize_t left,
                  Py_ssize_t pitch, pooled lowest, int num_threads):
    """Max pooling without indices a plane at a time (2-D, D = 1, stride H 1, where windows
    overlap down the columns or the stride is (1, 1)): the plane is copied with its padding
    (``lowest``) into rows of ``pitch`` elements, a multiple of stride W
    (``padded[t]``), so that every window lies wholly inside it and each pass of taps runs
    over the whole flattened plane: the maxima of each row's windows (``row_maxima[t]``,
    pitch / stride W a row), then their maxima down each output's kernel_h rows (by a pass
    over the whole plane into ``maxima[t]`` at stride 1). Row maxima meet in row order, each
    row's taps in column order: the row-major scan's value. Positions past out_w mix
    neighbouring rows and are never read."""
    cdef Py_ssize_t plane, t
    with nogil:
        fill_planes(padded, padded.shape[1], lowest)
        if num_threads == 1:  # (an OpenMP region costs more than pooling a tiny array)
            for plane in range(out.shape[0]):
                forward_one_plane(&x[plane, 0, 0, 0], plane_after(x, plane),
                                  &out[plane, 0, 0, 0], x.shape[2], x.shape[3], out.shape[2],
                                  out.shape[3], &padded[0, 0], &row_maxima[0, 0],
                                  &maxima[0, 0], kernel_h, kernel_w, sw, dh, dw, top, left,
                                  pitch, lowest)
        else:
            for plane in prange(out.shape[0], num_threads=num_threads, schedule="static"):
                t = threadid()
                forward_one_plane(&x[plane, 0, 0, 0], plane_after(x, plane),
                                  &out[plane, 0, 0, 0], x.shape[2], x.shape[3], out.shape[2],
                                  out.shape[3], &padded[t, 0], &row_maxima[t, 0],
                                  &maxima[t, 0], kernel_h, kernel_w, sw, dh, dw, top, left,
                                  pitch, lowest)


cdef inline void settle_row(pooled* best, const pooled* first, Py_ssize_t rows,
                            const Py_ssize_t[:, ::1] ww, Py_ssize_t step_h, Py_ssize_t dw,
                            pooled lowest) noexcept nogil:
    """Scan again, in row-major order, the windows of the output row ``best`` whose maximum
    came out 0 or NaN, their first tap row at ``first``, ``rows`` tap rows ``step_h``
    apart."""
    cdef Py_ssize_t ow
    cdef bint unsettled = False
    for ow in range(ww.shape[1]):  # (vectorised: a row rarely has any)
        unsettled = unsettled | (best[ow] != best[ow]) | (best[ow] == 0)
    if not unsettled:
        return
    for ow in range(ww.shape[1]):
        if best[ow] != best[ow] or best[ow] == 0:
            scan_window(&best[ow], first + ww[0, ow], 1, rows, ww[1, ow], 0, step_h, dw, lowest)


cdef void forward_across_band(const pooled[:, :, :, ::1] x, pooled[:, :, :, ::1] out,
                              pooled* down, const Py_ssize_t[:, ::1] wh,
                              const Py_ssize_t[:, ::1] ww, Py_ssize_t dh, Py_ssize_t dw,
                              Py_ssize_t kernel_w, Py_ssize_t sw, Py_ssize_t left,
                              pooled lowest, Band band) noexcept nogil:
    """One task of ``forward_down_across``: output rows [band.first, band.end) of plane
    band.plane (D = 1: a row is an oh), with its thread's padded row ``down``."""
    cdef Py_ssize_t in_w = x.shape[3], out_w = out.shape[3], plane = band.plane
    cdef Py_ssize_t oh, tap_row, last, checked = -1
    cdef const pooled* first
    cdef pooled* best
    cdef bint unordered = dh > 1  # (dilated windows' rows need not come in order)
    for oh in range(band.first, band.end):
        # The window's rows not looked over yet are, for NaN (each once: undilated windows'
        # first and last rows come in order); until one holds NaN, the passes skip noting
        # NaN taps.
        if not unordered:
            last = wh[0, oh] + wh[1, oh] - 1
            for tap_row in range(max(checked + 1, wh[0, oh]), last + 1):
                unordered = unordered | holds_nan(&x[plane, 0, tap_row, 0], in_w)
            checked = last
        # (an empty window's first row may lie past the input: clamped, as it is never read)
        first = &x[plane, 0, min(wh[0, oh], x.shape[2] - 1), 0]
        best = &out[plane, 0, oh, 0]
        # (literal folds, so that each pass inlines as its own vectorised loop)
        if unordered:
            fold_window(down + left, first, MAX, 0, in_w, 1, 1, wh[1, oh], 1, 0, dh * in_w, 0,
                        True, lowest)
            fold_window(best, down, MAX, 0, out_w, sw, 1, 1, kernel_w, 0, 0, dw, True, lowest)
        else:
            fold_window(down + left, first, MAX_OF_NUMBERS, 0, in_w, 1, 1, wh[1, oh], 1, 0,
                        dh * in_w, 0, True, lowest)
            fold_window(best, down, MAX_OF_NUMBERS, 0, out_w, sw, 1, 1, kernel_w, 0, 0, dw,
                        True, lowest)
        if pooled is float or pooled is double:  # (equal integers are the same bits)
            settle_row(best, first, wh[1, oh], ww, dh * in_w, dw, lowest)


def forward_down_across(const pooled[:, :, :, ::1] x, pooled[:, :, :, ::1] out,
                        pooled[:, ::1] down, const Py_ssize_t[:, ::1] wh,
                        const Py_ssize_t[:, ::1] ww, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t kernel_w, Py_ssize_t sw, Py_ssize_t left, pooled lowest,
                        Py_ssize_t band_rows, int num_threads):
    """Max pooling without indices, 2-D (D = 1), for windows that overlap down the columns
    at a stride H above 1 (the ResNet stem's 3x3/2): each output row folds its window's input
    rows down the columns first, straight from ``x`` into a padded row (``down[t]``, the
    input's column 0 at ``left``, the rest ``lowest``), then across it at stride W. Both passes
    are contiguous or stride-W loops over whole rows, with no copy of the input, and the
    strided pass runs over the output rows, not the input rows. Folding down first meets each
    window's taps in column-major order, which gives the row-major scan's value unless the
    maximum has equal values of different bits: signed zeros, or NaN payloads. So outputs
    that come out 0 or NaN are scanned again in row-major order (integers never are)."""
    cdef Py_ssize_t rows = out.shape[2], task
    cdef Py_ssize_t bands = (rows + band_rows - 1) // band_rows, tasks = out.shape[0] * bands
    with nogil:
        fill_planes(down, down.shape[1], lowest)
        if num_threads == 1:  # (an OpenMP region costs more than pooling a tiny array)
            for task in range(tasks):
                forward_across_band(x, out, &down[0, 0], wh, ww, dh, dw, kernel_w, sw, left,
                                    lowest, band_of(task, bands, band_rows, rows, rows))
        else:
            for task in prange(tasks, num_threads=num_threads, schedule="static"):
                forward_across_band(x, out, &down[threadid(), 0], wh, ww, dh, dw, kernel_w,
                                    sw, left, lowest, band_of(task, bands, band_rows, rows,
                                                              rows))


cdef inline void take_coded(pooled* best, int* codes, const pooled* row, const int* taps,
                            Py_ssize_t count, int row_code) noexcept nogil:
    """Where row[o] is greater than best[o] or NaN, take it, with code row_code | taps[o]."""
    cdef Py_ssize_t o
    cdef pooled value
    cdef int coded
    cdef bint take
    for o in range(count):
        value, coded = row[o], row_code | taps[o]  # loaded unconditionally: a branch-free select
        take = (value > best[o]) | (value != value)
        best[o] = value if take else best[o]
        codes[o] = coded if take else codes[o]


cdef void forward_rows_band(const pooled[:, :, :, ::1] x, pooled[:, :, :, ::1] out,
                            recorded_index[:, :, :, ::1] indices, bint store_indices,
                            pooled[:, ::1] row_values, int[:, ::1] row_taps,
                            Py_ssize_t[:, ::1] row_keys, pooled[:, ::1] padded,
                            const Py_ssize_t[::1] slot_d, const Py_ssize_t[::1] slot_h,
                            int[:, ::1] codes, const Py_ssize_t[:, ::1] wd,
                            const Py_ssize_t[:, ::1] wh, const Py_ssize_t[:, ::1] ww,
                            const Py_ssize_t[:, ::1] tap_ranges,
                            const Py_ssize_t[::1] first_taps, Py_ssize_t dd,
                            Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t stride,
                            Py_ssize_t offset, pooled lowest, Band band,
                            Py_ssize_t t) noexcept nogil:
    """One task of ``forward_by_rows``: the output rows of ``band``, on thread ``t``'s rows of
    the scratch arrays."""
    cdef Py_ssize_t out_h = out.shape[2], out_w = out.shape[3]
    cdef Py_ssize_t in_d = x.shape[1], in_h = x.shape[2], in_w = x.shape[3]
    cdef Py_ssize_t kernel_w = tap_ranges.shape[1]
    cdef Py_ssize_t plane = band.plane, od = band.d, oh = band.h
    cdef Py_ssize_t row, ow, jd, jh, jw, j, d, h, key, slot, rows, code, first
    cdef recorded_index* target
    cdef Py_ssize_t pending
    cdef bint fresh, unordered
    cdef Fold fold
    cdef const pooled* source
    cdef pooled* best
    cdef pooled* values
    cdef const pooled* queued[4]
    cdef int* taps
    cdef int* winner
    for row in range(band.first, band.end):
        next_row(&od, &oh, out_h)
        best = &out[plane, od, oh, 0]
        winner = &codes[t, 0]
        rows = wd[1, od] * wh[1, oh]
        if store_indices:
            for ow in range(out_w):  # row 0's first tap, for an all-lowest window
                best[ow] = lowest
                winner[ow] = first_taps[ow]
        # rows queued; whether one holds NaN; whether no pass has run yet
        pending, unordered, fresh = 0, False, True
        for j in range(rows):
            jd = 0 if wd[1, od] == 1 else j // wh[1, oh]
            jh = j - jd * wh[1, oh]
            d, h = wd[0, od] + jd * dd, wh[0, oh] + jh * dh
            key = (plane * in_d + d) * in_h + h
            slot = slot_d[d] + slot_h[h]
            values, taps = &row_values[t, slot * out_w], &row_taps[t, slot * out_w]
            if row_keys[t, slot] >> 1 != key:  # not cached: compute this row's maxima
                row_keys[t, slot] = 2 * key
                if store_indices:
                    source = &x[plane, d, h, 0] + offset
                    for ow in range(out_w):  # an all-lowest window keeps its first tap
                        values[ow] = lowest
                        taps[ow] = first_taps[ow]
                    for jw in range(kernel_w):
                        take_ranked_row(values, taps, source + jw * dw, tap_ranges[0, jw],
                                        tap_ranges[1, jw], stride, <int>jw)
                else:  # on a copy padded with ``lowest``: whole windows, four taps a pass
                    fold = MAX_OF_NUMBERS
                    if pad_row(&padded[t, 0], &x[plane, d, h, 0], in_w, offset,
                               padded.shape[1], lowest):
                        fold, row_keys[t, slot] = MAX, 2 * key + 1
                    fold_window(values, &padded[t, 0], fold, 0, out_w, stride, 1, 1,
                                kernel_w, 0, 0, dw, True, lowest)
            unordered = unordered | (row_keys[t, slot] & 1)
            if store_indices:
                take_coded(best, winner, values, taps, out_w, <int>(j << 16))
            else:
                queued[pending] = values
                pending = pending + 1
                if pending == 4:  # four rows per pass
                    fold_pass(best, queued, 4, MAX if unordered else MAX_OF_NUMBERS, 0, out_w,
                              1, fresh, lowest)
                    pending, fresh, unordered = 0, False, False
        if not store_indices:
            if pending:
                fold_pass(best, queued, <int>pending, MAX if unordered else MAX_OF_NUMBERS, 0,
                          out_w, 1, fresh, lowest)
            elif fresh:  # a window without rows
                for ow in range(out_w):
                    best[ow] = lowest
            continue
        target = &indices[plane, od, oh, 0]
        if recorded_index is not uint8_t and wd[1, od] == 1:
            # One depth: tap (j, jw) of window ow sits at first + j * dh * W + ow * stride +
            # jw * dw, a loop without branches or divisions (a window without elements: -1).
            first = (wd[0, od] * in_h + wh[0, oh]) * in_w + offset
            for ow in range(out_w):
                code = winner[ow]
                target[ow] = -1 if rows == 0 or ww[1, ow] == 0 else (
                    first + (code >> 16) * dh * in_w + ow * stride + (code & 0xffff) * dw)
            continue
        for ow in range(out_w):
            if rows == 0 or ww[1, ow] == 0:  # a window without elements
                if recorded_index is uint8_t:
                    target[ow] = 0
                else:
                    target[ow] = -1
                continue
            code = winner[ow]
            j, jw = code >> 16, code & 0xffff
            if recorded_index is uint8_t:  # rank among the window's in-bounds taps
                target[ow] = <uint8_t>(j * ww[1, ow] + jw - first_taps[ow])
            else:
                jd = j // wh[1, oh]
                jh = j - jd * wh[1, oh]
                target[ow] = (((wd[0, od] + jd * dd) * in_h + wh[0, oh] + jh * dh) * in_w
                              + ow * stride + offset + jw * dw)


def forward_by_rows(const pooled[:, :, :, ::1] x, pooled[:, :, :, ::1] out,
                    recorded_index[:, :, :, ::1] indices, bint store_indices,
                    pooled[:, ::1] row_values, int[:, ::1] row_taps, Py_ssize_t[:, ::1] row_keys,
                    pooled[:, ::1] padded,
                    const Py_ssize_t[::1] slot_d, const Py_ssize_t[::1] slot_h,
                    int[:, ::1] codes,
                    const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                    const Py_ssize_t[:, ::1] ww, const Py_ssize_t[:, ::1] tap_ranges,
                    const Py_ssize_t[::1] first_taps, Py_ssize_t dd, Py_ssize_t dh,
                    Py_ssize_t dw, Py_ssize_t stride, Py_ssize_t offset, pooled lowest,
                    Py_ssize_t band_rows, int num_threads):
    """Max pooling by rows: the maxima of each input row's W windows are computed once into a
    per-thread cache and combined down each output row's window rows. Input row (d, h) is
    cached in slot slot_d[d] + slot_h[h] = (d % span_d) * span_h + h % span_h, where a window
    spans at most span_d by span_h rows, so its rows never evict each other
    (``row_keys[t, slot]`` names the row a slot holds: 2 * its key, + 1 if it holds NaN).
    Without indices a row's maxima are taken from a copy of it padded with ``lowest``
    (``padded[t]``): padding can tie the maximum only where every tap is ``lowest``, so the
    value is the same; copying notes NaN, and rows without any skip the NaN bookkeeping.
    A window's row maxima meet in row order and each row's taps in column order, so the winner
    is the row-major scan's: the first maximum, or the last NaN."""
    cdef Py_ssize_t rows = out.shape[1] * out.shape[2], task
    cdef Py_ssize_t bands = (rows + band_rows - 1) // band_rows
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than pooling a tiny array)
            for task in range(out.shape[0] * bands):
                forward_rows_band(x, out, indices, store_indices, row_values, row_taps,
                                  row_keys, padded, slot_d, slot_h, codes, wd, wh, ww,
                                  tap_ranges, first_taps, dd, dh, dw, stride, offset, lowest,
                                  band_of(task, bands, band_rows, rows, out.shape[2]), 0)
        else:
            for task in prange(out.shape[0] * bands, num_threads=num_threads,
                               schedule="static"):
                forward_rows_band(x, out, indices, store_indices, row_values, row_taps,
                                  row_keys, padded, slot_d, slot_h, codes, wd, wh, ww,
                                  tap_ranges, first_taps, dd, dh, dw, stride, offset, lowest,
                                  band_of(task, bands, band_rows, rows, out.shape[2]),
                                  threadid())


cdef Py_ssize_t backward_band(const real[:, :, :, ::1] grad_output,
                               const any_index[:, :, :, ::1] indices,
                               real[:, :, :, ::1] grad_input,
                               const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                               const Py_ssize_t[:, ::1] ww, const Py_ssize_t[:, ::1] cd,
                               const Py_ssize_t[:, ::1] ch, Py_ssize_t dd, Py_ssize_t dh,
                               Py_ssize_t dw, Py_ssize_t channels, bint check,
                               Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride,
                               Py_ssize_t offset, int* scratch, Band band) noexcept nogil:
    """One task of ``backward``: the input rows of ``band``, with its thread's ``scratch``.
    Returns how many invalid indices it found (where it checks)."""
    cdef Py_ssize_t in_d = grad_input.shape[1], in_h = grad_input.shape[2]
    cdef Py_ssize_t in_w = grad_input.shape[3]
    cdef Py_ssize_t out_h = grad_output.shape[2], out_w = grad_output.shape[3]
    cdef Py_ssize_t plane = band.plane, first_row = band.first, end_row = band.end
    cdef Py_ssize_t lo, hi, i, od, oh, ow, oh_begin, oh_end, row, run, step
    cdef Py_ssize_t winner, taps_hw, rank, jd, jh, channel, invalid = 0
    cdef Py_ssize_t zeroed, reach
    cdef uint64_t span
    cdef real* grad
    cdef const any_index* named
    cdef const real* gradient
    lo, hi = first_row * in_w, end_row * in_w
    span = <uint64_t>(hi - lo)  # a winner lands in the band where winner - lo < span, unsigned
    grad = &grad_input[plane, 0, 0, 0]
    zeroed = lo  # rows below it are zeroed: each output row's reach just before its scatter
    # The output rows whose windows can reach this band (more when it spans depths);
    # the winner test below keeps only what lands in it.
    if first_row // in_h == (end_row - 1) // in_h:
        oh_begin, oh_end = ch[0, first_row % in_h], ch[1, (end_row - 1) % in_h]
    else:
        oh_begin, oh_end = 0, out_h
    for od in range(cd[0, first_row // in_h], cd[1, (end_row - 1) // in_h]):
        oh = oh_begin
        while oh < oh_end:
            # Runs of rows alike in their windows: scattered, then their indices checked
            # while they are in L1 (measured on the ResNet stem's (32, 64, 112, 112)
            # backward, two threads: 16.0-16.9 -> 14.0-14.5 ms, against checking each row
            # before its scatter; 10.2-10.4 ms without the check). The winner test keeps an
            # invalid index's gradient in the band, which the caller then discards.
            run = alike_rows(wh, oh, min(CHECKED_ROWS, oh_end - oh), &step)
            for row in range(oh, oh + run):
                # (zeroed just before the scatter reaches them: then added to in L1)
                reach = min(hi, ((wd[0, od] + (wd[1, od] - 1) * dd) * in_h + wh[0, row]
                                 + (wh[1, row] - 1) * dh + 1) * in_w)
                for i in range(zeroed, reach):
                    grad[i] = 0
                zeroed = max(zeroed, reach)
                named, gradient = &indices[plane, od, row, 0], &grad_output[plane, od, row, 0]
                if any_index is not uint8_t and channels == 1:
                    for ow in range(out_w):
                        if <uint64_t>named[ow] - <uint64_t>lo < span:
                            grad[named[ow]] = grad[named[ow]] + gradient[ow]
                    continue
                channel = -1  # ow % channels, by counting
                for ow in range(out_w):
                    channel = channel + 1
                    if channel == channels:
                        channel = 0
                    if any_index is uint8_t:
                        taps_hw = wh[1, row] * ww[1, ow]
                        if wd[1, od] * taps_hw == 0:
                            continue
                        # rank -> (jd, jh, jw) with as few divisions as the window allows
                        rank = named[ow]
                        jd = 0 if wd[1, od] == 1 else rank // taps_hw
                        rank = rank - jd * taps_hw
                        jh = 0 if wh[1, row] == 1 else rank // ww[1, ow]
                        winner = (((wd[0, od] + jd * dd) * in_h + wh[0, row] + jh * dh) * in_w
                                  + ww[0, ow] + (rank - jh * ww[1, ow]) * dw)
                    else:  # channels-last: the kernels' W * C position
                        winner = <Py_ssize_t>(<uint64_t>named[ow] * <uint64_t>channels
                                              + <uint64_t>channel)
                    if <uint64_t>winner - <uint64_t>lo < span:
                        grad[winner] = grad[winner] + gradient[ow]
            if check:
                invalid += invalid_in_rows(indices, plane, od, oh, run, step, wd, wh, ww, dd,
                                           dh, dw, channels, in_d, in_h, in_w, low, high,
                                           stride, offset, scratch)
            oh = oh + run
    for i in range(zeroed, hi):
        grad[i] = 0
    return invalid


def backward(const real[:, :, :, ::1] grad_output, const any_index[:, :, :, ::1] indices,
             real[:, :, :, ::1] grad_input,
             const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
             const Py_ssize_t[:, ::1] ww, const Py_ssize_t[:, ::1] cd,
             const Py_ssize_t[:, ::1] ch, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
             Py_ssize_t channels, Py_ssize_t band_rows, bint check, Py_ssize_t low,
             Py_ssize_t high, Py_ssize_t stride, Py_ssize_t offset, int[:, ::1] scratch,
             int num_threads):
    """The scatter; with ``check``, it also counts the indices that do not name a tap of their
    windows (as first_invalid_index does; interior windows [low, high) from ow * stride +
    offset, ``scratch`` two int rows of W per thread), for a caller that then discards
    ``grad_input``: those gradients may land anywhere in their own band. Returns the count."""
    cdef Py_ssize_t rows = grad_input.shape[1] * grad_input.shape[2]
    cdef Py_ssize_t bands = (rows + band_rows - 1) // band_rows
    cdef Py_ssize_t task, invalid = 0
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than a tiny array's gradient)
            for task in range(grad_input.shape[0] * bands):
                invalid += backward_band(grad_output, indices, grad_input, wd, wh, ww, cd, ch,
                                         dd, dh, dw, channels, check, low, high, stride,
                                         offset, &scratch[0, 0],
                                         band_of(task, bands, band_rows, rows,
                                                 grad_input.shape[2]))
        else:
            for task in prange(grad_input.shape[0] * bands, num_threads=num_threads,
                               schedule="static"):
                invalid += backward_band(grad_output, indices, grad_input, wd, wh, ww, cd, ch,
                                         dd, dh, dw, channels, check, low, high, stride,
                                         offset, &scratch[threadid(), 0],
                                         band_of(task, bands, band_rows, rows,
                                                 grad_input.shape[2]))
    return invalid


cdef enum:
    CHECKED_ROWS = 8  # output rows that backward scatters before it checks their indices
    KEY_CHUNK = 256  # windows whose keys put_winners computes in one go, on the stack


cdef inline Py_ssize_t put_winners(real* row, const real* gradient, const any_index* index,
                                   Py_ssize_t start, Py_ssize_t step, Py_ssize_t low,
                                   Py_ssize_t high, Py_ssize_t stride,
                                   Py_ssize_t taps) noexcept nogil:
    """For windows ow in [low, high) with taps at row[ow * stride + j], j < taps: write the
    gradient (+ 0.0, as the scatter's zero start adds) to tap index[ow] - start - ow * step
    and 0 to the others. Returns how many windows had their tap named, or -1 where some
    index is negative or from 2**31 up: the keys are 32-bit (sharing vector lanes with the
    values), exact below 2**31 (the caller makes sure that positions are), and such an index
    names no tap, so the row's count is short either way and the caller discards the
    gradient. uint8 keys are widened first, a chunk at a time (else the loop would take 16
    windows per vector, too many for short rows). Literal strides and tap counts from the
    caller make the loops vectorised."""
    cdef Py_ssize_t ow, j, first, end
    cdef unsigned int keys[KEY_CHUNK]
    cdef unsigned int key, matched = 0  # (32-bit, as the keys: the same vector lanes)
    cdef uint64_t wide = 0
    cdef real value
    first = low
    while first < high:
        end = min(first + KEY_CHUNK, high)
        if any_index is uint8_t:
            for ow in range(first, end):
                keys[ow - first] = <unsigned int>index[ow] - <unsigned int>start
        for ow in range(first, end):
            if any_index is uint8_t:
                key = keys[ow - first]
            else:
                # (in the same pass as the keys, not one before it: measured on
                # (1, 3, 1024, 1024)'s 2x2/2, one thread, that pass took a third of the time)
                wide = wide | (<uint64_t>index[ow] >> 31)
                key = <unsigned int>index[ow] - <unsigned int>(start + ow * step)
            value = gradient[ow] + 0
            for j in range(taps):
                row[ow * stride + j] = value if key == <unsigned int>j else 0
            matched += key < <unsigned int>taps
        first = end
    return -1 if wide else matched


cdef inline Py_ssize_t put_windows(real* row, const real* gradient, const any_index* index,
                                   Py_ssize_t position, Py_ssize_t rank,
                                   const Py_ssize_t[:, ::1] ww, Py_ssize_t dw, Py_ssize_t low,
                                   Py_ssize_t high) noexcept nogil:
    """``put_row``'s windows [low, high) one by one, in exact arithmetic. Returns how many
    had their winner in the row."""
    cdef Py_ssize_t ow, j, key, unit, taps, matched = 0
    cdef real value
    for ow in range(low, high):
        taps = ww[1, ow]
        if any_index is uint8_t:
            key, unit = <Py_ssize_t>index[ow] - rank * taps, 1
        else:
            key, unit = <Py_ssize_t>index[ow] - position - ww[0, ow], dw
        value = gradient[ow] + 0
        for j in range(taps):
            row[ww[0, ow] + j * dw] = value if key == j * unit else 0
        matched += 0 <= key < taps * unit and key % unit == 0
    return matched


cdef inline Py_ssize_t put_row(real* row, const real* gradient, const any_index* index,
                               Py_ssize_t position, Py_ssize_t rank, Py_ssize_t in_w,
                               Py_ssize_t out_w, const Py_ssize_t[:, ::1] ww, Py_ssize_t dw,
                               Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride,
                               Py_ssize_t offset) noexcept nogil:
    """One input row of the write-once backward (``backward_disjoint``): the row is tap row
    ``rank`` (row-major, of the window's tap rows) of one output row's windows and starts at
    flat index ``position``. Interior windows go through ``put_winners`` where positions are
    below 2**31, the others one by one. Returns how many windows had their winner in this
    row (less where some index is invalid)."""
    cdef Py_ssize_t kernel = ww[1, low] if high > low and dw == 1 else 0
    cdef Py_ssize_t matched
    if in_w > INT32_MAX or (any_index is not uint8_t and position + in_w > INT32_MAX):
        kernel = 0
    # all zeros first where windows leave gaps or none are vectorised; else the interior
    # windows tile [low * stride + offset, high * stride + offset)
    zero_around(row, in_w, low * stride + offset if kernel == stride else 0,
                high * stride + offset if kernel == stride else 0)
    if not kernel:
        return put_windows(row, gradient, index, position, rank, ww, dw, 0, out_w)
    matched = (put_windows(row, gradient, index, position, rank, ww, dw, 0, low)
               + put_windows(row, gradient, index, position, rank, ww, dw, high, out_w))
    # uint8: the rank within the window; flat: the position from the window's first tap
    if stride == 2 and kernel == 2:
        return matched + put_winners(row + offset, gradient, index,
                                     rank * 2 if any_index is uint8_t else position + offset,
                                     0 if any_index is uint8_t else 2, low, high, 2, 2)
    return matched + put_winners(row + offset, gradient, index,
                                 rank * kernel if any_index is uint8_t else position + offset,
                                 0 if any_index is uint8_t else stride, low, high, stride,
                                 kernel)


cdef Py_ssize_t backward_disjoint_band(const real[:, :, :, ::1] grad_output,
                                        const any_index[:, :, :, ::1] indices,
                                        real[:, :, :, ::1] grad_input,
                                        const Py_ssize_t[:, ::1] wd,
                                        const Py_ssize_t[:, ::1] wh,
                                        const Py_ssize_t[:, ::1] ww,
                                        const Py_ssize_t[:, ::1] cd,
                                        const Py_ssize_t[:, ::1] ch, Py_ssize_t dd,
                                        Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t low,
                                        Py_ssize_t high, Py_ssize_t stride,
                                        Py_ssize_t offset, Band band) noexcept nogil:
    """One task of ``backward_disjoint``: the input rows of ``band``. Returns how many indices
    named a tap of their window."""
    cdef Py_ssize_t in_h = grad_input.shape[2], in_w = grad_input.shape[3]
    cdef Py_ssize_t out_w = grad_output.shape[3]
    cdef Py_ssize_t plane = band.plane, d = band.d, h = band.h, r, matched = 0
    cdef WindowRow place
    cdef real* row
    for r in range(band.first, band.end):
        next_row(&d, &h, in_h)
        row = &grad_input[plane, d, h, 0]
        place = window_row(d, h, wd, wh, cd, ch, dd, dh)
        if place.od < 0:
            zero_around(row, in_w, 0, 0)
            continue
        matched += put_row(row, &grad_output[plane, place.od, place.oh, 0],
                           &indices[plane, place.od, place.oh, 0], r * in_w,
                           place.jd * wh[1, place.oh] + place.jh, in_w, out_w, ww, dw, low,
                           high, stride, offset)
    return matched


def backward_disjoint(const real[:, :, :, ::1] grad_output,
                      const any_index[:, :, :, ::1] indices, real[:, :, :, ::1] grad_input,
                      const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                      const Py_ssize_t[:, ::1] ww, const Py_ssize_t[:, ::1] cd,
                      const Py_ssize_t[:, ::1] ch, Py_ssize_t dd, Py_ssize_t dh,
                      Py_ssize_t dw, Py_ssize_t band_rows, Py_ssize_t low, Py_ssize_t high,
                      Py_ssize_t stride, Py_ssize_t offset, int num_threads):
    """Backward (C order) where no input lies in two windows and no window is empty: each
    input row is written once, the winners' gradients and zeros around them, with no zero
    pass first (bands of input rows, as ``backward``). Returns how many indices named a tap of
    their window: fewer than the outputs means some index is invalid (the caller then
    discards ``grad_input``, written only where the valid indices point)."""
    cdef Py_ssize_t rows = grad_input.shape[1] * grad_input.shape[2]
    cdef Py_ssize_t bands = (rows + band_rows - 1) // band_rows
    cdef Py_ssize_t task, matched = 0
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than a tiny array's gradient)
            for task in range(grad_input.shape[0] * bands):
                matched += backward_disjoint_band(
                    grad_output, indices, grad_input, wd, wh, ww, cd, ch, dd, dh, dw, low,
                    high, stride, offset,
                    band_of(task, bands, band_rows, rows, grad_input.shape[2]))
        else:
            for task in prange(grad_input.shape[0] * bands, num_threads=num_threads,
                               schedule="static"):
                matched += backward_disjoint_band(
                    grad_output, indices, grad_input, wd, wh, ww, cd, ch, dd, dh, dw, low,
                    high, stride, offset,
                    band_of(task, bands, band_rows, rows, grad_input.shape[2]))
    return matched


cdef inline Py_ssize_t put_plane(real* grad, const real* gradient, const flat_index* index,
                                 const int32_t* owner, Py_ssize_t size,
                                 Py_ssize_t outputs) noexcept nogil:
    """One plane of ``backward_owned``. Returns how many indices named a tap of their
    window."""
    cdef Py_ssize_t i, o, matched = 0
    cdef int64_t at
    for i in range(size):
        grad[i] = 0
    for o in range(outputs):
        at = index[o]
        if 0 <= at < size and owner[at] == o:
            grad[at] = gradient[o] + 0  # (+ 0.0, as the scatter's zero start adds)
            matched += 1
    return matched


def backward_owned(const real[:, ::1] grad_output, const flat_index[:, ::1] indices,
                   real[:, ::1] grad_input, const int32_t[::1] owner, int num_threads):
    """Backward (C order, flat indices, planes flattened) where no input lies in two windows,
    on small planes: each plane zeroed, then each window's gradient put at its index where
    ``owner`` (per plane position: the output whose window holds it as a tap, or -1) says
    the index names a tap of that window; a task per plane, with no per-row work (2x2/2,
    two threads: (32, 512, 14, 14) 3.3 -> 0.34 ms, (32, 512, 7, 7) 1.4 -> 0.08 ms, against
    ``backward_disjoint``'s rows). Returns how many indices named a tap of their window, as
    backward_disjoint does."""
    cdef Py_ssize_t plane, matched = 0
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than a tiny array's gradient)
            for plane in range(grad_input.shape[0]):
                matched += put_plane(&grad_input[plane, 0], &grad_output[plane, 0],
                                     &indices[plane, 0], &owner[0], grad_input.shape[1],
                                     grad_output.shape[1])
        else:
            for plane in prange(grad_input.shape[0], num_threads=num_threads,
                                schedule="static"):
                matched += put_plane(&grad_input[plane, 0], &grad_output[plane, 0],
                                     &indices[plane, 0], &owner[0], grad_input.shape[1],
                                     grad_output.shape[1])
    return matched


cdef inline bint valid_index(any_index recorded, Py_ssize_t od, Py_ssize_t oh, Py_ssize_t ow,
                             const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                             const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh,
                             Py_ssize_t dw, Py_ssize_t channels, Py_ssize_t in_d,
                             Py_ssize_t in_h, Py_ssize_t in_w, double inverse_w) noexcept nogil:
    """Whether ``recorded`` is what forward could have written for window (od, oh, ow)."""
    cdef Py_ssize_t taps = wd[1, od] * wh[1, oh] * ww[1, ow], index, row, d
    if any_index is uint8_t:
        return recorded < taps or (taps == 0 and recorded == 0)
    else:
        if taps == 0:
            return recorded == -1
        if recorded < 0 or recorded >= in_d * in_h * in_w // channels:
            return False
        index = recorded
        if channels > 1:  # channels-last: the kernels' W * C position
            index = recorded * channels + ow % channels
        # The row (d * H + h) by a multiplication with 1 / in_w, corrected to the exact
        # quotient: an integer division per index would cost more than the rest of the check.
        row = <Py_ssize_t>(<double>index * inverse_w)
        if row * in_w > index:
            row = row - 1
        elif (row + 1) * in_w <= index:
            row = row + 1
        d = 0 if in_d == 1 else row // in_h
        return (is_tap(index - row * in_w, ww, ow, dw) and is_tap(row - d * in_h, wh, oh, dh)
                and is_tap(d, wd, od, dd))


cdef inline Py_ssize_t count_missed(const any_index* recorded, Py_ssize_t low,
                                    Py_ssize_t high, Py_ssize_t stride, Py_ssize_t first,
                                    Py_ssize_t taps, int rows, Py_ssize_t step,
                                    Py_ssize_t count, Py_ssize_t pitch,
                                    Py_ssize_t first_step) noexcept nogil:
    """``count_invalid_interior`` for windows of ``rows`` (a literal, 1 to 4) tap rows
    ``step`` apart, in one loop per output row: no scratch rows to write and read again."""
    cdef Py_ssize_t ow, r
    cdef uint64_t wide = 0
    cdef unsigned int key, hit, bad = 0  # (32-bit lanes throughout: the row is under 2**31)
    for r in range(count):
        for ow in range(low, high):
            wide = wide | (<uint64_t>recorded[ow] >> 31)
            key = <unsigned int>recorded[ow] - <unsigned int>(ow * stride) - <unsigned int>first
            hit = key < <unsigned int>taps
            if rows > 1:
                hit = hit | (key - <unsigned int>step < <unsigned int>taps)
            if rows > 2:
                hit = hit | (key - <unsigned int>(2 * step) < <unsigned int>taps)
            if rows > 3:
                hit = hit | (key - <unsigned int>(3 * step) < <unsigned int>taps)
            bad = bad + (hit == 0)
        recorded, first = recorded + pitch, first + first_step
    return 1 if wide else bad


cdef inline Py_ssize_t count_invalid_interior(const any_index* recorded, int* narrow, int* hit,
                                              Py_ssize_t low, Py_ssize_t high,
                                              Py_ssize_t stride, Py_ssize_t first,
                                              Py_ssize_t taps, Py_ssize_t td, Py_ssize_t th,
                                              Py_ssize_t step_d, Py_ssize_t step_h,
                                              Py_ssize_t count, Py_ssize_t pitch,
                                              Py_ssize_t first_step) noexcept nogil:
    """How many of the flat indices recorded[low:high] miss their windows, for the interior
    windows of ``count`` output rows (``pitch`` indices apart, their first taps
    ``first_step`` apart), C order, no W dilation, in a plane of under 2**31 elements:
    window ow's taps are first + ow * stride + jd * step_d + jh * step_h + jw (jd < td,
    jh < th, jw < taps). Vectorised in 32-bit lanes (``narrow`` and ``hit`` are scratch rows):
    an index with a bit set from bit 31 up is invalid, and below that 32-bit differences are
    exact; one unsigned comparison per window row finds the tap (taps <= W, so at most one
    row can match)."""
    cdef Py_ssize_t ow, jd, jh, r, bad = 0
    cdef uint64_t wide = 0
    cdef unsigned int start
    # (literal row counts: one vectorised loop; measured on the ResNet stem's 3x3 windows)
    if td * th == 1:
        return count_missed(recorded, low, high, stride, first, taps, 1, 0, count, pitch,
                            first_step)
    elif td * th == 2:
        return count_missed(recorded, low, high, stride, first, taps, 2,
                            step_h if th == 2 else step_d, count, pitch, first_step)
    elif td == 1 and th == 3:
        return count_missed(recorded, low, high, stride, first, taps, 3, step_h, count, pitch,
                            first_step)
    elif td == 1 and th == 4:
        return count_missed(recorded, low, high, stride, first, taps, 4, step_h, count, pitch,
                            first_step)
    for r in range(count):
        for ow in range(low, high):  # narrow[ow]: the index less its window's first column
            wide = wide | (<uint64_t>recorded[ow] >> 31)
            narrow[ow] = <int>(<unsigned int>recorded[ow] - <unsigned int>(ow * stride))
            hit[ow] = 0
        if wide:
            return 1  # (only whether any is invalid matters)
        for jd in range(td):
            for jh in range(th):
                start = <unsigned int>(first + jd * step_d + jh * step_h)
                for ow in range(low, high):
                    hit[ow] = hit[ow] | ((<unsigned int>narrow[ow] - start) < <unsigned int>taps)
        for ow in range(low, high):
            bad = bad + (hit[ow] == 0)
        recorded, first = recorded + pitch, first + first_step
    return bad


cdef Py_ssize_t invalid_in_rows(const any_index[:, :, :, ::1] indices,
                                Py_ssize_t plane, Py_ssize_t od, Py_ssize_t oh,
                                Py_ssize_t count, Py_ssize_t step,
                                const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                                const Py_ssize_t[:, ::1] ww, Py_ssize_t dd,
                                Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t channels,
                                Py_ssize_t in_d, Py_ssize_t in_h, Py_ssize_t in_w,
                                Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride,
                                Py_ssize_t offset, int* scratch) noexcept nogil:
    """How many indices of the ``count`` output rows from (plane, od, oh) on do not name a tap
    of their windows, rows alike in their windows, their first taps ``step`` input rows apart
    (``alike_rows``). Interior windows [low, high) (taps from ow * stride + offset) are
    checked in 32-bit lanes where the plane allows it, the others one by one; ``scratch``
    holds two rows of W."""
    # (not inline: inlined into backward_band, it made the ResNet stem's backward on one
    # thread 10.4 -> 11.5 ms)
    cdef Py_ssize_t out_w = indices.shape[3], plane_w = in_w // channels  # (W * C interleaved)
    cdef Py_ssize_t interior = 0, invalid = 0, b, base, ow, edge, r
    if (any_index is not uint8_t and dw == channels and high > low
            and in_d * in_h * plane_w < (<Py_ssize_t>1) << 31 and wd[1, od] * wh[1, oh] > 0):
        interior = high - low
        base = (wd[0, od] * in_h + wh[0, oh]) * plane_w + offset // channels
        if channels == 1:
            invalid = count_invalid_interior(
                &indices[plane, od, oh, 0], scratch, scratch + out_w, low, high, stride, base,
                ww[1, low], wd[1, od], wh[1, oh], dd * in_h * plane_w, dh * plane_w, count,
                out_w, step * plane_w)
        else:  # channels-last: a run of C channels shares each window
            for r in range(count):
                for b in range(low // channels, high // channels):
                    invalid += count_invalid_interior(
                        &indices[plane, od, oh + r, b * channels], scratch, scratch + out_w, 0,
                        channels, 0, base + r * step * plane_w + b * (stride // channels),
                        ww[1, low], wd[1, od], wh[1, oh], dd * in_h * plane_w, dh * plane_w, 1,
                        0, 0)
    for r in range(count):
        for edge in range(out_w - interior):
            ow = edge if edge < low else edge + interior
            if not valid_index(indices[plane, od, oh + r, ow], od, oh + r, ow, wd, wh, ww, dd,
                               dh, dw, channels, in_d, in_h, in_w, 1.0 / in_w):
                invalid += 1
    return invalid


cdef Py_ssize_t invalid_in_band(const any_index[:, :, :, ::1] indices,
                                 const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                                 const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh,
                                 Py_ssize_t dw, Py_ssize_t channels, Py_ssize_t in_d,
                                 Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t low,
                                 Py_ssize_t high, Py_ssize_t stride, Py_ssize_t offset,
                                 int* scratch, Band band) noexcept nogil:
    """One task of ``first_invalid_index``: how many indices of the output rows of ``band``
    do not name a tap of their windows."""
    cdef Py_ssize_t out_h = indices.shape[2], row = band.first, od = band.d, oh = band.h
    cdef Py_ssize_t run, step, invalid = 0
    while row < band.end:
        next_row(&od, &oh, out_h)
        run = alike_rows(wh, oh, min(band.end - row, out_h - oh), &step)
        invalid += invalid_in_rows(indices, band.plane, od, oh, run, step, wd, wh, ww, dd, dh,
                                   dw, channels, in_d, in_h, in_w, low, high, stride, offset,
                                   scratch)
        row, oh = row + run, oh + run - 1
    return invalid


def first_invalid_index(const any_index[:, :, :, ::1] indices,
                        const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                        const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh,
                        Py_ssize_t dw, Py_ssize_t channels, Py_ssize_t in_d, Py_ssize_t in_h,
                        Py_ssize_t in_w, Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride,
                        Py_ssize_t offset, int[:, ::1] scratch, Py_ssize_t band_rows,
                        int num_threads):
    """The flat position (in ``indices``) of the first index that does not name a tap of its
    own window, or -1 when all are valid. W outputs [low, high) are the interior windows
    (taps from ow * stride + offset); ``scratch`` holds two int rows of W outputs per thread;
    each task checks ``band_rows`` output rows of one plane."""
    cdef Py_ssize_t out_d = indices.shape[1], out_h = indices.shape[2], out_w = indices.shape[3]
    cdef Py_ssize_t rows = out_d * out_h, bands = (rows + band_rows - 1) // band_rows
    cdef Py_ssize_t task, row, plane, od, oh, ow, position, invalid = 0, first = -1
    cdef double inverse_w = 1.0 / in_w
    with nogil:
        # Counted in parallel (the common, valid case); located serially only on failure.
        if num_threads == 1:  # (an OpenMP region costs more than checking a tiny array)
            for task in range(indices.shape[0] * bands):
                invalid += invalid_in_band(indices, wd, wh, ww, dd, dh, dw, channels, in_d, in_h,
                                           in_w, low, high, stride, offset, &scratch[0, 0],
                                           band_of(task, bands, band_rows, rows, out_h))
        else:
            for task in prange(indices.shape[0] * bands, num_threads=num_threads,
                               schedule="static"):
                invalid += invalid_in_band(indices, wd, wh, ww, dd, dh, dw, channels, in_d, in_h,
                                           in_w, low, high, stride, offset,
                                           &scratch[threadid(), 0],
                                           band_of(task, bands, band_rows, rows, out_h))
        if invalid:
            for position in range(indices.shape[0] * out_d * out_h * out_w):
                row, ow = position // out_w, position % out_w
                plane, od, oh = row // (out_d * out_h), (row // out_h) % out_d, row % out_h
                if not valid_index(indices[plane, od, oh, ow], od, oh, ow, wd, wh, ww,
                                   dd, dh, dw, channels, in_d, in_h, in_w, inverse_w):
                    first = position
                    break
    return first


def unpool(const pooled[:, ::1] x, const flat_index[:, ::1] indices, pooled[:, ::1] out,
           int num_threads):
    cdef Py_ssize_t plane, o
    with nogil:
        for plane in prange(x.shape[0], num_threads=num_threads, schedule="static"):
            for o in range(x.shape[1]):
                out[plane, indices[plane, o]] = x[plane, o]
