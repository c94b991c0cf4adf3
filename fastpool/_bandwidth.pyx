"""The benchmark's memory-bandwidth roof: read one buffer and write another, in parallel.

Pooling must read its input once and write its output once, so the time to stream that many
bytes in and out is its floor. ``read_write`` reads ``source`` (xor-folding it into ``sink`` so
the reads cannot be optimised away) and fills ``target``, each thread taking one contiguous
slice of both. Layout: flat uint64 arrays. Nothing here is used by the pooling functions.
"""

from cython.parallel cimport prange
from libc.stdint cimport uint64_t
from libc.string cimport memset


def read_write(const uint64_t[::1] source, uint64_t[::1] target, uint64_t[::1] sink,
               int num_threads):
    cdef Py_ssize_t tasks = sink.shape[0], task, i, begin, end
    cdef uint64_t folded
    with nogil:
        for task in prange(tasks, num_threads=num_threads, schedule="static"):
            folded = 0
            begin, end = source.shape[0] * task // tasks, source.shape[0] * (task + 1) // tasks
            for i in range(begin, end):
                folded = folded ^ source[i]
            sink[task] = folded
            begin, end = target.shape[0] * task // tasks, target.shape[0] * (task + 1) // tasks
            if end > begin:
                memset(&target[begin], task & 0xff, (end - begin) * sizeof(uint64_t))
