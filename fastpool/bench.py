"""Benchmark fastpool: ``python -m fastpool.bench``.

Pooling is memory-bound: its floor is the time to read the input and write the output once.
Each case is timed (best of several runs) beside that roof, measured in the same run by a
parallel read + write of the same numbers of bytes into a buffer it reuses. fastpool is timed
twice: into a new result array, as the other implementations are timed, and into a reused one
(``out=``), whose time is the one reported as % of roof (100% = at the floor). (fastpool's
new arrays of 4 MiB or more reuse the buffers of dead ones: a repeated call does not pay for
fresh pages, which the operating system zeroes on first write.) Beside it: the NumPy
reference's time relative to fastpool's (new arrays), and where PyTorch is installed, its
native CPU pooling's and oneDNN's (``Tensor.to_mkldnn()``, forward only, layout conversion
excluded). A ratio above 1 means fastpool is that many times faster. Ratios are meaningful
within one run; absolute times drift on shared machines. The implementations and the roof are
timed in turns, each timed call right after three untimed ones of its own, and at least 2 ms
of them (a repeated call's conditions: its own data in the caches, its own threads awake, the
last implementation's threads gone quiet).

``--indices`` instead compares the ways of keeping what max-pool backward needs (int64, int32
or compact uint8 indices): time and peak memory. ``--memory`` reports, for each case, the peak
memory a call allocates beyond its outputs. ``--plot FILE.png`` draws the % of roof of
each implementation (needs matplotlib: ``pip install fastpool[plot]``).
"""

import argparse
import functools
import math
import time
import tracemalloc
from typing import NamedTuple

import numpy as np

from . import _bandwidth, _build_info, _prepared, functional, reference
from ._output_cache import release_memory


class Case(NamedTuple):
    label: str
    function: str          # a fastpool.functional name
    shape: tuple
    kwargs: dict
    dtype: type = np.float32
    channels_last: bool = False

    @property
    def backward(self):
        return self.function.endswith("_backward")

    @property
    def title(self):
        """The label as the tables print it: float64 cases marked."""
        return self.label + ("" if self.dtype == np.float32 else " f64")

    @property
    def forward_name(self):
        return self.function[:-len("_backward")] if self.backward else self.function


def _standard_cases():
    resnet = dict(kernel_size=3, stride=2, padding=1)
    inception = dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)
    cases = [
        ("ResNet stem max 3x3/2 pad 1", "max_pool2d", (32, 64, 112, 112), resnet),
        ("VGG max 2x2/2", "max_pool2d", (32, 128, 56, 56), dict(kernel_size=2)),
        ("DenseNet transition avg 2x2/2", "avg_pool2d", (32, 128, 56, 56), dict(kernel_size=2)),
        ("Inception avg 3x3/1 pad 1 excl. pad", "avg_pool2d", (32, 192, 28, 28), inception),
        ("overlapping avg 2x2/1", "avg_pool2d", (32, 64, 56, 56), dict(kernel_size=2, stride=1)),
        ("global avg 7x7", "adaptive_avg_pool2d", (32, 2048, 7, 7), dict(output_size=1)),
        ("small max 2x2/2", "max_pool2d", (8, 16, 32, 32), dict(kernel_size=2)),
        ("SPPF max 5x5/1 pad 2", "max_pool2d", (32, 256, 20, 20),
         dict(kernel_size=5, stride=1, padding=2)),
        ("few planes, large image max 2x2/2", "max_pool2d", (1, 3, 1024, 1024),
         dict(kernel_size=2)),
    ]
    cases = [Case(*c) for c in cases]
    cases += [
        Case("float64 avg 2x2/2", "avg_pool2d", (16, 64, 56, 56), dict(kernel_size=2),
             np.float64),
        Case("channels-last max 3x3/2 pad 1", "max_pool2d", (32, 64, 112, 112), resnet,
             channels_last=True),
    ]
    backward = [c for c in cases if c.function != "max_pool2d" or c.shape[-1] >= 56]
    return cases + [c._replace(label=c.label + " backward", function=c.function + "_backward")
                    for c in backward]


CASES = _standard_cases()
QUICK_CASES = [  # python -m fastpool: a few typical layer shapes, a smaller batch
    Case("max 3x3/2 pad 1 (ResNet stem)", "max_pool2d", (4, 64, 112, 112),
         dict(kernel_size=3, stride=2, padding=1)),
    Case("avg 2x2/2 (DenseNet transition)", "avg_pool2d", (4, 128, 56, 56), dict(kernel_size=2)),
    Case("avg 3x3/1 pad 1 (Inception)", "avg_pool2d", (4, 192, 28, 28),
         dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    Case("max 3x3/2 pad 1 backward", "max_pool2d_backward", (4, 64, 112, 112),
         dict(kernel_size=3, stride=2, padding=1)),
    Case("avg 2x2/2 backward", "avg_pool2d_backward", (4, 128, 56, 56), dict(kernel_size=2)),
]


def _best_time(call, repeats):
    return _best_times([call], repeats, warm=False)[0]  # (its repeats warm each other)


def _inputs(case, rng):
    """The case's input (and, for a backward, the gradient and indices it takes)."""
    x = rng.standard_normal(case.shape).astype(case.dtype)
    if case.channels_last:
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    forward = getattr(functional, case.forward_name)
    if not case.backward:
        return x, None, None
    if case.forward_name.startswith(("max", "adaptive_max")):
        y, indices = forward(x, **case.kwargs, return_indices=True)
    else:
        y, indices = forward(x, **case.kwargs), None
    return x, np.ones_like(y), indices


def _call(module, case, x, g, indices, out=None):
    """A no-argument callable running ``case`` with fastpool's or the reference's function
    (fastpool's writing into ``out`` when given)."""
    function = getattr(module, case.function)
    kwargs = dict(case.kwargs) if out is None else dict(case.kwargs, out=out)
    if not case.backward:
        return lambda: function(x, **kwargs)
    kwargs.pop("output_size", None)  # an adaptive backward takes no output size
    if indices is not None:
        return lambda: function(g, indices, x.shape, **kwargs)
    return lambda: function(g, x.shape, **kwargs)


def _torch_calls(case, x, g, threads):
    """(native, oneDNN) callables for the case in PyTorch, or None where it has none."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None, None
    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    kwargs = dict(case.kwargs)
    forward = getattr(F, case.forward_name)
    if not case.backward:
        native = lambda: forward(t, **kwargs)  # noqa: E731
        onednn = None
        if x.dtype == np.float32 and not case.channels_last:
            m = t.to_mkldnn()
            onednn = lambda: forward(m, **kwargs)  # noqa: E731
        return native, onednn
    grad = torch.from_numpy(g)
    aten = torch.ops.aten
    if case.forward_name == "max_pool2d":
        y, index = F.max_pool2d(t, **kwargs, return_indices=True)
        k = kwargs["kernel_size"]
        s = kwargs.get("stride") or k
        args = [_pair(k), _pair(s), _pair(kwargs.get("padding", 0)), _pair(1), False, index]
        return (lambda: aten.max_pool2d_with_indices_backward(grad, t, *args)), None
    if case.forward_name == "avg_pool2d":
        k = kwargs["kernel_size"]
        args = [_pair(k), _pair(kwargs.get("stride") or k), _pair(kwargs.get("padding", 0)),
                False, kwargs.get("count_include_pad", True), None]
        return (lambda: aten.avg_pool2d_backward(grad, t, *args)), None
    if case.forward_name == "adaptive_avg_pool2d":
        return (lambda: aten._adaptive_avg_pool2d_backward(grad, t)), None
    return None, None


def _pair(value):
    return [value, value] if isinstance(value, int) else list(value)


def _roof_call(in_bytes, out_bytes, threads):
    """A callable that reads ``in_bytes`` and writes ``out_bytes`` with ``threads`` threads."""
    source = np.ones(max(1, in_bytes // 8), np.uint64)
    target = np.empty(max(1, out_bytes // 8), np.uint64)
    sink = np.empty(4 * threads, np.uint64)
    return lambda: _bandwidth.read_write(source, target, sink, threads)


# How long each implementation runs untimed before its timed call (see ``_best_times``).
WARM_SECONDS = 0.002
WARM_CALLS = 3


def _best_times(calls, repeats, warm=True):
    """Best time of each callable (None: nan), timed in turns, so that a slow spell of a
    shared machine hits them all alike and their ratios hold. ``warm``: each timed call
    follows ``WARM_CALLS`` untimed ones of its own, and more until ``WARM_SECONDS`` have
    passed, so that it meets the caches and the thread team its own last calls left, as a
    repeated call does, not the last implementation's (whose OpenMP threads, in PyTorch's own
    runtime, may still be spinning on the cores: after one untimed call, the first
    implementation of a turn ran the global average, a 0.3 ms case, at half its speed; and on
    cases of tens of MB, one untimed call left part of the data outside the L3 cache, which
    a repeated call finds there: Inception's average, two threads, 3.8-4.5 -> 2.6-3.6 ms for
    fastpool and 2.1-2.3 -> 1.7-2.2 ms for the roof, three calls against one)."""
    best = [math.inf if call else math.nan for call in calls]
    for _ in range(repeats):
        for i, call in enumerate(calls):
            if call:
                if warm:
                    start, calls_made = time.perf_counter(), 0
                    while calls_made < WARM_CALLS or time.perf_counter() - start < WARM_SECONDS:
                        call()
                        calls_made += 1
                start = time.perf_counter()
                call()
                best[i] = min(best[i], time.perf_counter() - start)
    return best


class Row(NamedTuple):
    case: Case
    seconds: float         # into a new result, as the other implementations
    reused: float          # into a reused result (out=), as the roof writes
    roof: float            # seconds at the bandwidth floor
    reference: float       # NumPy reference seconds (nan if not measured)
    torch: float           # PyTorch native seconds (nan if unavailable)
    onednn: float          # oneDNN seconds (nan if unavailable)


def _run(cases, repeats=10, reference_repeats=1, threads=None):
    threads = threads or _build_info.max_threads()
    rng = np.random.default_rng(0)
    rows = []
    for case in cases:
        x, g, indices = _inputs(case, rng)
        call = _call(functional, case, x, g, indices)
        result = call()
        outputs = result if isinstance(result, tuple) else (result,)
        read = x if not case.backward else g
        in_bytes = read.nbytes + (indices.nbytes if indices is not None else 0)
        out_bytes = sum(o.nbytes for o in outputs)
        native, onednn = _torch_calls(case, x, g, threads)
        reused = _call(functional, case, x, g, indices, np.empty_like(outputs[0]))
        seconds, reused_seconds, roof, torch_seconds, onednn_seconds = _best_times(
            [call, reused, _roof_call(in_bytes, out_bytes, threads), native, onednn], repeats)
        slow = math.nan
        if reference_repeats:
            slow = _best_time(_call(reference, case, x, g, indices), reference_repeats)
        rows.append(Row(case, seconds, reused_seconds, roof, slow, torch_seconds,
                        onednn_seconds))
    return rows


def _ratio(other, seconds):
    return "-" if math.isnan(other) else f"{other / seconds:.1f}x"


def _print_table(rows, file=None):
    print(f"{'case':<42} {'shape':<19} {'fastpool':>9} {'out=':>8} {'% roof':>7} {'NumPy':>7} "
          f"{'PyTorch':>8} {'oneDNN':>7}", file=file)
    for row in rows:
        c = row.case
        print(f"{c.title:<42} {str(c.shape).replace(' ', ''):<19} "
              f"{row.seconds * 1e3:>7.2f}ms {row.reused * 1e3:>6.2f}ms "
              f"{100 * row.roof / row.reused:>6.0f}% "
              f"{_ratio(row.reference, row.seconds):>7} {_ratio(row.torch, row.seconds):>8} "
              f"{_ratio(row.onednn, row.seconds):>7}", file=file)
    for kind in ("forward", "backward"):
        picked = [r for r in rows if r.case.backward == (kind == "backward")]
        for name, field in (("PyTorch", "torch"), ("oneDNN", "onednn")):
            ratios = [getattr(r, field) / r.seconds for r in picked
                      if not math.isnan(getattr(r, field))]
            if ratios:
                print(f"geometric mean, {kind}, vs {name}: "
                      f"{math.exp(np.mean(np.log(ratios))):.1f}x over {len(ratios)} cases",
                      file=file)


def _scaling(cases, threads, repeats=10):
    """Print each large forward case's speed-up from one thread to ``threads``, from the best
    times of ``repeats`` rounds that each time every case once: a spell in which the shared
    machine lends one core elsewhere then costs a case one round, not all its runs."""
    rng = np.random.default_rng(0)
    timed, calls = [], []  # the cases timed; per case, its call on one thread and on ``threads``
    for case in cases:
        if case.backward or math.prod(case.shape) < 1 << 22:
            continue
        x, _, _ = _inputs(case, rng)
        function = getattr(functional, case.function)
        timed.append(case)
        calls += [functools.partial(function, x, **case.kwargs, num_threads=n)
                  for n in (1, threads)]
    best = _best_times(calls, repeats)
    for case, one, many in zip(timed, best[::2], best[1::2]):
        print(f"{case.label:<42} 1 -> {threads} threads: {one / many:.2f}x")


def _overhead(repeats=2000):
    """Per-call time on a tiny (1, 1, 3, 3) input, forward and backward, for fastpool and (if
    installed) PyTorch (its backward as the aten operators that autograd calls)."""
    x = np.ones((1, 1, 3, 3), np.float32)
    g = np.ones((1, 1, 1, 1), np.float32)
    _, indices = functional.max_pool2d(x, 2, return_indices=True)
    calls = {"fastpool avg_pool2d": lambda: functional.avg_pool2d(x, 2),
             "fastpool max_pool2d": lambda: functional.max_pool2d(x, 2),
             "fastpool max_pool2d, indices":
                 lambda: functional.max_pool2d(x, 2, return_indices=True),
             "fastpool avg_pool2d_backward":
                 lambda: functional.avg_pool2d_backward(g, x.shape, 2),
             "fastpool max_pool2d_backward":
                 lambda: functional.max_pool2d_backward(g, indices, x.shape, 2)}
    try:
        import torch
        t, grad = torch.from_numpy(x), torch.from_numpy(g)
        aten, pair, zero = torch.ops.aten, [2, 2], [0, 0]
        index_tensor = torch.from_numpy(indices)
        calls.update({
            "PyTorch avg_pool2d": lambda: torch.nn.functional.avg_pool2d(t, 2),
            "PyTorch max_pool2d": lambda: torch.nn.functional.max_pool2d(t, 2),
            "PyTorch max_pool2d, indices":
                lambda: torch.nn.functional.max_pool2d(t, 2, return_indices=True),
            "PyTorch avg_pool2d_backward": lambda: aten.avg_pool2d_backward(
                grad, t, pair, pair, zero, False, True, None),
            "PyTorch max_pool2d_backward": lambda: aten.max_pool2d_with_indices_backward(
                grad, t, pair, pair, zero, [1, 1], False, index_tensor)})
    except ImportError:
        pass
    batches = [functools.partial(_repeat, call, 100) for call in calls.values()]
    best = _best_times(batches, repeats // 100, warm=False)  # (100 calls warm each other)
    for name, seconds in zip(calls, best):
        print(f"per-call time on (1, 1, 3, 3), {name}: {seconds / 100 * 1e6:.2f} us")


def _repeat(call, times):
    for _ in range(times):
        call()


def _plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.case.label for r in rows]
    series = {"fastpool (out=)": [100 * r.roof / r.reused for r in rows],
              "fastpool (new array)": [100 * r.roof / r.seconds for r in rows],
              "PyTorch (native)": [100 * r.roof / r.torch for r in rows],
              "oneDNN (blocked layout)": [100 * r.roof / r.onednn for r in rows]}
    figure, axes = plt.subplots(figsize=(11, 0.4 * len(rows) + 1.5))
    height = 0.2
    for i, (name, values) in enumerate(series.items()):
        axes.barh(np.arange(len(rows)) + (i - 1.5) * height, values, height, label=name)
    axes.set_yticks(np.arange(len(rows)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.axvline(100, color="black", linewidth=0.8)
    axes.set_xlabel("% of the memory-bandwidth roof (higher is better)")
    axes.set_title(f"CPU pooling, float32, {_build_info.max_threads()} threads")
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _index_tradeoff(shape=(32, 64, 112, 112), kwargs=None, repeats=10):
    """Print time and peak memory of max_pool2d forward + backward with each kind of index."""
    kwargs = kwargs or dict(kernel_size=3, stride=2, padding=1)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    print(f"max_pool2d {kwargs} on float32 {shape}: keeping what backward needs")
    print(f"{'indices':<16} {'index MB':>9} {'forward':>9} {'fwd peak MB':>12} "
          f"{'backward':>9} {'bwd peak MB':>12}")
    for label, mode, dtype in [("int64 (flat)", True, None), ("int32 (cast)", True, np.int32),
                               ("uint8 (compact)", "compact", None)]:
        def forward():
            y, indices = functional.max_pool2d(x, **kwargs, return_indices=mode)
            return y, indices if dtype is None else indices.astype(dtype)
        (y, indices), forward_peak = _peak_bytes(forward)
        g = np.ones_like(y)

        def backward():
            return functional.max_pool2d_backward(g, indices, shape, **kwargs)
        _, backward_peak = _peak_bytes(backward)
        forward_time, backward_time = _best_time(forward, repeats), _best_time(backward, repeats)
        print(f"{label:<16} {indices.nbytes / 2**20:>9.1f} {forward_time * 1e3:>7.1f}ms "
              f"{forward_peak / 2**20:>12.1f} {backward_time * 1e3:>7.1f}ms "
              f"{backward_peak / 2**20:>12.1f}")


def _memory(cases):
    """Print, and return as (case, output bytes, extra bytes into a new array, extra bytes
    into ``out=``) rows, the peak memory allocated during one call of each case beyond the
    outputs it returns (``_peak_bytes``), through the full path (no prepared call kept: the
    call validates, makes its outputs and prepares its kernel call; a repeat, through the
    prepared call, allocates no more), its plan made by an untraced call before."""
    rng = np.random.default_rng(0)
    print("peak memory allocated during a call beyond its outputs (tracemalloc: arrays and "
          "Python objects; the full path; the output cache emptied first)")
    print(f"{'case':<42} {'outputs MB':>10} {'extra KB':>9} {'out= extra KB':>14}")
    rows = []
    for case in cases:
        x, g, indices = _inputs(case, rng)
        call = _call(functional, case, x, g, indices)
        call()
        _prepared.forget()
        outputs, peak = _peak_bytes(call)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        out_bytes = sum(o.nbytes for o in outputs)
        _prepared.forget()
        _, reused_peak = _peak_bytes(_call(functional, case, x, g, indices,
                                           np.empty_like(outputs[0])))
        rows.append((case, out_bytes, peak - out_bytes, reused_peak))
        print(f"{case.title:<42} {out_bytes / 2**20:>10.1f} {(peak - out_bytes) / 1024:>9.1f} "
              f"{reused_peak / 1024:>14.1f}")
    return rows


def _peak_bytes(call):
    """(result, peak bytes allocated during ``call``), by tracemalloc (NumPy's arrays and
    Python's objects). The idle buffers of fastpool's output cache are freed first, so that
    the outputs are allocated, and counted, afresh."""
    release_memory()
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv=None):
    """Run the benchmark (the ``python -m fastpool.bench`` command).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (``--quick``, ``--no-reference``, ``--threads N``,
        ``--plot FILE.png``, ``--indices``, ``--memory``); defaults to ``sys.argv[1:]``.

    Examples
    --------
    >>> from fastpool import bench
    >>> bench.main(["--quick", "--no-reference"])  # doctest: +SKIP
    float32 unless marked; 2 threads; best of 5 runs; ratios are other time / fastpool time
    ...
    """
    parser = argparse.ArgumentParser(prog="python -m fastpool.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a few typical layer shapes, fewer repeats (python -m fastpool)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the (slow) NumPy reference")
    parser.add_argument("--threads", type=int, help="threads for every implementation")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the %% of roof comparison")
    parser.add_argument("--indices", action="store_true",
                        help="compare int64, int32 and compact max-pool indices")
    parser.add_argument("--memory", action="store_true",
                        help="the peak memory each case allocates beyond its outputs")
    options = parser.parse_args(argv)
    if options.indices:
        _index_tradeoff()
        return
    if options.memory:
        _memory(QUICK_CASES if options.quick else CASES)
        return
    cases, repeats = (QUICK_CASES, 5) if options.quick else (CASES, 10)
    threads = options.threads or _build_info.max_threads()
    print(f"float32 unless marked; {threads} threads; best of {repeats} runs; "
          f"ratios are other time / fastpool time")
    rows = _run(cases, repeats, 0 if options.no_reference else 1, threads)
    _print_table(rows)
    if not options.quick:
        _scaling(cases, threads)
        _overhead()
    if options.plot:
        _plot(rows, options.plot)
        print(f"plot written to {options.plot}")


if __name__ == "__main__":
    main()
