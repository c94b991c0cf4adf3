# The maxima of 2x2 windows at stride 2 (VGG's and most networks' max pool), float32 and
# float64, in explicit SSE2 / AVX2 vector instructions: a small C helper, as GCC's own
# vectorisation of that loop (``fold_pairs``) splits the taps' even and odd lanes with twice
# the shuffles and notes NaN taps lane by lane. Measured on (8, 16, 32, 32), one thread, 128
# planes: 270 -> 50 ns a plane (a C loop on its own), see README, Speed, for the whole call.
#
# Order: each window's taps a[2o], a[2o + 1], b[2o], b[2o + 1] (b, the second row) meet as a
# row-major scan meets them: (v > m) ? v : m, which is what MAXPS(v, m) computes, so ties
# keep the first maximum, bit for bit (-0.0 and 0.0 too). A NaN tap would win in the scan
# but never in MAXPS: the helper notes whether any tap is NaN and then returns 0, and the
# caller folds those rows tap by tap instead. It returns 0 too where it has no vector
# instructions (not x86-64) or rows shorter than a vector.
#
# Each vector of outputs takes two vectors of taps from each row and splits them into even
# and odd lanes, a shuffle each (AVX2 shuffles within 128-bit halves, so float32 maxima come
# out as the pairs of outputs (0 1) (4 5) (2 3) (6 7): one 64-bit permute puts them back). A
# row's last vector may overlap the one before it: it writes the same values again. The
# function is kept out of line: inlined, it would grow the kernels that call it, which sit at
# GCC's inlining limits (``_tap_loops``).

cdef extern from *:
    """
    #if defined(__AVX2__)
    #include <immintrin.h>
    #define FASTPOOL_PAIR_F32 __m256
    #define FASTPOOL_PAIR_F64 __m256d
    #define FASTPOOL_PAIR_LOAD_F32 _mm256_loadu_ps
    #define FASTPOOL_PAIR_LOAD_F64 _mm256_loadu_pd
    #define FASTPOOL_PAIR_STORE_F32 _mm256_storeu_ps
    #define FASTPOOL_PAIR_STORE_F64 _mm256_storeu_pd
    #define FASTPOOL_PAIR_MAX_F32 _mm256_max_ps
    #define FASTPOOL_PAIR_MAX_F64 _mm256_max_pd
    #define FASTPOOL_PAIR_OR_F32 _mm256_or_ps
    #define FASTPOOL_PAIR_OR_F64 _mm256_or_pd
    #define FASTPOOL_PAIR_ZERO_F32 _mm256_setzero_ps
    #define FASTPOOL_PAIR_ZERO_F64 _mm256_setzero_pd
    #define FASTPOOL_PAIR_UNORD_F32(x, y) _mm256_cmp_ps(x, y, _CMP_UNORD_Q)
    #define FASTPOOL_PAIR_UNORD_F64(x, y) _mm256_cmp_pd(x, y, _CMP_UNORD_Q)
    #define FASTPOOL_PAIR_ANY_F32 _mm256_movemask_ps
    #define FASTPOOL_PAIR_ANY_F64 _mm256_movemask_pd
    #define FASTPOOL_PAIR_EVEN_F32(x, y) _mm256_shuffle_ps(x, y, 0x88)
    #define FASTPOOL_PAIR_ODD_F32(x, y) _mm256_shuffle_ps(x, y, 0xDD)
    #define FASTPOOL_PAIR_EVEN_F64(x, y) _mm256_shuffle_pd(x, y, 0x0)
    #define FASTPOOL_PAIR_ODD_F64(x, y) _mm256_shuffle_pd(x, y, 0xF)
    #define FASTPOOL_PAIR_ORDER_F32(x) \
        _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(x), 0xD8))
    #define FASTPOOL_PAIR_ORDER_F64(x) _mm256_permute4x64_pd(x, 0xD8)
    #define FASTPOOL_PAIR_BYTES 32
    #elif defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define FASTPOOL_PAIR_F32 __m128
    #define FASTPOOL_PAIR_F64 __m128d
    #define FASTPOOL_PAIR_LOAD_F32 _mm_loadu_ps
    #define FASTPOOL_PAIR_LOAD_F64 _mm_loadu_pd
    #define FASTPOOL_PAIR_STORE_F32 _mm_storeu_ps
    #define FASTPOOL_PAIR_STORE_F64 _mm_storeu_pd
    #define FASTPOOL_PAIR_MAX_F32 _mm_max_ps
    #define FASTPOOL_PAIR_MAX_F64 _mm_max_pd
    #define FASTPOOL_PAIR_OR_F32 _mm_or_ps
    #define FASTPOOL_PAIR_OR_F64 _mm_or_pd
    #define FASTPOOL_PAIR_ZERO_F32 _mm_setzero_ps
    #define FASTPOOL_PAIR_ZERO_F64 _mm_setzero_pd
    #define FASTPOOL_PAIR_UNORD_F32 _mm_cmpunord_ps
    #define FASTPOOL_PAIR_UNORD_F64 _mm_cmpunord_pd
    #define FASTPOOL_PAIR_ANY_F32 _mm_movemask_ps
    #define FASTPOOL_PAIR_ANY_F64 _mm_movemask_pd
    #define FASTPOOL_PAIR_EVEN_F32(x, y) _mm_shuffle_ps(x, y, 0x88)
    #define FASTPOOL_PAIR_ODD_F32(x, y) _mm_shuffle_ps(x, y, 0xDD)
    #define FASTPOOL_PAIR_EVEN_F64(x, y) _mm_shuffle_pd(x, y, 0x0)
    #define FASTPOOL_PAIR_ODD_F64(x, y) _mm_shuffle_pd(x, y, 0x3)
    #define FASTPOOL_PAIR_ORDER_F32(x) (x)
    #define FASTPOOL_PAIR_ORDER_F64(x) (x)
    #define FASTPOOL_PAIR_BYTES 16
    #endif

    #ifdef FASTPOOL_PAIR_BYTES
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTPOOL_PAIR_OUT_OF_LINE __attribute__((noinline, unused))
    #elif defined(_MSC_VER)
    #define FASTPOOL_PAIR_OUT_OF_LINE __declspec(noinline)
    #else
    #define FASTPOOL_PAIR_OUT_OF_LINE
    #endif
    #define FASTPOOL_PAIR_MAX_FUNCTION(name, type, T) \
    static FASTPOOL_PAIR_OUT_OF_LINE int name(type* result, const type* origin, Py_ssize_t low, Py_ssize_t high, \
                    Py_ssize_t rows, Py_ssize_t result_pitch, Py_ssize_t origin_pitch, \
                    Py_ssize_t second) \
    { \
        const Py_ssize_t lanes = FASTPOOL_PAIR_BYTES / sizeof(type), last = high - lanes; \
        FASTPOOL_PAIR_##T unordered = FASTPOOL_PAIR_ZERO_##T(); \
        Py_ssize_t r, o; \
        if (high - low < lanes) \
            return 0; \
        for (r = 0; r < rows; r++) { \
            const type* a = origin + r * origin_pitch; \
            const type* b = a + second; \
            type* m = result + r * result_pitch; \
            for (o = low;; o += lanes) { \
                o = o < last ? o : last; \
                FASTPOOL_PAIR_##T a0 = FASTPOOL_PAIR_LOAD_##T(a + 2 * o); \
                FASTPOOL_PAIR_##T a1 = FASTPOOL_PAIR_LOAD_##T(a + 2 * o + lanes); \
                FASTPOOL_PAIR_##T b0 = FASTPOOL_PAIR_LOAD_##T(b + 2 * o); \
                FASTPOOL_PAIR_##T b1 = FASTPOOL_PAIR_LOAD_##T(b + 2 * o + lanes); \
                FASTPOOL_PAIR_##T top = FASTPOOL_PAIR_MAX_##T( \
                    FASTPOOL_PAIR_ODD_##T(a0, a1), FASTPOOL_PAIR_EVEN_##T(a0, a1)); \
                FASTPOOL_PAIR_##T bottom = FASTPOOL_PAIR_MAX_##T( \
                    FASTPOOL_PAIR_ODD_##T(b0, b1), FASTPOOL_PAIR_EVEN_##T(b0, b1)); \
                unordered = FASTPOOL_PAIR_OR_##T(unordered, FASTPOOL_PAIR_OR_##T( \
                    FASTPOOL_PAIR_UNORD_##T(a0, a1), FASTPOOL_PAIR_UNORD_##T(b0, b1))); \
                FASTPOOL_PAIR_STORE_##T(m + o, FASTPOOL_PAIR_ORDER_##T( \
                    FASTPOOL_PAIR_MAX_##T(bottom, top))); \
                if (o == last) \
                    break; \
            } \
        } \
        return FASTPOOL_PAIR_ANY_##T(unordered) == 0; \
    }
    FASTPOOL_PAIR_MAX_FUNCTION(fastpool_pair_max_float, float, F32)
    FASTPOOL_PAIR_MAX_FUNCTION(fastpool_pair_max_double, double, F64)
    #else
    #define fastpool_pair_max_float(result, origin, low, high, rows, rp, op, second) 0
    #define fastpool_pair_max_double(result, origin, low, high, rows, rp, op, second) 0
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
