"""The pooling kernel modules compiled a second time for AVX2 (x86-64 builds only).

Same source, same results bit for bit; ``fastpool._kernels`` imports these instead of the
baseline modules when the CPU has AVX2.
"""
