# Shared by the kernel modules: the element types they are compiled for. Every kernel sees its
# arrays as (planes, D, H, W), C-contiguous; 2-D pooling has D = 1 and 1-D pooling D = H = 1.

ctypedef fused real:
    float
    double
