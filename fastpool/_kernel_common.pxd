# Shared by the kernel modules: the element types they are compiled for. Every kernel sees its
# arrays as (planes, D, H, W), C-contiguous; 2-D pooling has D = 1 and 1-D pooling D = H = 1.
# (float16 arrays are computed in float32 by the Python layer.)

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t

# What averages and gradients are computed in.
ctypedef fused real:
    float
    double

# What max pooling and unpooling take: exact for integers too. The identity of max (-inf, or
# the type's least value) comes from the caller.
ctypedef fused pooled:
    float
    double
    int8_t
    uint8_t
    int16_t
    uint16_t
    int32_t
    int64_t


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define fastpool_prefetch(address) __builtin_prefetch((const void *)(address))
    #elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    #include <xmmintrin.h>
    #define fastpool_prefetch(address) _mm_prefetch((const char *)(address), _MM_HINT_T0)
    #else
    #define fastpool_prefetch(address) ((void)(address))
    #endif
    """
    void fastpool_prefetch(const void* address) noexcept nogil


cdef inline void prefetch(const void* start, Py_ssize_t size) noexcept nogil:
    """Ask for the ``size`` bytes from ``start`` in the cache, a 64-byte line at a time,
    before they are read: a task that reads its next plane only after a long computation on
    this one meets each of that plane's lines in memory otherwise."""
    cdef const char* line = <const char*>start
    cdef Py_ssize_t offset
    for offset in range(0, size, 64):
        fastpool_prefetch(line + offset)


cdef inline const pooled* plane_after(const pooled[:, :, :, ::1] a,
                                      Py_ssize_t plane) noexcept nogil:
    """The plane after ``plane`` of ``a``, or NULL after the last: what a task working a plane
    at a time asks for in the cache while it works (``prefetch``)."""
    return &a[plane + 1, 0, 0, 0] if plane + 1 < a.shape[0] else NULL


# Forward kernels split each plane's output rows into bands, a task each (the caller picks
# the band size): task t holds plane t // bands, rows [first, end) of its depth * height rows,
# met in order, (d, h) counted up by next_row from one row before the first.
cdef struct Band:
    Py_ssize_t plane, first, end, d, h


cdef inline Band band_of(Py_ssize_t task, Py_ssize_t bands, Py_ssize_t band_rows,
                         Py_ssize_t rows, Py_ssize_t height) noexcept nogil:
    cdef Band band
    band.plane, band.first = task // bands, (task % bands) * band_rows
    band.end = min(band.first + band_rows, rows)
    band.d, band.h = band.first // height, band.first % height - 1
    return band


cdef inline void next_row(Py_ssize_t* d, Py_ssize_t* h, Py_ssize_t height) noexcept nogil:
    """(d, h) of the next row: counting, not dividing."""
    h[0] = h[0] + 1
    if h[0] == height:
        d[0], h[0] = d[0] + 1, 0


cdef inline Py_ssize_t alike_rows(const Py_ssize_t[:, ::1] wh, Py_ssize_t oh,
                                  Py_ssize_t count, Py_ssize_t* step) noexcept nogil:
    """How many output rows from ``oh`` on (at most ``count``) have windows alike along H:
    as many taps, starting ``step`` input rows apart, so that one fold serves them all (a run
    of interior rows)."""
    cdef Py_ssize_t n = 1
    step[0] = wh[0, oh + 1] - wh[0, oh] if count > 1 else 0
    while (n < count and wh[1, oh + n] == wh[1, oh]
           and wh[0, oh + n] - wh[0, oh + n - 1] == step[0]):
        n = n + 1
    return n


# Backward where windows do not overlap (each input index lies in at most one window's span
# along every dimension, and no window is empty): input row (d, h) is tap row (jd, jh) of the
# windows of at most one output row (od, oh); od = -1 when it is a tap row of none (outside
# every window, or between dilated taps), and its gradient is 0.
cdef struct WindowRow:
    Py_ssize_t od, oh, jd, jh


cdef inline WindowRow window_row(Py_ssize_t d, Py_ssize_t h, const Py_ssize_t[:, ::1] wd,
                                 const Py_ssize_t[:, ::1] wh, const Py_ssize_t[:, ::1] cd,
                                 const Py_ssize_t[:, ::1] ch, Py_ssize_t dd,
                                 Py_ssize_t dh) noexcept nogil:
    cdef WindowRow place
    place.od = -1
    if cd[1, d] > cd[0, d] and ch[1, h] > ch[0, h]:
        place.oh, place.jd, place.jh = ch[0, h], d - wd[0, cd[0, d]], h - wh[0, ch[0, h]]
        if (place.jd >= 0 and place.jh >= 0 and place.jd % dd == 0 and place.jh % dh == 0
                and place.jd < wd[1, cd[0, d]] * dd and place.jh < wh[1, place.oh] * dh):
            place.od, place.jd, place.jh = cd[0, d], place.jd // dd, place.jh // dh
    return place


cdef inline void zero_around(real* row, Py_ssize_t width, Py_ssize_t begin,
                             Py_ssize_t end) noexcept nogil:
    """row[j] = 0 for j in [0, width) outside [begin, end): in a write-once backward, what
    the windows written next do not cover (begin = end = 0: the whole row)."""
    cdef Py_ssize_t j
    for j in range(begin):
        row[j] = 0
    for j in range(max(end, begin), width):
        row[j] = 0
