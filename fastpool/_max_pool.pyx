"""Max pooling kernels: forward with indices, backward, index validation and unpooling.

Layout: arrays are (planes, D, H, W), C-contiguous (planes = N * C; 2-D pooling has D = 1,
1-D has D = H = 1). Windows come as per-dimension tables from fastpool._arguments.pool_plan:
window o has ``w*[1, o]`` in-bounds taps starting at ``w*[0, o]``, one every ``dilation``.
Padding is never visited, so it never wins.

Indices: "flat" indices are positions in the input plane, (d * H + h) * W + w (int64 from
forward; int32 also accepted), the format torch's max_unpool takes. "Compact" indices (uint8)
are the winner's rank among its window's in-bounds taps in row-major order: 8x less memory,
for windows of at most 256 taps. A window with no in-bounds tap (possible only with dilation
on tiny inputs) gives -inf and flat index -1 (compact 0), and its gradient goes nowhere.

Ties and NaN (PyTorch's CPU rule): a tap replaces the running maximum when it is greater or
when it is NaN. So the first maximum in row-major window order wins ties, a window holding NaN
gives NaN with the index of its last NaN, and an all -inf window gives -inf with its first tap.

Parallelism: forward is a prange over output rows, backward a prange over input rows, so
each element is written by one thread. Backward is a gather: each input element adds, in
row-major output order, the gradients of the windows (among those whose span holds it) that
recorded it as their winner, so overlapping windows accumulate with no atomics, no zero-fill,
and the same bits for any thread count (and the same order as PyTorch's serial scatter).
Unpooling writes through indices, so it runs a plane per thread, in output order (a repeated
index keeps the later value). Kernels trust validated input, release the GIL, never raise.
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.stdint cimport int32_t, int64_t, uint8_t

from fastpool._kernel_common cimport real

ctypedef fused recorded_index:  # what forward writes
    int64_t
    uint8_t

ctypedef fused any_index:  # what backward reads
    int32_t
    int64_t
    uint8_t

ctypedef fused flat_index:  # what unpooling reads
    int32_t
    int64_t


cdef inline Py_ssize_t tap_rank(Py_ssize_t position, const Py_ssize_t[:, ::1] window,
                                Py_ssize_t o, Py_ssize_t dilation) noexcept nogil:
    """Which tap of window o sits at ``position`` along one dimension, or -1 if none."""
    cdef Py_ssize_t offset = position - window[0, o]
    if offset < 0 or offset % dilation != 0 or offset // dilation >= window[1, o]:
        return -1
    return offset // dilation


def forward(const real[:, :, :, ::1] x, real[:, :, :, ::1] out,
            recorded_index[:, :, :, ::1] indices, bint store_indices,
            const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
            const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
            int num_threads):
    cdef Py_ssize_t out_d = out.shape[1], out_h = out.shape[2], out_w = out.shape[3]
    cdef Py_ssize_t in_h = x.shape[2], in_w = x.shape[3]
    cdef Py_ssize_t row, plane, od, oh, ow, jd, jh, jw, td, th, tw, rank, winner
    cdef real best, value
    with nogil:
        for row in prange(out.shape[0] * out_d * out_h, num_threads=num_threads,
                          schedule="static"):
            plane, od, oh = row // (out_d * out_h), (row // out_h) % out_d, row % out_h
            td, th = wd[1, od], wh[1, oh]
            for ow in range(out_w):
                tw = ww[1, ow]
                best = -INFINITY
                winner = 0
                rank = 0
                # The rank counter avoids computing a flat index per tap; it is decoded once.
                for jd in range(td):
                    for jh in range(th):
                        for jw in range(tw):
                            value = x[plane, wd[0, od] + jd * dd, wh[0, oh] + jh * dh,
                                      ww[0, ow] + jw * dw]
                            if value > best or value != value:
                                best = value
                                winner = rank
                            rank = rank + 1
                out[plane, od, oh, ow] = best
                if store_indices:
                    if recorded_index is uint8_t:
                        indices[plane, od, oh, ow] = <uint8_t>winner
                    elif rank == 0:
                        indices[plane, od, oh, ow] = -1
                    else:
                        jd, jh, jw = winner // (th * tw), (winner // tw) % th, winner % tw
                        indices[plane, od, oh, ow] = (
                            ((wd[0, od] + jd * dd) * in_h + wh[0, oh] + jh * dh) * in_w
                            + ww[0, ow] + jw * dw)


def backward(const real[:, :, :, ::1] grad_output, const any_index[:, :, :, ::1] indices,
             real[:, :, :, ::1] grad_input,
             const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
             const Py_ssize_t[:, ::1] ww, const Py_ssize_t[:, ::1] cd,
             const Py_ssize_t[:, ::1] ch, const Py_ssize_t[:, ::1] cw,
             Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    cdef Py_ssize_t in_d = grad_input.shape[1], in_h = grad_input.shape[2]
    cdef Py_ssize_t in_w = grad_input.shape[3]
    cdef Py_ssize_t row, plane, od, oh, ow, d, h, w, jd, jh, jw
    cdef real total
    with nogil:
        for row in prange(grad_input.shape[0] * in_d * in_h, num_threads=num_threads,
                          schedule="static"):
            plane, d, h = row // (in_d * in_h), (row // in_h) % in_d, row % in_h
            for w in range(in_w):
                total = 0
                for od in range(cd[0, d], cd[1, d]):
                    for oh in range(ch[0, h], ch[1, h]):
                        for ow in range(cw[0, w], cw[1, w]):
                            if any_index is uint8_t:
                                jd = tap_rank(d, wd, od, dd)
                                jh = tap_rank(h, wh, oh, dh)
                                jw = tap_rank(w, ww, ow, dw)
                                if (jd >= 0 and jh >= 0 and jw >= 0 and indices[plane, od, oh, ow]
                                        == (jd * wh[1, oh] + jh) * ww[1, ow] + jw):
                                    total = total + grad_output[plane, od, oh, ow]
                            elif indices[plane, od, oh, ow] == (d * in_h + h) * in_w + w:
                                total = total + grad_output[plane, od, oh, ow]
                grad_input[plane, d, h, w] = total


cdef inline bint valid_index(any_index index, Py_ssize_t od, Py_ssize_t oh, Py_ssize_t ow,
                             const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                             const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh,
                             Py_ssize_t dw, Py_ssize_t in_h, Py_ssize_t in_w,
                             Py_ssize_t plane_size) noexcept nogil:
    """Whether ``index`` is what forward could have recorded for window (od, oh, ow)."""
    cdef Py_ssize_t taps = wd[1, od] * wh[1, oh] * ww[1, ow]
    if any_index is uint8_t:
        return index < taps or (taps == 0 and index == 0)
    else:
        if taps == 0:
            return index == -1
        if index < 0 or index >= plane_size:
            return False
        return (tap_rank(index // (in_h * in_w), wd, od, dd) >= 0
                and tap_rank((index // in_w) % in_h, wh, oh, dh) >= 0
                and tap_rank(index % in_w, ww, ow, dw) >= 0)


def first_invalid_index(const any_index[:, :, :, ::1] indices,
                        const Py_ssize_t[:, ::1] wd, const Py_ssize_t[:, ::1] wh,
                        const Py_ssize_t[:, ::1] ww, Py_ssize_t dd, Py_ssize_t dh,
                        Py_ssize_t dw, Py_ssize_t in_d, Py_ssize_t in_h, Py_ssize_t in_w,
                        int num_threads):
    """The flat position (in ``indices``) of the first index that does not name a tap of its
    own window, or -1 when all are valid."""
    cdef Py_ssize_t out_d = indices.shape[1], out_h = indices.shape[2], out_w = indices.shape[3]
    cdef Py_ssize_t row, plane, od, oh, ow, position, invalid = 0, first = -1
    with nogil:
        # Counted in parallel (the common, valid case); located serially only on failure.
        for row in prange(indices.shape[0] * out_d * out_h, num_threads=num_threads,
                          schedule="static"):
            plane, od, oh = row // (out_d * out_h), (row // out_h) % out_d, row % out_h
            for ow in range(out_w):
                if not valid_index(indices[plane, od, oh, ow], od, oh, ow, wd, wh, ww,
                                   dd, dh, dw, in_h, in_w, in_d * in_h * in_w):
                    invalid += 1
        if invalid:
            for position in range(indices.shape[0] * out_d * out_h * out_w):
                row, ow = position // out_w, position % out_w
                plane, od, oh = row // (out_d * out_h), (row // out_h) % out_d, row % out_h
                if not valid_index(indices[plane, od, oh, ow], od, oh, ow, wd, wh, ww,
                                   dd, dh, dw, in_h, in_w, in_d * in_h * in_w):
                    first = position
                    break
    return first


def unpool(const real[:, ::1] x, const flat_index[:, ::1] indices, real[:, ::1] out,
           int num_threads):
    cdef Py_ssize_t plane, o
    with nogil:
        for plane in prange(x.shape[0], num_threads=num_threads, schedule="static"):
            for o in range(x.shape[1]):
                out[plane, indices[plane, o]] = x[plane, o]
