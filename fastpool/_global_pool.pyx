"""Global pooling kernels: the fast path for windows that cover a whole input plane.

Layout: inputs are (planes, plane_size), C-contiguous (planes = N * C); outputs one value (and
for max one index) per plane. ``mean_channels_last`` takes a channels-last input as (N,
plane_size, C), C-contiguous, and writes (N, C).

Parallelism: each plane is cut into chunks of a fixed size (chosen by the caller, independent of
the thread count). A prange over (plane, chunk) tasks reduces each chunk into the caller's
partial arrays, then a prange over planes combines each plane's partials in chunk order. So
large planes use every thread even when there are few of them, no two threads write the same
element, and the bits are the same for any thread count. Planes of one chunk skip the partials:
a task per plane. The mean's gradient writes all planes as one flat run, cut into chunks, each
element written once. Within a chunk, LANES interleaved accumulators break the serial dependency
of one running sum or maximum, so the compiler can vectorise. Channels-last means take the same
tasks (a sample, or a sample's chunk) over whole rows of C channels, summed side by side
(vectorised across channels) into per-thread lanes; each channel meets its values in the same
chunks, lanes and order as a C-order plane: the two layouts give the same bits.

Ties and NaN (PyTorch's rule, as in _max_pool: an element replaces the running maximum when
it is greater or NaN): a chunk's winner is its last NaN, or else the first element equal to
its maximum (-0.0 and 0.0 being equal, the first zero, with its sign). Chunks combine on
(value, index) pairs: a NaN beats any number and the later NaN beats an earlier one;
otherwise the larger value wins and equal values keep the smaller index. The result is the
first maximum in row-major order, or the last NaN, exactly as a serial scan. Kernels trust
their inputs and never raise.
"""

from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t, uint8_t

from fastpool._kernel_common cimport pooled, real
from fastpool._tap_loops cimport SUM, fold_window, holds_nan

ctypedef fused recorded_index:  # flat positions, or compact ranks (in a whole plane the same)
    int64_t
    uint8_t

cdef enum:
    LANES = 8
    SCAN = 64  # values that chunk_max's search for the maximum's position compares at once
    PLANE_BLOCK = 64  # planes a task of ``mean`` sums, then divides in one pass
    LANE_ROW_LIMIT = 4096  # the most lanes (LANES * C) channel_sums folds in one pass

LANES_PER_CHANNEL = LANES  # (the lanes ``mean_channels_last`` takes per channel, per thread)


cdef inline real chunk_sum(const real* values, Py_ssize_t count) noexcept nogil:
    cdef real lanes[LANES]
    cdef real value
    cdef Py_ssize_t block, i, j, whole = count - count % LANES, skip = LANES - count % LANES
    for j in range(LANES):
        lanes[j] = 0
    for block in range(count // LANES):
        for j in range(LANES):
            lanes[j] = lanes[j] + values[block * LANES + j]
    if count < LANES:
        for i in range(count):
            lanes[i] = lanes[i] + values[i]
    elif whole < count:
        # The last count % LANES values go to the last lanes, as the last LANES values loaded
        # whole, those summed already taken as -0.0, which adds nothing (to -0.0 either). (A
        # row of lanes stays in registers: tail values added lane by lane took the lanes
        # through memory, a third of a 7x7 plane's time.)
        for j in range(LANES):
            value = values[count - LANES + j]
            lanes[j] = lanes[j] + (value if j >= skip else -0.0)
    return (((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
            + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])))


cdef inline bint beats(pooled value, int64_t index, pooled best, int64_t best_index) noexcept nogil:
    """Whether (value, index) wins over (best, best_index) under the rule above; an index of
    -1 means no element."""
    if index < 0:
        return False
    if best_index < 0:
        return True
    if value != value:
        return best != best and index > best_index or best == best
    if best != best:
        return False
    return value > best or (value == best and index < best_index)


cdef inline bint holds(const pooled* values, Py_ssize_t count, pooled top) noexcept nogil:
    """Whether values[0:count] hold ``top``."""
    cdef bint found = False
    cdef Py_ssize_t i
    for i in range(count):  # (no exit: vector compares)
        found = found | (values[i] == top)
    return found


cdef inline void chunk_max(const pooled* values, Py_ssize_t count, Py_ssize_t offset,
                           pooled* best, int64_t* best_index) noexcept nogil:
    """The winner among values[0:count] (whose plane positions start at ``offset``): the last
    NaN, or the first maximum, found in LANES lanes, then sought a SCAN of values at a time.
    ``count`` >= 1."""
    cdef pooled lanes[LANES]
    cdef pooled top, value
    cdef Py_ssize_t block, i, j
    # (a pass for NaN, one for the maximum, a search for its position: each a vector loop,
    # where one pass updating each lane's (value, position) took a branch per element; one
    # thread, a 7x7 plane 197 -> 43 ns, 300x300 65 -> 23 us)
    if holds_nan(values, count):
        i = count - 1
        while values[i] == values[i]:
            i = i - 1
        best[0], best_index[0] = values[i], offset + i
        return
    top = values[0]
    if count < LANES:
        for i in range(1, count):
            top = values[i] if values[i] > top else top
    else:
        for j in range(LANES):
            lanes[j] = values[j]
        for block in range(1, count // LANES):
            for j in range(LANES):
                value = values[block * LANES + j]
                # (``not <=`` is ``>`` without NaN; only the first compiles to a packed max)
                lanes[j] = value if not value <= lanes[j] else lanes[j]
        for j in range(LANES):  # the last LANES values (some met already: max is idempotent)
            value = values[count - LANES + j]
            lanes[j] = value if not value <= lanes[j] else lanes[j]
        for j in range(LANES):
            top = lanes[j] if lanes[j] > top else top
    # the first maximum (-0.0 and 0.0 are equal: the first zero, with its sign)
    i = 0
    while i + SCAN <= count and not holds(values + i, SCAN, top):
        i = i + SCAN
    while not values[i] == top:
        i = i + 1
    best[0], best_index[0] = values[i], offset + i


cdef inline void mean_block(const real[:, ::1] x, real[::1] out, Py_ssize_t first,
                            Py_ssize_t divisor) noexcept nogil:
    """The means of planes [first, first + PLANE_BLOCK) (those there are), one plane each."""
    cdef Py_ssize_t plane, end = min(first + PLANE_BLOCK, x.shape[0])
    # (the sums first, then their quotients in one vectorised pass: a division after each
    # plane's sum held the next plane up; 7x7 planes, one thread, 7.1 -> 6.7 ns a plane)
    for plane in range(first, end):
        out[plane] = chunk_sum(&x[plane, 0], x.shape[1])
    for plane in range(first, end):
        out[plane] = out[plane] / <real>divisor


def mean(const real[:, ::1] x, real[::1] out, real[::1] partial, Py_ssize_t chunk,
         Py_ssize_t divisor, int num_threads):
    cdef Py_ssize_t size = x.shape[1], chunks = (size + chunk - 1) // chunk
    cdef Py_ssize_t task, plane, start, c, blocks = (x.shape[0] + PLANE_BLOCK - 1) // PLANE_BLOCK
    cdef real total
    with nogil:
        if chunks == 1:  # small planes: one pass, no partial sums
            if num_threads == 1:  # (an OpenMP region costs more than a tiny array's mean)
                for task in range(blocks):
                    mean_block(x, out, task * PLANE_BLOCK, divisor)
            else:
                for task in prange(blocks, num_threads=num_threads, schedule="static"):
                    mean_block(x, out, task * PLANE_BLOCK, divisor)
        else:
            for task in prange(x.shape[0] * chunks, num_threads=num_threads,
                               schedule="static"):
                plane, start = task // chunks, (task % chunks) * chunk
                partial[task] = chunk_sum(&x[plane, start], min(chunk, size - start))
            for plane in prange(x.shape[0], num_threads=num_threads, schedule="static"):
                total = 0
                for c in range(chunks):
                    total = total + partial[plane * chunks + c]
                out[plane] = total / <real>divisor


cdef inline void max_plane(const pooled[:, ::1] x, pooled[::1] out,
                           recorded_index[::1] indices, bint record,
                           Py_ssize_t plane) noexcept nogil:
    """One task of ``maximum`` on planes of one chunk: plane ``plane``."""
    cdef int64_t index
    chunk_max(&x[plane, 0], x.shape[1], 0, &out[plane], &index)
    if record:
        indices[plane] = <recorded_index>index


def maximum(const pooled[:, ::1] x, pooled[::1] out, recorded_index[::1] indices, bint record,
            pooled[::1] partial, int64_t[::1] partial_index, Py_ssize_t chunk, int num_threads):
    """Each plane's maximum into ``out`` and, where ``record``, its flat position into
    ``indices`` (None otherwise); ``partial`` and ``partial_index`` hold each chunk's winner
    where planes span more than one chunk (else they may be empty)."""
    cdef Py_ssize_t size = x.shape[1], chunks = (size + chunk - 1) // chunk
    cdef Py_ssize_t task, plane, start, c
    cdef pooled best
    cdef int64_t best_index
    with nogil:
        if chunks == 1:  # small planes: no partial results
            if num_threads == 1:  # (an OpenMP region costs more than a tiny array's maxima)
                for plane in range(x.shape[0]):
                    max_plane(x, out, indices, record, plane)
            else:
                for plane in prange(x.shape[0], num_threads=num_threads, schedule="static"):
                    max_plane(x, out, indices, record, plane)
        else:
            for task in prange(x.shape[0] * chunks, num_threads=num_threads,
                               schedule="static"):
                plane, start = task // chunks, (task % chunks) * chunk
                chunk_max(&x[plane, start], min(chunk, size - start), start, &partial[task],
                          &partial_index[task])
            for plane in prange(x.shape[0], num_threads=num_threads, schedule="static"):
                best, best_index = x[plane, 0], -1  # (index -1: nothing yet)
                for c in range(chunks):
                    if beats(partial[plane * chunks + c], partial_index[plane * chunks + c],
                             best, best_index):
                        best = partial[plane * chunks + c]
                        best_index = partial_index[plane * chunks + c]
                out[plane] = best
                if record:
                    indices[plane] = <recorded_index>best_index


cdef inline void channel_sums(const real* rows, Py_ssize_t count, Py_ssize_t channels,
                              real* lanes, real* sums) noexcept nogil:
    """``chunk_sum`` of each of ``channels`` channels side by side: channel c's values are
    rows[i * channels + c], i < count, and its lanes lanes[j * channels + c], j < LANES. Each
    lane sums the same values in the same order as chunk_sum's lane, and the lanes combine in
    chunk_sum's order: the same bits (chunk_sum's -0.0 tail adds change no lane)."""
    cdef Py_ssize_t width = LANES * channels, whole = count - count % LANES, block, first
    cdef Py_ssize_t j, c
    if width <= LANE_ROW_LIMIT or whole == 0:
        # LANES rows in a row are one row of all the lanes (row i in lane i % LANES): the
        # lanes are the running sums of those long rows, folded eight at a time in vectorised
        # passes.
        fold_window(lanes, rows, SUM, 0, width, 1, 1, 1, whole // LANES, 0, 0, width, True, 0)
    else:
        # Lanes too wide for those passes to keep them in L1 (measured, one thread, (32, 2048,
        # 7, 7): ~2x slower): lane by lane, its next LANES rows a pass, LANES * LANES rows at a
        # time.
        for block in range((whole + LANES * LANES - 1) // (LANES * LANES)):
            first = block * LANES * LANES
            for j in range(LANES):
                fold_window(lanes + j * channels, rows + (first + j) * channels, SUM, 0,
                            channels, 1, 1, 1, min(LANES, (whole - first) // LANES), 0, 0,
                            width, first == 0, 0)
    if count < LANES:  # (chunk_sum's first lanes)
        fold_window(lanes, rows, SUM, 0, count * channels, 1, 1, 1, 1, 0, 0, 0, False, 0)
    elif whole < count:  # (the tail fills the last lanes, as chunk_sum's last LANES values)
        fold_window(lanes + width - (count - whole) * channels, rows + whole * channels, SUM,
                    0, (count - whole) * channels, 1, 1, 1, 1, 0, 0, 0, False, 0)
    for c in range(channels):
        sums[c] = (((lanes[c] + lanes[channels + c])
                    + (lanes[2 * channels + c] + lanes[3 * channels + c]))
                   + ((lanes[4 * channels + c] + lanes[5 * channels + c])
                      + (lanes[6 * channels + c] + lanes[7 * channels + c])))


cdef inline void mean_sample(const real[:, :, ::1] x, real[:, ::1] out, real* lanes,
                             Py_ssize_t divisor, Py_ssize_t n) noexcept nogil:
    """One task of ``mean_channels_last`` on planes of one chunk: sample ``n``."""
    cdef Py_ssize_t c
    channel_sums(&x[n, 0, 0], x.shape[1], x.shape[2], lanes, &out[n, 0])
    for c in range(x.shape[2]):
        out[n, c] = out[n, c] / <real>divisor


def mean_channels_last(const real[:, :, ::1] x, real[:, ::1] out, real[:, ::1] lanes,
                       real[::1] partial, Py_ssize_t chunk, Py_ssize_t divisor,
                       int num_threads):
    """out[n, c] = the mean of x[n, :, c], reduced as ``mean`` reduces a C-order plane (the
    same chunks, lanes and order: the same bits). ``lanes[t]``: thread t's LANES * C lanes;
    ``partial``: each chunk's C sums, where planes span more than one chunk."""
    cdef Py_ssize_t size = x.shape[1], channels = x.shape[2]
    cdef Py_ssize_t chunks = (size + chunk - 1) // chunk, task, n, start, c, k
    cdef real total
    with nogil:
        if chunks == 1:  # a task per sample, no partial sums
            if num_threads == 1:  # (an OpenMP region costs more than a tiny array's means)
                for n in range(x.shape[0]):
                    mean_sample(x, out, &lanes[0, 0], divisor, n)
            else:
                for n in prange(x.shape[0], num_threads=num_threads, schedule="static"):
                    mean_sample(x, out, &lanes[threadid(), 0], divisor, n)
        else:
            for task in prange(x.shape[0] * chunks, num_threads=num_threads,
                               schedule="static"):
                n, start = task // chunks, (task % chunks) * chunk
                channel_sums(&x[n, start, 0], min(chunk, size - start), channels,
                             &lanes[threadid(), 0], &partial[task * channels])
            for n in prange(x.shape[0], num_threads=num_threads, schedule="static"):
                for c in range(channels):
                    total = 0
                    for k in range(chunks):
                        total = total + partial[(n * chunks + k) * channels + c]
                    out[n, c] = total / <real>divisor


cdef inline void share_range(const real* grad_output, real* grad_input, Py_ssize_t size,
                             Py_ssize_t divisor, Py_ssize_t begin,
                             Py_ssize_t end) noexcept nogil:
    """One task of ``mean_backward``: the flat elements [begin, end) of all planes (of
    ``size`` elements each), plane by plane."""
    cdef Py_ssize_t plane = begin // size, first = begin, stop, i
    cdef real share
    while first < end:
        share = grad_output[plane] / <real>divisor
        stop = min((plane + 1) * size, end)
        for i in range(first, stop):
            grad_input[i] = share
        first, plane = stop, plane + 1


def mean_backward(const real[::1] grad_output, real[:, ::1] grad_input, Py_ssize_t chunk,
                  Py_ssize_t divisor, int num_threads):
    """Every element of plane p gets grad_output[p] / divisor (one window holds them all). The
    planes' elements are cut, as one flat run, into tasks of ``chunk`` elements (measured on
    (32, 2048, 7, 7), two threads: 0.357 -> 0.341 ms, medians of 30 rounds interleaved with
    a task per plane)."""
    cdef Py_ssize_t total = grad_input.shape[0] * grad_input.shape[1]
    cdef Py_ssize_t tasks = (total + chunk - 1) // chunk, task
    with nogil:
        if num_threads == 1:  # (an OpenMP region costs more than a tiny array's gradient)
            for task in range(tasks):
                share_range(&grad_output[0], &grad_input[0, 0], grad_input.shape[1], divisor,
                            task * chunk, min((task + 1) * chunk, total))
        else:
            for task in prange(tasks, num_threads=num_threads, schedule="static"):
                share_range(&grad_output[0], &grad_input[0, 0], grad_input.shape[1], divisor,
                            task * chunk, min((task + 1) * chunk, total))
