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
