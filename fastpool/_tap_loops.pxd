# The vectorised inner loops that max and average pooling share: a "pass" folds up to four
# taps (sums at stride 1: eight) into a row of running results,
# ``result[o] = fold(result[o], tap[o * stride])`` for each tap in turn, over outputs o in
# [low, high). Folding several taps per pass keeps the running values in registers; each
# output still meets its taps in the order given, so sums and tie/NaN rules come out exactly
# as tap-by-tap loops would give them. A "fresh" pass starts each output from ``start`` (0,
# or max's lowest value) instead of reading it.
#
# The fold is one of ``Fold``: SUM; MAX, PyTorch's max (a tap wins if greater or NaN); or
# MAX_OF_NUMBERS, the same max over taps known to hold no NaN (where the caller has copied
# them and looked), which skips noting NaN taps (measured: a fifth of the ResNet stem's and
# SPPF's time). A NaN already in ``result`` stays under either max: no number is greater.
#
# Size: the max module inlines fold_fused at its every use, for eight element types, and
# sits at GCC's inlining limits (inline-unit-growth, large-function-growth). Making
# fold_fused larger, or inlining it at more places, tips passes out of line there, and they
# then run 3-30x slower (ResNet stem 6.8 -> 130 ms). Measured: eight-tap max passes (for
# every type, for floats alone, or in a module built for floats alone); a ninth tap slot
# for sums alone (even guarded by fold == SUM); max forward's row folds taking
# MAX_OF_NUMBERS after a NaN check instead of MAX (a 2x2/2 max on (8, 16, 32, 32) 25 -> 51
# us). Raising inline-unit-growth to 150 does not undo it; raising it, max-inline-insns-single
# and large-function-growth to 1000 and large-function-insns to 100000 does, but the AVX2
# max module then takes 161 s to compile instead of 72. So a change here is timed on the
# max cases too (README, Speed).

from fastpool._kernel_common cimport pooled, prefetch
from fastpool._simd_passes cimport fastpool_pair_max_double, fastpool_pair_max_float


cdef enum Fold:
    SUM
    MAX
    MAX_OF_NUMBERS


cdef inline pooled fold_tap(pooled m, pooled v, Fold fold, bint* seen) noexcept nogil:
    """m folded with tap v; a NaN tap is noted in ``seen`` (MAX only)."""
    if fold == SUM:
        return m + v
    seen[0] = seen[0] | (fold == MAX and v != v)
    return v if v > m else m


cdef inline void put_nans(pooled* result, const pooled* const* taps, int count,
                          Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride) noexcept nogil:
    """After a max pass that met NaN taps: a NaN tap beats everything before it, so each
    output's last NaN tap is its maximum."""
    cdef Py_ssize_t o
    cdef int j
    for o in range(low, high):
        for j in range(count - 1, -1, -1):
            if taps[j][o * stride] != taps[j][o * stride]:
                result[o] = taps[j][o * stride]
                break


cdef inline void fold_fused(pooled* result, const pooled* const* taps, int count, Fold fold,
                            Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride, bint fresh,
                            pooled start) noexcept nogil:
    """Fold the first ``count`` (1 to 8) taps[j][o * stride], in that order."""
    cdef const pooled* a = taps[0]
    cdef const pooled* b = taps[1] if count > 1 else a
    cdef const pooled* c = taps[2] if count > 2 else a
    cdef const pooled* d = taps[3] if count > 3 else a
    cdef const pooled* e = taps[4] if count > 4 else a
    cdef const pooled* f = taps[5] if count > 5 else a
    cdef const pooled* g = taps[6] if count > 6 else a
    cdef const pooled* h = taps[7] if count > 7 else a
    cdef Py_ssize_t o
    cdef pooled m
    cdef bint unordered = False, seen
    # For max the loop is the plain ``v > m`` select, which compiles to packed max
    # instructions: it passes over NaN taps and only notes that it met one (never, for
    # integers), and a rare second loop puts the last NaN in. (Each tap through its own
    # pointer, a literal count: the compiler keeps them in registers. Written as a loop over
    # the taps, the max passes were not unrolled: the ResNet stem 6.6 -> 22.7 ms.)
    for o in range(low, high):
        seen = False
        m = fold_tap(start if fresh else result[o], a[o * stride], fold, &seen)
        if count > 1:
            m = fold_tap(m, b[o * stride], fold, &seen)
        if count > 2:
            m = fold_tap(m, c[o * stride], fold, &seen)
        if count > 3:
            m = fold_tap(m, d[o * stride], fold, &seen)
        if count > 4:
            m = fold_tap(m, e[o * stride], fold, &seen)
        if count > 5:
            m = fold_tap(m, f[o * stride], fold, &seen)
        if count > 6:
            m = fold_tap(m, g[o * stride], fold, &seen)
        if count > 7:
            m = fold_tap(m, h[o * stride], fold, &seen)
        result[o] = m
        unordered = unordered | seen
    if unordered:
        put_nans(result, taps, count, low, high, stride)


cdef inline void fold_counted(pooled* result, const pooled* const* taps, int count, Fold fold,
                              Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride, bint fresh,
                              pooled start, bint wide) noexcept nogil:
    """fold_fused for a literal ``count``: up to 8 where ``wide`` (a literal), else 4."""
    if wide and count == 8:
        fold_fused(result, taps, 8, fold, low, high, stride, fresh, start)
    elif wide and count == 7:
        fold_fused(result, taps, 7, fold, low, high, stride, fresh, start)
    elif wide and count == 6:
        fold_fused(result, taps, 6, fold, low, high, stride, fresh, start)
    elif wide and count == 5:
        fold_fused(result, taps, 5, fold, low, high, stride, fresh, start)
    elif count == 4:
        fold_fused(result, taps, 4, fold, low, high, stride, fresh, start)
    elif count == 3:
        fold_fused(result, taps, 3, fold, low, high, stride, fresh, start)
    elif count == 2:
        fold_fused(result, taps, 2, fold, low, high, stride, fresh, start)
    else:
        fold_fused(result, taps, 1, fold, low, high, stride, fresh, start)


cdef inline void fold_pass(pooled* result, const pooled* const* taps, int count, Fold fold,
                           Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride, bint fresh,
                           pooled start) noexcept nogil:
    """Fold the first ``count`` taps[j][o * stride]: up to 8 for sums at stride 1, else up
    to 4 (``fold_window``)."""
    # Literal folds, strides and counts become constants once fold_fused is inlined: each
    # combination is its own vectorised loop, with packed loads for strides 1 and 2.
    if fold == MAX:
        fold_strided(result, taps, count, MAX, low, high, stride, fresh, start)
    elif fold == MAX_OF_NUMBERS:
        fold_strided(result, taps, count, MAX_OF_NUMBERS, low, high, stride, fresh, start)
    else:
        fold_strided(result, taps, count, SUM, low, high, stride, fresh, start)


cdef inline void fold_strided(pooled* result, const pooled* const* taps, int count, Fold fold,
                              Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride, bint fresh,
                              pooled start) noexcept nogil:
    if stride == 1:
        fold_counted(result, taps, count, fold, low, high, 1, fresh, start, fold == SUM)
    elif stride == 2:
        fold_counted(result, taps, count, fold, low, high, 2, fresh, start, False)
    else:
        fold_counted(result, taps, count, fold, low, high, stride, fresh, start, False)


cdef inline void fold_neighbours(pooled* result, const pooled* row, Py_ssize_t count,
                                 Fold fold, Py_ssize_t low, Py_ssize_t high, bint fresh,
                                 pooled start) noexcept nogil:
    """Fold the ``count`` (2 to 4) neighbouring taps row[o * 2 + j], j < count: one window
    row at stride 2."""
    # Taps given as one pointer plus literal offsets form one interleaved group for the
    # compiler: two vector loads split into even and odd lanes, where taps through unrelated
    # pointers at stride 2 are gathered lane by lane (measured: the ResNet stem's row maxima).
    cdef const pooled* taps[4]
    taps[0], taps[1], taps[2], taps[3] = row, row + 1, row + 2, row + 3
    if count == 4:
        fold_fused(result, taps, 4, fold, low, high, 2, fresh, start)
    elif count == 3:
        fold_fused(result, taps, 3, fold, low, high, 2, fresh, start)
    else:
        fold_fused(result, taps, 2, fold, low, high, 2, fresh, start)


cdef inline void fold_pairs(pooled* result, const pooled* row, Py_ssize_t second, Fold fold,
                            Py_ssize_t low, Py_ssize_t high, bint fresh,
                            pooled start) noexcept nogil:
    """Fold row[o * 2], row[o * 2 + 1], row[o * 2 + second], row[o * 2 + second + 1]: the
    taps of a 2x2 window at stride 2, one pass for both rows."""
    # (two interleaved groups, like fold_neighbours'; measured: a 2x2/2 max pool on 32x32
    # planes 41 -> 31 us, one pass per window row before)
    cdef const pooled* taps[4]
    taps[0], taps[1], taps[2], taps[3] = row, row + 1, row + second, row + second + 1
    if fold == MAX:
        fold_fused(result, taps, 4, MAX, low, high, 2, fresh, start)
    elif fold == MAX_OF_NUMBERS:
        fold_fused(result, taps, 4, MAX_OF_NUMBERS, low, high, 2, fresh, start)
    else:
        fold_fused(result, taps, 4, SUM, low, high, 2, fresh, start)


cdef inline void fold_rows(pooled* result, const pooled* origin, Fold fold, Py_ssize_t low,
                           Py_ssize_t high, Py_ssize_t stride, Py_ssize_t td, Py_ssize_t th,
                           Py_ssize_t tw, Py_ssize_t step_d, Py_ssize_t step_h,
                           Py_ssize_t step_w, pooled start, Py_ssize_t rows,
                           Py_ssize_t result_pitch, Py_ssize_t origin_pitch) noexcept nogil:
    """``fold_window`` (fresh) for ``rows`` output rows alike in their windows: row r folds
    into result + r * result_pitch, from origin + r * origin_pitch."""
    # Stride-2 windows of 2 to 4 columns (fold_window's pass per window row) loop over the
    # rows here, with no call per row: on short rows (16 outputs) the call cost more than
    # its passes. (fold_window keeps its own copy of this loop: its single rows taken through
    # this one measured 5-10% slower in the ResNet stem's row maxima.)
    cdef Py_ssize_t r, jd, jh, second
    cdef const pooled* row
    cdef bint fresh
    if stride == 2 and step_w == 1 and tw == 2 and td * th == 2:
        second = step_d if td == 2 else step_h  # (the window's second row)
        # (floating-point maxima in explicit vector instructions where they give the scan's
        # bits: ``_simd_passes``)
        if pooled is float and fold != SUM:
            if fastpool_pair_max_float(result, origin, low, high, rows, result_pitch,
                                       origin_pitch, second):
                return
        elif pooled is double and fold != SUM:
            if fastpool_pair_max_double(result, origin, low, high, rows, result_pitch,
                                        origin_pitch, second):
                return
        for r in range(rows):
            fold_pairs(result + r * result_pitch, origin + r * origin_pitch, second, fold, low,
                       high, True, start)
        return
    if stride == 2 and step_w == 1 and 2 <= tw <= 4 and td * th > 0:
        for r in range(rows):
            fresh = True
            for jd in range(td):
                for jh in range(th):
                    row = origin + r * origin_pitch + jd * step_d + jh * step_h
                    if fold == MAX:
                        fold_neighbours(result + r * result_pitch, row, tw, MAX, low, high,
                                        fresh, start)
                    elif fold == MAX_OF_NUMBERS:
                        fold_neighbours(result + r * result_pitch, row, tw, MAX_OF_NUMBERS,
                                        low, high, fresh, start)
                    else:
                        fold_neighbours(result + r * result_pitch, row, tw, SUM, low, high,
                                        fresh, start)
                    fresh = False
        return
    for r in range(rows):
        fold_window(result + r * result_pitch, origin + r * origin_pitch, fold, low, high,
                    stride, td, th, tw, step_d, step_h, step_w, True, start)


cdef inline void fold_window(pooled* result, const pooled* origin, Fold fold,
                             Py_ssize_t low, Py_ssize_t high, Py_ssize_t stride, Py_ssize_t td,
                             Py_ssize_t th, Py_ssize_t tw, Py_ssize_t step_d,
                             Py_ssize_t step_h, Py_ssize_t step_w, bint fresh,
                             pooled start) noexcept nogil:
    """Fold the taps origin[o * stride + jd * step_d + jh * step_h + jw * step_w] (jd < td,
    jh < th, jw < tw) in row-major order, four per pass (sums at stride 1: eight): a whole
    window's taps. ``fresh``: start from ``start``, not from ``result``."""
    # (Eight-tap sums: Inception's 3x3/1 average forward on (32, 192, 28, 28), one thread,
    # 3.30-3.32 -> 2.80-2.83 ms, in two passes instead of three. Max passes stay at four:
    # eight-tap max loops, for every element type or for floats alone, made the compiler
    # stop inlining the max module's passes, which then ran 3-30x slower; SPPF's 5x5/1 took
    # 2.5 ms -> 2.0 ms through a separate five-tap loop, not kept: a near-copy of fold_fused.)
    cdef const pooled* taps[8]
    cdef const pooled* row
    cdef int count = 0, most = 8 if stride == 1 and fold == SUM else 4
    cdef Py_ssize_t jd, jh, jw, o
    if stride == 2 and step_w == 1 and tw == 2 and td * th == 2:
        fold_pairs(result, origin, step_d if td == 2 else step_h, fold, low, high, fresh, start)
        return
    if stride == 2 and step_w == 1 and 2 <= tw <= 4 and td * th > 0:  # a pass per row
        for jd in range(td):
            for jh in range(th):
                row = origin + jd * step_d + jh * step_h
                if fold == MAX:
                    fold_neighbours(result, row, tw, MAX, low, high, fresh, start)
                elif fold == MAX_OF_NUMBERS:
                    fold_neighbours(result, row, tw, MAX_OF_NUMBERS, low, high, fresh, start)
                else:
                    fold_neighbours(result, row, tw, SUM, low, high, fresh, start)
                fresh = False
        return
    for jd in range(td):
        for jh in range(th):
            for jw in range(tw):
                taps[count] = origin + jd * step_d + jh * step_h + jw * step_w
                count = count + 1
                if count == most:
                    fold_pass(result, taps, count, fold, low, high, stride, fresh, start)
                    count, fresh = 0, False
    if count:
        fold_pass(result, taps, count, fold, low, high, stride, fresh, start)
    elif fresh:  # no taps at all
        for o in range(low, high):
            result[o] = start


cdef inline bint copy_row(pooled* target, const pooled* row, Py_ssize_t count) noexcept nogil:
    """target[i] = row[i] for i < count. Returns whether they hold NaN."""
    cdef Py_ssize_t i
    cdef pooled value
    cdef bint unordered = False
    for i in range(count):
        value = row[i]
        target[i] = value
        unordered = unordered | (value != value)
    return unordered


cdef inline bint holds_nan(const pooled* row, Py_ssize_t count) noexcept nogil:
    """Whether row[i], i < count, holds NaN."""
    cdef Py_ssize_t i
    cdef bint unordered = False
    for i in range(count):
        unordered = unordered | (row[i] != row[i])
    return unordered


cdef inline bint pad_row(pooled* target, const pooled* row, Py_ssize_t width, Py_ssize_t offset,
                         Py_ssize_t length, pooled fill) noexcept nogil:
    """target[i] = row[i + offset] where i + offset lies in [0, width), else ``fill``, for
    i < length: a row with its padding, so that every window lies wholly inside it. Returns
    whether the row's copied elements hold NaN."""
    cdef Py_ssize_t i, begin = min(max(-offset, 0), length)
    cdef Py_ssize_t end = min(max(width - offset, begin), length)
    for i in range(begin):
        target[i] = fill
    for i in range(end, length):
        target[i] = fill
    return copy_row(target + begin, row + begin + offset, end - begin)


cdef inline void fill_planes(pooled[:, ::1] planes, Py_ssize_t size, pooled fill) noexcept nogil:
    """planes[t, :size] = fill for every row t: the padding of each thread's padded plane,
    written once for all the planes that ``copy_plane`` then copies into it."""
    cdef Py_ssize_t t, i
    for t in range(planes.shape[0]):
        for i in range(size):
            planes[t, i] = fill


cdef inline bint copy_plane(pooled* target, const pooled* plane, Py_ssize_t in_h,
                            Py_ssize_t in_w, Py_ssize_t top, Py_ssize_t left,
                            Py_ssize_t width, bint ahead) noexcept nogil:
    """Copy a C-order (in_h, in_w) plane into rows of ``width`` (>= left + in_w), its element
    (0, 0) at (top, left): a plane with its padding, which the caller has filled already
    (``fill_planes``), so that only the plane's own rows are written. ``ahead``: the next
    plane follows it in memory and is copied next, so each row's copy asks for that plane's
    row too, which the plane's passes give time to arrive. Returns whether the plane holds
    NaN."""
    # (measured against the copy without it, 300 interleaved rounds: Inception's 3x3/1
    # average forward, (32, 192, 28, 28), median 4-6% faster on one and two threads, where
    # the copy's loads had waited on memory; SPPF's max the same. Asking for the whole next
    # plane at once only moved the wait to the requests)
    cdef Py_ssize_t r
    cdef bint unordered = False
    for r in range(in_h):
        if ahead:
            prefetch(plane + (in_h + r) * in_w, in_w * sizeof(pooled))
        unordered = unordered | copy_row(target + (r + top) * width + left, plane + r * in_w,
                                         in_w)
    return unordered
