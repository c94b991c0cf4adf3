"""Large outputs from a cache of buffers, so that repeated calls do not pay for fresh memory.

A new array of tens of MB comes from fresh pages, which the operating system maps and zeroes
when they are first written: a pass over memory that the pooling itself does not need (on the
benchmark's VM ~7 ms of one thread's time for 100 MB, more than the pooling). So fastpool
makes its outputs of ``LARGE`` bytes or more from buffers it keeps: such an array's memory
belongs to a ``_Block`` (the array's ``base``); when no array uses the block any more, its
buffer goes back to the cache, and the next output of the same size reuses it, pages already
mapped. Idle buffers are held up to ``FASTPOOL_CACHE_BYTES`` bytes in all (read at import;
default 256 MiB; 0 turns the cache off), the least recently used given up first;
``release_memory()`` frees them.
"""

import math
import os
import threading

import numpy as np

LARGE = 1 << 22  # bytes: smaller outputs are NumPy's own arrays
LIMIT = int(os.environ.get("FASTPOOL_CACHE_BYTES", 256 << 20))

_lock = threading.Lock()
_idle = []  # idle buffers (uint8 arrays), the most recently used last
_idle_bytes = 0


class _Block:
    """The owner of one cached buffer while arrays use it (their ``base``), seen by NumPy
    through the array interface; gives the buffer back to the cache when they are gone."""

    __slots__ = ("buffer", "shape", "dtype")

    def __init__(self, buffer, shape, dtype):
        self.buffer, self.shape, self.dtype = buffer, shape, dtype

    @property
    def __array_interface__(self):
        return {"data": (self.buffer.ctypes.data, False), "shape": self.shape,
                "typestr": self.dtype.str, "version": 3}

    def __del__(self):
        _give_back(self.buffer)


def empty(shape, dtype):
    """A new C-contiguous array, as ``np.empty(shape, dtype)``: a cached buffer where it is
    large."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    if size < LARGE or size > LIMIT:  # (LIMIT 0: the cache is off)
        return np.empty(shape, dtype)
    global _idle_bytes
    buffer = None
    with _lock:
        for i in range(len(_idle) - 1, -1, -1):  # (a few buffers: a scan is enough)
            if _idle[i].size == size:
                buffer = _idle.pop(i)
                _idle_bytes -= size
                break
    if buffer is None:
        buffer = np.empty(size, np.uint8)
    return np.asarray(_Block(buffer, tuple(shape), dtype))


def _give_back(buffer):
    global _idle_bytes
    if _lock is None:  # (interpreter shutdown: the module is gone)
        return
    with _lock:
        _idle.append(buffer)
        _idle_bytes += buffer.size
        while _idle_bytes > LIMIT:  # the least recently used go first
            _idle_bytes -= _idle.pop(0).size


def release_memory():
    """Free the idle buffers that fastpool keeps for its large outputs.

    fastpool makes outputs of 4 MiB or more from buffers it reuses once no array uses them
    (up to ``FASTPOOL_CACHE_BYTES`` of idle buffers, 256 MiB by default; 0 turns that off), so
    that repeated calls skip the operating system's work on fresh memory. This hands the idle
    ones back; arrays still in use are not touched.

    Parameters
    ----------
    None

    Returns
    -------
    int
        How many bytes of idle buffers were freed.

    Examples
    --------
    >>> import numpy as np, fastpool
    >>> y = fastpool.avg_pool2d(np.ones((8, 64, 64, 64), np.float32), 1)  # 8 MiB
    >>> del y  # its buffer is now idle, kept for the next output of that size
    >>> fastpool.release_memory() >= 8 * 2**20
    True
    """
    global _idle_bytes
    with _lock:
        freed = _idle_bytes
        _idle.clear()
        _idle_bytes = 0
    return freed
