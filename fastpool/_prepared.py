"""Prepared kernel calls, and the lean path for calls that repeat a signature.

A kernel takes its arrays first, as (planes, D, H, W) views, then arguments that the call's
signature fixes (window tables, scalars, per-thread scratch sizes, the rows per task), then
the thread count. ``Call`` holds one kernel call's fixed part, ready to run on any arrays of
its signature; ``functional`` builds one for every kernel it runs. For a plain call (the
caller's arrays C-contiguous, native and used as given, no float16 work array) it also keeps a
``Prepared``: the Call and the shapes of the arrays it takes and makes, under the signature
(what is computed, its normalised arguments, the arrays' shapes, strides and dtypes). A repeat
then skips validation, planning and layout work: on small arrays that work costs more than
the pooling.
"""

import numpy as np

from . import _arguments as args

BAND = object()  # stands for the rows per task, which depend on the thread count


class Scratch:
    """Stands for a scratch row of ``width`` elements of ``dtype`` per thread (made for each
    call, as concurrent calls cannot share them), set to ``fill`` where it is not None. Each
    row is padded to whole 64-byte cache lines plus one, so that threads writing their own
    rows never share a line."""

    __slots__ = ("row", "dtype", "fill")

    def __init__(self, width, dtype, fill=None):
        self.dtype, self.fill = np.dtype(dtype), fill
        per_line = 64 // self.dtype.itemsize
        self.row = -(-width // per_line) * per_line + per_line

    def make(self, threads):
        if self.fill == 0:
            return np.zeros((threads, self.row), self.dtype)  # (fill(0) costs ~0.4 us more)
        rows = np.empty((threads, self.row), self.dtype)
        if self.fill is not None:
            rows.fill(self.fill)
        return rows


_KERNEL_TYPES = {np.dtype(t): name for t, name in [
    (np.float32, "float"), (np.float64, "double"), (np.int8, "int8_t"), (np.uint8, "uint8_t"),
    (np.int16, "int16_t"), (np.uint16, "uint16_t"), (np.int32, "int32_t"), (np.int64, "int64_t")]}


def _specialised(kernel, dtypes):
    """The kernel compiled for the fused types ``dtypes`` (its arrays' element types, in the
    order its fused types vary): calling it directly skips the fused-type dispatch. The fused
    kernel itself where none matches (or the kernel is not fused)."""
    names = "|".join(_KERNEL_TYPES.get(dtype, "?") for dtype in dtypes)
    return getattr(kernel, "__signatures__", {}).get(names, kernel)


class Call:
    """One kernel call, prepared: kernel ``name`` of ``module``, compiled for the arrays'
    ``dtypes``, and its arguments after the arrays (less the thread count), where ``BAND`` and
    ``Scratch`` stand for those that depend on the thread count. ``bands`` = (planes, rows per
    plane) that the tasks split; ``work`` the element count that decides the thread count.
    ``run`` runs it on views; once kept (``keep``), calling it runs it on the caller's
    arrays."""

    __slots__ = ("kernel", "arguments", "bands", "work", "serial", "scratch_at", "given",
                 "made", "valid", "tiny")

    def __init__(self, module, name, dtypes, arguments, bands=None, work=0):
        self.kernel = _specialised(getattr(module, name), dtypes)
        # Window tables as the kernel module's own typed memoryviews, which its kernels take
        # without a new buffer request (~0.1 us a table).
        table = module.plan_table
        self.arguments = tuple(table(a) if isinstance(a, np.ndarray) and a.ndim == 2
                               and a.dtype == np.intp else a for a in arguments)
        self.bands, self.work = bands, work
        self.scratch_at = tuple((i, a) for i, a in enumerate(self.arguments)
                                if type(a) is Scratch)
        self.serial = self._resolved(1)  # (one thread: the common case for small arrays)

    def _resolved(self, threads):
        band = args.band_rows(*self.bands, threads) if self.bands else None
        return tuple(band if a is BAND else a for a in self.arguments) + (threads,)

    def run(self, views, num_threads):
        """What the kernel returns, run on ``views`` (its arrays, in its order)."""
        if num_threads is None and self.work < args.SERIAL_WORK_LIMIT:
            threads = 1  # (as thread_count says, without asking OpenMP)
        else:
            threads = args.thread_count(num_threads, self.work)
        arguments = self.serial if threads == 1 else self._resolved(threads)
        if self.scratch_at:
            arguments = list(arguments)
            for at, scratch in self.scratch_at:
                arguments[at] = scratch.make(threads)
        return self.kernel(*views, *arguments)

    def keep(self, signature, given, made, valid):
        """Keep this call for repeats of ``signature``, where the kernel takes the caller's
        arrays as views of shapes ``given``, then arrays the call makes, as (shape, view
        shape, dtype) (``made``: the first is the one ``out=`` may stand for), and returns
        ``valid`` on valid input."""
        self.given, self.valid = given, valid
        self.made = tuple(zip(*made))  # (shapes, view shapes, dtypes)
        # (shape, view shape, dtype) of the output where one array goes in and one out, on
        # one thread, without scratch: the tiny array's call, which ``lean`` makes at its
        # cheapest (each step costs ~0.1 us, the pooling less)
        self.tiny = made[0] if (len(given) == len(made) == 1 and valid is None
                                and not self.scratch_at
                                and self.work < args.SERIAL_WORK_LIMIT) else None
        if len(_KEPT) >= 512:
            _KEPT.clear()
        _KEPT[signature] = self

    def takes(self, out, sources):
        """Whether ``out`` is exactly what this call writes, as ``args.output_array`` checks
        it: otherwise the full path says what is wrong with it."""
        shapes, _, dtypes = self.made
        return (type(out) is np.ndarray and out.shape == shapes[0] and out.dtype == dtypes[0]
                and out.flags.c_contiguous and out.flags.writeable
                and not any(np.may_share_memory(out, source) for source in sources))

    def __call__(self, given, out, num_threads):
        """The kept call's result for the caller's arrays ``given`` (of its signature) and
        ``out`` (None, or one that ``takes`` accepted); None where the kernel found the input
        invalid, for the full path to say why. (Mapped C functions, not Python loops: on
        small arrays each step counts.)"""
        shapes, views, dtypes = self.made
        result = np.empty(views[0], dtypes[0]) if out is None else out.reshape(views[0])
        made = (result, *map(np.empty, views[1:], dtypes[1:]))
        if self.run((*map(_reshape, given, self.given), *made), num_threads) != self.valid:
            return None
        made = (result.reshape(shapes[0]) if out is None else out,
                *map(_reshape, made[1:], shapes[1:]))
        return made[0] if len(made) == 1 else made


_reshape = np.ndarray.reshape


_KEPT = {}  # signature -> kept Call


def forget():
    """Drop every kept call (as when the kernel modules change)."""
    _KEPT.clear()


def signature(kind, arrays):
    """A call's signature: ``kind`` (what is computed, with its normalised arguments) and the
    shapes, strides and dtypes of its ``arrays``; None where one is not an ndarray."""
    key = (kind,)
    for a in arrays:
        if type(a) is not np.ndarray:
            return None
        key += (a.shape, a.strides, a.dtype)
    return key


def lean(kind, given, out, num_threads):
    """The result of the call kept for ``kind`` and the caller's arrays ``given``; None where
    none is kept (``kind`` None: none is looked for), where ``out`` is not exactly what it
    writes or where the kernel found the input invalid: then the full path runs, and says
    what is wrong."""
    if len(given) == 1:  # (the signature of the common case, directly)
        x = given[0]
        call = _KEPT.get((kind, x.shape, x.strides, x.dtype)) if type(x) is np.ndarray else None
    else:
        call = _KEPT.get(signature(kind, given))
    if call is None or (out is not None and not call.takes(out, given)):
        return None
    if call.tiny is not None and num_threads is None:  # (any thread count gives one)
        shape, view, dtype = call.tiny
        result = np.empty(view, dtype) if out is None else out.reshape(view)
        call.kernel(given[0].reshape(call.given[0]), result, *call.serial)
        return result.reshape(shape) if out is None else out
    return call(given, out, num_threads)
