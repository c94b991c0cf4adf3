# Pooling passes in explicit SSE2 / AVX2 vector instructions (float32 and float64): a small C
# helper for the window shapes where GCC's own vectorisation of the folds (``_tap_loops``)
# leaves most of the time on the table.
# - ``fastpool_pair_max_*``: 2x2 max windows at stride 2 (VGG's, and most networks' max
#   pool). GCC splits the taps' even and odd lanes with twice the shuffles and notes NaN taps
#   lane by lane. Measured on (8, 16, 32, 32), one thread: 270 -> 50 ns a plane (a C loop on
#   its own). Each vector of outputs takes two vectors of taps from each row and splits them
#   into even and odd lanes, a shuffle each (AVX2 shuffles within 128-bit halves, so float32
#   maxima come out as the pairs of outputs (0 1) (4 5) (2 3) (6 7): one 64-bit permute puts
#   them back).
# - ``fastpool_plane_max_*`` and ``fastpool_plane_average_*`` (and ``_backward_*``): stride-1
#   windows on small planes (SPPF's 5x5/1 max, Inception's 3x3/1 average and its gradient),
#   which ``forward_plane`` and ``backward_plane`` otherwise fold over a padded copy of the
#   whole plane in loops whose short rows end in scalar tails, then copy out or divide row
#   by row. Here every pass runs in whole vectors, four chains side by side (each max or sum
#   waits on the one before it), a group of four column vectors down all the rows before the
#   next, and the last pass writes the output rows directly; a max's pass down the window
#   rows serves 4 output rows at once (FASTPOOL_SIMD_DOWN_4).
#
# Order: a max's taps meet as a row-major scan meets them, (v > m) ? v : m, which is what
# MAXPS(v, m) computes (the plane's rows' maxima meet in row order the same way): so ties
# keep the first maximum, bit for bit (-0.0 and 0.0 too). A NaN tap would win in the scan but
# never in MAXPS: the max helpers note whether any tap is NaN and then return 0 (the plane
# helper before it writes any output), and the caller folds those rows or that plane tap by
# tap instead. A sum adds its taps from 0 in row-major order, as every average kernel does,
# and divides by the window's divisor (a power of two's division has the bits of the product
# with its inverse, which the other kernels use). The helpers return 0 too where they have no
# vector instructions (not x86-64) or rows shorter than a vector.
#
# A row's last vector may overlap the one before it: it writes the same values again (no
# output is read back). The functions are kept out of line: inlined, they would grow the
# kernels that call them, which sit at GCC's inlining limits (``_tap_loops``).

cdef extern from *:
    """
    #if defined(__AVX2__)
    #include <immintrin.h>
    #define FASTPOOL_SIMD_F32 __m256
    #define FASTPOOL_SIMD_F64 __m256d
    #define FASTPOOL_SIMD_LOAD_F32 _mm256_loadu_ps
    #define FASTPOOL_SIMD_LOAD_F64 _mm256_loadu_pd
    #define FASTPOOL_SIMD_STORE_F32 _mm256_storeu_ps
    #define FASTPOOL_SIMD_STORE_F64 _mm256_storeu_pd
    #define FASTPOOL_SIMD_MAX_F32 _mm256_max_ps
    #define FASTPOOL_SIMD_MAX_F64 _mm256_max_pd
    #define FASTPOOL_SIMD_OR_F32 _mm256_or_ps
    #define FASTPOOL_SIMD_OR_F64 _mm256_or_pd
    #define FASTPOOL_SIMD_ZERO_F32 _mm256_setzero_ps
    #define FASTPOOL_SIMD_ZERO_F64 _mm256_setzero_pd
    #define FASTPOOL_SIMD_UNORD_F32(x, y) _mm256_cmp_ps(x, y, _CMP_UNORD_Q)
    #define FASTPOOL_SIMD_UNORD_F64(x, y) _mm256_cmp_pd(x, y, _CMP_UNORD_Q)
    #define FASTPOOL_SIMD_ANY_F32 _mm256_movemask_ps
    #define FASTPOOL_SIMD_ANY_F64 _mm256_movemask_pd
    #define FASTPOOL_SIMD_EVEN_F32(x, y) _mm256_shuffle_ps(x, y, 0x88)
    #define FASTPOOL_SIMD_ODD_F32(x, y) _mm256_shuffle_ps(x, y, 0xDD)
    #define FASTPOOL_SIMD_EVEN_F64(x, y) _mm256_shuffle_pd(x, y, 0x0)
    #define FASTPOOL_SIMD_ODD_F64(x, y) _mm256_shuffle_pd(x, y, 0xF)
    #define FASTPOOL_SIMD_ORDER_F32(x) \
        _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(x), 0xD8))
    #define FASTPOOL_SIMD_ORDER_F64(x) _mm256_permute4x64_pd(x, 0xD8)
    #define FASTPOOL_SIMD_ADD_F32 _mm256_add_ps
    #define FASTPOOL_SIMD_ADD_F64 _mm256_add_pd
    #define FASTPOOL_SIMD_DIV_F32 _mm256_div_ps
    #define FASTPOOL_SIMD_DIV_F64 _mm256_div_pd
    #define FASTPOOL_SIMD_SET_F32 _mm256_set1_ps
    #define FASTPOOL_SIMD_SET_F64 _mm256_set1_pd
    #define FASTPOOL_SIMD_BYTES 32
    #elif defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define FASTPOOL_SIMD_F32 __m128
    #define FASTPOOL_SIMD_F64 __m128d
    #define FASTPOOL_SIMD_LOAD_F32 _mm_loadu_ps
    #define FASTPOOL_SIMD_LOAD_F64 _mm_loadu_pd
    #define FASTPOOL_SIMD_STORE_F32 _mm_storeu_ps
    #define FASTPOOL_SIMD_STORE_F64 _mm_storeu_pd
    #define FASTPOOL_SIMD_MAX_F32 _mm_max_ps
    #define FASTPOOL_SIMD_MAX_F64 _mm_max_pd
    #define FASTPOOL_SIMD_OR_F32 _mm_or_ps
    #define FASTPOOL_SIMD_OR_F64 _mm_or_pd
    #define FASTPOOL_SIMD_ZERO_F32 _mm_setzero_ps
    #define FASTPOOL_SIMD_ZERO_F64 _mm_setzero_pd
    #define FASTPOOL_SIMD_UNORD_F32 _mm_cmpunord_ps
    #define FASTPOOL_SIMD_UNORD_F64 _mm_cmpunord_pd
    #define FASTPOOL_SIMD_ANY_F32 _mm_movemask_ps
    #define FASTPOOL_SIMD_ANY_F64 _mm_movemask_pd
    #define FASTPOOL_SIMD_EVEN_F32(x, y) _mm_shuffle_ps(x, y, 0x88)
    #define FASTPOOL_SIMD_ODD_F32(x, y) _mm_shuffle_ps(x, y, 0xDD)
    #define FASTPOOL_SIMD_EVEN_F64(x, y) _mm_shuffle_pd(x, y, 0x0)
    #define FASTPOOL_SIMD_ODD_F64(x, y) _mm_shuffle_pd(x, y, 0x3)
    #define FASTPOOL_SIMD_ORDER_F32(x) (x)
    #define FASTPOOL_SIMD_ORDER_F64(x) (x)
    #define FASTPOOL_SIMD_ADD_F32 _mm_add_ps
    #define FASTPOOL_SIMD_ADD_F64 _mm_add_pd
    #define FASTPOOL_SIMD_DIV_F32 _mm_div_ps
    #define FASTPOOL_SIMD_DIV_F64 _mm_div_pd
    #define FASTPOOL_SIMD_SET_F32 _mm_set1_ps
    #define FASTPOOL_SIMD_SET_F64 _mm_set1_pd
    #define FASTPOOL_SIMD_BYTES 16
    #endif

    #ifdef FASTPOOL_SIMD_BYTES
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTPOOL_SIMD_OUT_OF_LINE __attribute__((noinline, unused))
    #elif defined(_MSC_VER)
    #define FASTPOOL_SIMD_OUT_OF_LINE __declspec(noinline)
    #else
    #define FASTPOOL_SIMD_OUT_OF_LINE
    #endif
    /* a loop over the vectors [o, o + lanes) that cover [low, high) (high - low >= lanes):
       the last one may overlap the one before it */
    #define FASTPOOL_SIMD_EACH_VECTOR(o, low, high, lanes) \
        for (o = low;; o += lanes) { \
            o = o < high - lanes ? o : high - lanes;
    #define FASTPOOL_SIMD_END_EACH(o, high, lanes) \
            if (o == high - lanes) \
                break; \
        }
    #define FASTPOOL_SIMD_PAIR_MAX(name, type, T) \
    static FASTPOOL_SIMD_OUT_OF_LINE int name( \
        type* result, const type* origin, Py_ssize_t low, Py_ssize_t high, Py_ssize_t rows, \
        Py_ssize_t result_pitch, Py_ssize_t origin_pitch, Py_ssize_t second) \
    { \
        const Py_ssize_t lanes = FASTPOOL_SIMD_BYTES / sizeof(type); \
        FASTPOOL_SIMD_##T unordered = FASTPOOL_SIMD_ZERO_##T(); \
        Py_ssize_t r, o; \
        if (high - low < lanes) \
            return 0; \
        for (r = 0; r < rows; r++) { \
            const type* a = origin + r * origin_pitch; \
            const type* b = a + second; \
            type* m = result + r * result_pitch; \
            FASTPOOL_SIMD_EACH_VECTOR(o, low, high, lanes) \
                FASTPOOL_SIMD_##T a0 = FASTPOOL_SIMD_LOAD_##T(a + 2 * o); \
                FASTPOOL_SIMD_##T a1 = FASTPOOL_SIMD_LOAD_##T(a + 2 * o + lanes); \
                FASTPOOL_SIMD_##T b0 = FASTPOOL_SIMD_LOAD_##T(b + 2 * o); \
                FASTPOOL_SIMD_##T b1 = FASTPOOL_SIMD_LOAD_##T(b + 2 * o + lanes); \
                FASTPOOL_SIMD_##T top = FASTPOOL_SIMD_MAX_##T( \
                    FASTPOOL_SIMD_ODD_##T(a0, a1), FASTPOOL_SIMD_EVEN_##T(a0, a1)); \
                FASTPOOL_SIMD_##T bottom = FASTPOOL_SIMD_MAX_##T( \
                    FASTPOOL_SIMD_ODD_##T(b0, b1), FASTPOOL_SIMD_EVEN_##T(b0, b1)); \
                unordered = FASTPOOL_SIMD_OR_##T(unordered, FASTPOOL_SIMD_OR_##T( \
                    FASTPOOL_SIMD_UNORD_##T(a0, a1), FASTPOOL_SIMD_UNORD_##T(b0, b1))); \
                FASTPOOL_SIMD_STORE_##T(m + o, FASTPOOL_SIMD_ORDER_##T( \
                    FASTPOOL_SIMD_MAX_##T(bottom, top))); \
            FASTPOOL_SIMD_END_EACH(o, high, lanes) \
        } \
        return FASTPOOL_SIMD_ANY_##T(unordered) == 0; \
    }
    /* a running max takes a tap where it is greater; a sum adds it; a max is kept as it is,
       a sum divided by its window's divisor (those of outputs o.., FASTPOOL_SIMD_DIVISORS) */
    #define FASTPOOL_SIMD_TAKE_MAX(T, m, v) FASTPOOL_SIMD_MAX_##T(v, m)
    #define FASTPOOL_SIMD_TAKE_SUM(T, m, v) FASTPOOL_SIMD_ADD_##T(m, v)
    #define FASTPOOL_SIMD_KEEP(T, m, o) (m)
    #define FASTPOOL_SIMD_DIVIDE(T, m, o) FASTPOOL_SIMD_DIV_##T(m, FASTPOOL_SIMD_DIVISORS(T, o))
    /* the divisors of outputs o.. of row h of an average: the row's ``whole`` where its
       windows share one (``shared`` not 0: shared * row_factors[h]), else its row of the
       table ``divisors`` (made by FASTPOOL_SIMD_ROW_DIVISORS for row h) */
    #define FASTPOOL_SIMD_ROW_DIVISORS(type, T, h) \
        row_divisors = divisors + (h) * out_w; \
        whole = FASTPOOL_SIMD_SET_##T((type)(shared * row_factors[h]));
    #define FASTPOOL_SIMD_DIVISORS(T, o) \
        (shared ? whole : FASTPOOL_SIMD_LOAD_##T(row_divisors + (o)))
    #define FASTPOOL_SIMD_LAST(o, n, lanes) ((o) < (n) - (lanes) ? (o) : (n) - (lanes))
    /* target[y * target_pitch + o] = FINISH(the fold, from start, of tap[y * tap_pitch + o +
       r * row_step + j * step] for r < rows, j < count, in that order), for y < height, o <
       n (n >= lanes): four vectors of outputs at a time, four chains of folds side by side,
       those four columns in every row before the next four (ROW(type, T, y) first in row y:
       what FINISH needs of it). (Columns outside, rows inside: on short rows, as a 28-wide
       plane's 4 vectors, the columns' offsets are worked out once for all rows, not once a
       row: Inception's 28x28 average, the C loop alone with the sizes unknown to the
       compiler as in the module, 536 -> 389 ns a plane, with FASTPOOL_SIMD_FOLD_UNROLLED.) */
    #define FASTPOOL_SIMD_NO_ROW(type, T, y)
    #define FASTPOOL_SIMD_FOLD(type, T, TAKE, FINISH, ROW, start, target, target_pitch, tap, \
                               tap_pitch, height, rows, row_step, count, step, n, lanes) \
        for (o = 0; o < (n); o += 4 * (lanes)) { \
            const Py_ssize_t o0 = FASTPOOL_SIMD_LAST(o, n, lanes); \
            const Py_ssize_t o1 = FASTPOOL_SIMD_LAST(o + (lanes), n, lanes); \
            const Py_ssize_t o2 = FASTPOOL_SIMD_LAST(o + 2 * (lanes), n, lanes); \
            const Py_ssize_t o3 = FASTPOOL_SIMD_LAST(o + 3 * (lanes), n, lanes); \
            Py_ssize_t y; \
            for (y = 0; y < (height); y++) { \
                const type* t = (tap) + y * (tap_pitch); \
                type* u = (target) + y * (target_pitch); \
                FASTPOOL_SIMD_##T m0 = start, m1 = start, m2 = start, m3 = start; \
                ROW(type, T, y) \
                for (r = 0; r < (rows); r++) \
                    for (j = 0; j < (count); j++) { \
                        const type* v = t + r * (row_step) + j * (step); \
                        m0 = TAKE(T, m0, FASTPOOL_SIMD_LOAD_##T(v + o0)); \
                        m1 = TAKE(T, m1, FASTPOOL_SIMD_LOAD_##T(v + o1)); \
                        m2 = TAKE(T, m2, FASTPOOL_SIMD_LOAD_##T(v + o2)); \
                        m3 = TAKE(T, m3, FASTPOOL_SIMD_LOAD_##T(v + o3)); \
                    } \
                FASTPOOL_SIMD_STORE_##T(u + o0, FINISH(T, m0, o0)); \
                FASTPOOL_SIMD_STORE_##T(u + o1, FINISH(T, m1, o1)); \
                FASTPOOL_SIMD_STORE_##T(u + o2, FINISH(T, m2, o2)); \
                FASTPOOL_SIMD_STORE_##T(u + o3, FINISH(T, m3, o3)); \
            } \
        }
    /* FASTPOOL_SIMD_FOLD, with the loops' bounds known to the compiler, so that they unroll,
       where the window is rows x count at step 1 (the common window shapes: Inception's 3x3
       sums, of the 536 -> 389 ns above 460 -> 400; SPPF's 5-tap max rows, 239 -> 222 ns a
       20x20 plane, the C loop alone) */
    #define FASTPOOL_SIMD_FOLD_UNROLLED(R, C, type, T, TAKE, FINISH, ROW, start, target, \
                                        target_pitch, tap, tap_pitch, height, rows, row_step, \
                                        count, step, n, lanes) \
        if ((rows) == (R) && (count) == (C) && (step) == 1) \
            FASTPOOL_SIMD_FOLD(type, T, TAKE, FINISH, ROW, start, target, target_pitch, tap, \
                               tap_pitch, height, R, row_step, C, 1, n, lanes) \
        else \
            FASTPOOL_SIMD_FOLD(type, T, TAKE, FINISH, ROW, start, target, target_pitch, tap, \
                               tap_pitch, height, rows, row_step, count, step, n, lanes)
    /* ask for ``bytes`` from plane + offset in the cache (plane NULL: none), a line at a time */
    #define FASTPOOL_SIMD_PREFETCH(plane, offset, bytes, i) \
        if (plane) \
            for (i = 0; i < (bytes); i += 64) \
                _mm_prefetch((const char*)((plane) + (offset)) + i, _MM_HINT_T0);
    /* Copy the plane x (in_h x in_w, in_w >= lanes) into rows of ``pitch``, its (0, 0) at \
       (top, left), asking for the next plane ``ahead`` (or NULL) in the cache row by row, \
       which the work on this plane gives time to come. Returns whether it holds NaN. */
    #define FASTPOOL_SIMD_COPY_PLANE(name, type, T) \
    static FASTPOOL_SIMD_OUT_OF_LINE int name( \
        type* padded, const type* x, const type* ahead, Py_ssize_t in_h, Py_ssize_t in_w, \
        Py_ssize_t top, Py_ssize_t left, Py_ssize_t pitch) \
    { \
        const Py_ssize_t lanes = FASTPOOL_SIMD_BYTES / sizeof(type); \
        FASTPOOL_SIMD_##T unordered = FASTPOOL_SIMD_ZERO_##T(), v; \
        Py_ssize_t h, i; \
        for (h = 0; h < in_h; h++) { \
            FASTPOOL_SIMD_PREFETCH(ahead, h * in_w, in_w * (Py_ssize_t)sizeof(type), i) \
            FASTPOOL_SIMD_EACH_VECTOR(i, 0, in_w, lanes) \
                v = FASTPOOL_SIMD_LOAD_##T(x + h * in_w + i); \
                unordered = FASTPOOL_SIMD_OR_##T(unordered, FASTPOOL_SIMD_UNORD_##T(v, v)); \
                FASTPOOL_SIMD_STORE_##T(padded + (top + h) * pitch + left + i, v); \
            FASTPOOL_SIMD_END_EACH(i, in_w, lanes) \
        } \
        return FASTPOOL_SIMD_ANY_##T(unordered) != 0; \
    }
    /* The fold down a max's kh window rows (dh 1), 4 (or 2) output rows at once (van Herk /
       Gil-Werman): the rows that all their windows share are folded once, the rows before
       them into suffix maxima and those after into prefix maxima, every maximum taken as
       LATER(earlier rows', later rows') = MAX(later, earlier), so that ties keep the
       earliest row's value, as the scan does. For kh 5, 2 loads an output vector, not 5:
       SPPF's 20x20 plane, the C loop alone, 316 -> 238 ns. ``out``: the first output row
       (rows of n), ``row``: its first window row (rows of pitch). */
    #define FASTPOOL_SIMD_LATER(T, earlier, later) FASTPOOL_SIMD_MAX_##T(later, earlier)
    /* window row i of the column from a, rows p apart; c = rows [first, end) of it, folded */
    #define FASTPOOL_SIMD_ROW(T, i) FASTPOOL_SIMD_LOAD_##T(a + (i) * p)
    #define FASTPOOL_SIMD_ROWS(T, c, first, end) \
        c = FASTPOOL_SIMD_ROW(T, first); \
        for (r = (first) + 1; r < (end); r++) \
            c = FASTPOOL_SIMD_LATER(T, c, FASTPOOL_SIMD_ROW(T, r));
    #define FASTPOOL_SIMD_DOWN_4(type, T, out, row, pitch, kh, n, lanes) \
        FASTPOOL_SIMD_EACH_VECTOR(o, 0, n, lanes) { \
            const type* a = (row) + o; \
            const Py_ssize_t p = (pitch); \
            FASTPOOL_SIMD_##T s2 = FASTPOOL_SIMD_ROW(T, 2), s1, s0, c, p0, p1, p2; \
            s1 = FASTPOOL_SIMD_LATER(T, FASTPOOL_SIMD_ROW(T, 1), s2); \
            s0 = FASTPOOL_SIMD_LATER(T, FASTPOOL_SIMD_ROW(T, 0), s1); \
            FASTPOOL_SIMD_ROWS(T, c, 3, kh) \
            p0 = FASTPOOL_SIMD_ROW(T, kh); \
            p1 = FASTPOOL_SIMD_LATER(T, p0, FASTPOOL_SIMD_ROW(T, (kh) + 1)); \
            p2 = FASTPOOL_SIMD_LATER(T, p1, FASTPOOL_SIMD_ROW(T, (kh) + 2)); \
            s1 = FASTPOOL_SIMD_LATER(T, FASTPOOL_SIMD_LATER(T, s1, c), p0); \
            s2 = FASTPOOL_SIMD_LATER(T, FASTPOOL_SIMD_LATER(T, s2, c), p1); \
            FASTPOOL_SIMD_STORE_##T((out) + o, FASTPOOL_SIMD_LATER(T, s0, c)); \
            FASTPOOL_SIMD_STORE_##T((out) + (n) + o, s1); \
            FASTPOOL_SIMD_STORE_##T((out) + 2 * (n) + o, s2); \
            FASTPOOL_SIMD_STORE_##T((out) + 3 * (n) + o, FASTPOOL_SIMD_LATER(T, c, p2)); \
        } FASTPOOL_SIMD_END_EACH(o, n, lanes)
    #define FASTPOOL_SIMD_DOWN_2(type, T, out, row, pitch, kh, n, lanes) \
        FASTPOOL_SIMD_EACH_VECTOR(o, 0, n, lanes) { \
            const type* a = (row) + o; \
            const Py_ssize_t p = (pitch); \
            FASTPOOL_SIMD_##T c; \
            FASTPOOL_SIMD_ROWS(T, c, 1, kh) \
            FASTPOOL_SIMD_STORE_##T((out) + o, \
                                    FASTPOOL_SIMD_LATER(T, FASTPOOL_SIMD_ROW(T, 0), c)); \
            FASTPOOL_SIMD_STORE_##T((out) + (n) + o, \
                                    FASTPOOL_SIMD_LATER(T, c, FASTPOOL_SIMD_ROW(T, kh))); \
        } FASTPOOL_SIMD_END_EACH(o, n, lanes)
    #define FASTPOOL_SIMD_PLANE_MAX(name, copy, type, T) \
    static FASTPOOL_SIMD_OUT_OF_LINE int name( \
        type* out, const type* x, const type* ahead, Py_ssize_t in_h, Py_ssize_t in_w, \
        Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t dh, \
        Py_ssize_t dw, Py_ssize_t top, Py_ssize_t left, Py_ssize_t pitch, type lowest, \
        type* padded, type* maxima) \
    { \
        const Py_ssize_t lanes = FASTPOOL_SIMD_BYTES / sizeof(type); \
        const Py_ssize_t rows = out_h + (kh - 1) * dh; /* padded rows that windows reach */ \
        const FASTPOOL_SIMD_##T least = FASTPOOL_SIMD_SET_##T(lowest); \
        Py_ssize_t h, o, r, j; \
        /* (the output plane asked for in the cache first, so that its stores find their \
           lines there: SPPF's plane in a 13 MB array, the C loop on one thread, 314 -> 276 \
           ns; every row copied then: a load from a row that vector stores have just \
           written, across two of them, would wait for them to reach the cache) */ \
        FASTPOOL_SIMD_PREFETCH(out, 0, out_h * out_w * (Py_ssize_t)sizeof(type), h) \
        if (in_w < lanes || out_w < lanes || copy(padded, x, ahead, in_h, in_w, top, left, pitch)) \
            return 0; \
        /* every padded row's windows' maxima in one fold, as if one row (the outputs past \
           out_w in each row mix two rows, and are never read), then each output row's \
           window rows' maxima, padding rows too: padding (lowest) never changes a maximum */ \
        FASTPOOL_SIMD_FOLD_UNROLLED(1, 5, type, T, FASTPOOL_SIMD_TAKE_MAX, FASTPOOL_SIMD_KEEP, \
                                    FASTPOOL_SIMD_NO_ROW, least, maxima, 0, padded, 0, 1, 1, 0, \
                                    kw, dw, (rows - 1) * pitch + out_w, lanes) \
        h = 0; \
        if (dh == 1 && kh >= 4) \
            for (; h + 4 <= out_h; h += 4) \
                FASTPOOL_SIMD_DOWN_4(type, T, out + h * out_w, maxima + h * pitch, pitch, kh, \
                                     out_w, lanes) \
        if (dh == 1 && kh >= 2) \
            for (; h + 2 <= out_h; h += 2) \
                FASTPOOL_SIMD_DOWN_2(type, T, out + h * out_w, maxima + h * pitch, pitch, kh, \
                                     out_w, lanes) \
        FASTPOOL_SIMD_FOLD(type, T, FASTPOOL_SIMD_TAKE_MAX, FASTPOOL_SIMD_KEEP, \
                           FASTPOOL_SIMD_NO_ROW, least, out + h * out_w, out_w, \
                           maxima + h * pitch, pitch, out_h - h, 1, 0, kh, dh * pitch, out_w, \
                           lanes) \
        return 1; \
    }
    #define FASTPOOL_SIMD_PLANE_AVERAGE(name, copy, type, T) \
    static FASTPOOL_SIMD_OUT_OF_LINE int name( \
        type* out, const type* x, const type* ahead, Py_ssize_t in_h, Py_ssize_t in_w, \
        Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t top, \
        Py_ssize_t left, Py_ssize_t pitch, type* padded, const type* divisors, \
        Py_ssize_t shared, const Py_ssize_t* row_factors) \
    { \
        const Py_ssize_t lanes = FASTPOOL_SIMD_BYTES / sizeof(type); \
        const type* source = x; \
        const type* row_divisors; \
        FASTPOOL_SIMD_##T whole; \
        Py_ssize_t o, r, j; \
        if (in_w < lanes || out_w < lanes) \
            return 0; \
        if (top || left) { \
            copy(padded, x, ahead, in_h, in_w, top, left, pitch); \
            source = padded; \
        } \
        FASTPOOL_SIMD_FOLD_UNROLLED(3, 3, type, T, FASTPOOL_SIMD_TAKE_SUM, FASTPOOL_SIMD_DIVIDE, \
                                    FASTPOOL_SIMD_ROW_DIVISORS, FASTPOOL_SIMD_ZERO_##T(), out, \
                                    out_w, source, pitch, out_h, kh, pitch, kw, 1, out_w, lanes) \
        return 1; \
    }
    /* The gradient of the stride-1 average (its backward_plane): every output's gradient
       divided by its window's divisor, into the zero-bordered plane ``share`` (rows of pitch
       in_w + kw - 1), where input (h, w) finds its windows' shares at rows h + jh, columns
       w + jw, in output order; so each input row's gradients are the sums of those taps. */
    #define FASTPOOL_SIMD_PLANE_AVERAGE_BACKWARD(name, type, T) \
    static FASTPOOL_SIMD_OUT_OF_LINE int name( \
        type* grad_input, const type* grad_output, const type* ahead, Py_ssize_t out_h, \
        Py_ssize_t out_w, Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t kh, Py_ssize_t kw, \
        Py_ssize_t top, Py_ssize_t left, type* share, const type* divisors, \
        Py_ssize_t shared, const Py_ssize_t* row_factors) \
    { \
        const Py_ssize_t lanes = FASTPOOL_SIMD_BYTES / sizeof(type), pitch = in_w + kw - 1; \
        const type* row_divisors; \
        FASTPOOL_SIMD_##T whole; \
        Py_ssize_t h, o, r, j; \
        if (in_w < lanes || out_w < lanes) \
            return 0; \
        for (h = 0; h < out_h; h++) { \
            FASTPOOL_SIMD_PREFETCH(ahead, h * out_w, out_w * (Py_ssize_t)sizeof(type), o) \
            FASTPOOL_SIMD_ROW_DIVISORS(type, T, h) \
            FASTPOOL_SIMD_EACH_VECTOR(o, 0, out_w, lanes) \
                FASTPOOL_SIMD_STORE_##T( \
                    share + (h + kh - 1 - top) * pitch + kw - 1 - left + o, \
                    FASTPOOL_SIMD_DIVIDE(T, FASTPOOL_SIMD_LOAD_##T(grad_output + h * out_w + o), \
                                         o)); \
            FASTPOOL_SIMD_END_EACH(o, out_w, lanes) \
        } \
        FASTPOOL_SIMD_FOLD_UNROLLED(3, 3, type, T, FASTPOOL_SIMD_TAKE_SUM, FASTPOOL_SIMD_KEEP, \
                                    FASTPOOL_SIMD_NO_ROW, FASTPOOL_SIMD_ZERO_##T(), grad_input, \
                                    in_w, share, pitch, in_h, kh, pitch, kw, 1, in_w, lanes) \
        return 1; \
    }
    FASTPOOL_SIMD_PAIR_MAX(fastpool_pair_max_float, float, F32)
    FASTPOOL_SIMD_PAIR_MAX(fastpool_pair_max_double, double, F64)
    FASTPOOL_SIMD_COPY_PLANE(fastpool_copy_plane_float, float, F32)
    FASTPOOL_SIMD_COPY_PLANE(fastpool_copy_plane_double, double, F64)
    FASTPOOL_SIMD_PLANE_MAX(fastpool_plane_max_float, fastpool_copy_plane_float, float, F32)
    FASTPOOL_SIMD_PLANE_MAX(fastpool_plane_max_double, fastpool_copy_plane_double, double, F64)
    FASTPOOL_SIMD_PLANE_AVERAGE(fastpool_plane_average_float, fastpool_copy_plane_float, float,
                                F32)
    FASTPOOL_SIMD_PLANE_AVERAGE(fastpool_plane_average_double, fastpool_copy_plane_double,
                                double, F64)
    FASTPOOL_SIMD_PLANE_AVERAGE_BACKWARD(fastpool_plane_average_backward_float, float, F32)
    FASTPOOL_SIMD_PLANE_AVERAGE_BACKWARD(fastpool_plane_average_backward_double, double, F64)
    #else
    #define fastpool_pair_max_float(result, origin, low, high, rows, rp, op, second) 0
    #define fastpool_pair_max_double(result, origin, low, high, rows, rp, op, second) 0
    #define fastpool_plane_max_float(out, x, ahead, in_h, in_w, out_h, out_w, kh, kw, dh, dw, \
                                     top, left, pitch, lowest, padded, maxima) 0
    #define fastpool_plane_max_double(out, x, ahead, in_h, in_w, out_h, out_w, kh, kw, dh, dw, \
                                      top, left, pitch, lowest, padded, maxima) 0
    #define fastpool_plane_average_float(out, x, ahead, in_h, in_w, out_h, out_w, kh, kw, top, \
                                         left, pitch, padded, divisors, shared, factors) 0
    #define fastpool_plane_average_double(out, x, ahead, in_h, in_w, out_h, out_w, kh, kw, top, \
                                          left, pitch, padded, divisors, shared, factors) 0
    #define fastpool_plane_average_backward_float(grad_input, grad_output, ahead, out_h, out_w, \
                                                  in_h, in_w, kh, kw, top, left, share, \
                                                  divisors, shared, factors) 0
    #define fastpool_plane_average_backward_double(grad_input, grad_output, ahead, out_h, \
                                                   out_w, in_h, in_w, kh, kw, top, left, \
                                                   share, divisors, shared, factors) 0
    #endif
    """
    # result[r * result_pitch + o] = the max of a[2o], a[2o + 1], a[second + 2o],
    # a[second + 2o + 1], a = origin + r * origin_pitch, for r < rows and o in [low, high);
    # 1 where done, 0 where the caller must fold them itself (above)
    bint fastpool_pair_max_float(float* result, const float* origin, Py_ssize_t low,
                                 Py_ssize_t high, Py_ssize_t rows, Py_ssize_t result_pitch,
                                 Py_ssize_t origin_pitch, Py_ssize_t second) noexcept nogil
    bint fastpool_pair_max_double(double* result, const double* origin, Py_ssize_t low,
                                  Py_ssize_t high, Py_ssize_t rows, Py_ssize_t result_pitch,
                                  Py_ssize_t origin_pitch, Py_ssize_t second) noexcept nogil
    # out[h * out_w + o] = the max of the stride-1 window (kh x kw taps, dilation dh, dw)
    # at output (h, o) of the plane x (in_h x in_w), for every output: 1 where done, 0 where
    # the caller must pool the plane itself (above), out untouched. ``padded``: the plane's
    # padded copy, rows of ``pitch`` (>= out_w + (kw - 1) * dw), its padding already
    # ``lowest``: x is copied in at (top, left); ``maxima``: scratch of the same size;
    # ``ahead``: the next plane, asked for in the cache (or NULL)
    bint fastpool_plane_max_float(float* out, const float* x, const float* ahead,
                                  Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t out_h,
                                  Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                                  Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t top,
                                  Py_ssize_t left, Py_ssize_t pitch, float lowest,
                                  float* padded, float* maxima) noexcept nogil
    bint fastpool_plane_max_double(double* out, const double* x, const double* ahead,
                                   Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t out_h,
                                   Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t top,
                                   Py_ssize_t left, Py_ssize_t pitch, double lowest,
                                   double* padded, double* maxima) noexcept nogil
    # out[h * out_w + o] = the stride-1 window's (kh x kw) sum at output (h, o) of the plane
    # x (in_h x in_w) / its divisor: ``divisors[h * out_w + o]``, or where ``shared`` is not
    # 0, shared * row_factors[h] (``_avg_pool.divisor_table``); 1 where done, 0 where the
    # caller must pool the plane itself. With padding (top or left), x is copied into
    # ``padded`` (rows of ``pitch``, out_w + kw - 1; its padding already 0); without, it is
    # folded where it lies (pitch = in_w)
    bint fastpool_plane_average_float(float* out, const float* x, const float* ahead,
                                      Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t out_h,
                                      Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                                      Py_ssize_t top, Py_ssize_t left, Py_ssize_t pitch,
                                      float* padded, const float* divisors, Py_ssize_t shared,
                                      const Py_ssize_t* row_factors) noexcept nogil
    bint fastpool_plane_average_double(double* out, const double* x, const double* ahead,
                                       Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t out_h,
                                       Py_ssize_t out_w, Py_ssize_t kh, Py_ssize_t kw,
                                       Py_ssize_t top, Py_ssize_t left, Py_ssize_t pitch,
                                       double* padded, const double* divisors,
                                       Py_ssize_t shared,
                                       const Py_ssize_t* row_factors) noexcept nogil
    # the gradient of a stride-1 average (``_avg_pool.backward_plane``): grad_input (in_h x
    # in_w) of the plane whose output gradient is grad_output (out_h x out_w), window kh x
    # kw, padding (top, left), divisors as fastpool_plane_average_*'s; ``share``: the
    # zero-bordered scratch plane, rows of in_w + kw - 1; 1 where done, 0 where the caller
    # must take the plane itself
    bint fastpool_plane_average_backward_float(
        float* grad_input, const float* grad_output, const float* ahead, Py_ssize_t out_h,
        Py_ssize_t out_w, Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t kh, Py_ssize_t kw,
        Py_ssize_t top, Py_ssize_t left, float* share, const float* divisors,
        Py_ssize_t shared, const Py_ssize_t* row_factors) noexcept nogil
    bint fastpool_plane_average_backward_double(
        double* grad_input, const double* grad_output, const double* ahead, Py_ssize_t out_h,
        Py_ssize_t out_w, Py_ssize_t in_h, Py_ssize_t in_w, Py_ssize_t kh, Py_ssize_t kw,
        Py_ssize_t top, Py_ssize_t left, double* share, const double* divisors,
        Py_ssize_t shared, const Py_ssize_t* row_factors) noexcept nogil
