"""How this build was made, and the threads it would use now.

``openmp()`` says whether the kernels were compiled with OpenMP; ``debug()`` whether this is
the bounds-checked build (FASTPOOL_CYTHON_DEBUG=1); ``max_threads()`` is the team size a
parallel region would get now (OpenMP's maximum, which honours OMP_NUM_THREADS and
threadpoolctl's limits). A serial build reports False and 1 thread. ``cpu_has_avx2()`` says
whether this CPU, and the operating system, run AVX2 code (always False off x86).
"""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FASTPOOL_HAVE_OPENMP 1
    #else
    #define FASTPOOL_HAVE_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    /* CPUID and XGETBV directly: __builtin_cpu_supports needs a runtime symbol (__cpu_model)
       that Apple's toolchain does not provide, which would fail at import on x86-64 macOS. */
    #include <cpuid.h>
    static int fastpool_cpu_has_avx2(void) {
        unsigned int eax, ebx, ecx, edx, xcr0, xcr0_high;
        if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE) || !(ecx & bit_AVX))
            return 0;
        __asm__ volatile ("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
        if ((xcr0 & 6) != 6)  /* the operating system saves the XMM and YMM registers */
            return 0;
        return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ebx & bit_AVX2);
    }
    #else
    static int fastpool_cpu_has_avx2(void) { return 0; }
    #endif
    """
    int omp_get_max_threads() noexcept nogil
    int fastpool_cpu_has_avx2() noexcept nogil
    int FASTPOOL_HAVE_OPENMP
    int FASTPOOL_DEBUG_BUILD  # defined by setup.py


def openmp():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTPOOL_HAVE_OPENMP)


def debug():
    """True for the bounds-checked debug build."""
    return bool(FASTPOOL_DEBUG_BUILD)


def max_threads():
    """The number of threads a parallel kernel would use now."""
    return omp_get_max_threads()


def cpu_has_avx2():
    """True when this CPU can run the AVX2 build of the kernels."""
    return bool(fastpool_cpu_has_avx2())
