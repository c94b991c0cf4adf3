"""Benchmark fastpool against its NumPy reference: ``python -m fastpool.bench``.

Each case times fastpool's call (best of several runs) and the reference implementation of the
same function (``fastpool.reference``, best of fewer runs), and prints both times and the
speed-up. ``--indices`` instead compares the ways of keeping what max-pool backward needs
(int64, int32 or compact uint8 indices): time and peak memory of forward and backward.
Ratios are meaningful within one run; absolute times drift on shared machines.
"""

import argparse
import time
import tracemalloc

import numpy as np

from . import functional, reference

# (label, function name, input shape, keyword arguments); backward cases take the forward
# input's shape and time the gradient of a same-shaped forward output.
CASES = [
    ("avg 2x2/2 (DenseNet transition)", "avg_pool2d", (8, 128, 56, 56), dict(kernel_size=2)),
    ("avg 3x3/1 pad 1, no pad count", "avg_pool2d", (8, 64, 28, 28),
     dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ("avg 2x2/1 overlapping", "avg_pool2d", (8, 64, 56, 56), dict(kernel_size=2, stride=1)),
    ("avg 2x2/2 backward", "avg_pool2d_backward", (8, 128, 56, 56), dict(kernel_size=2)),
    ("avg 3x3/1 pad 1 backward", "avg_pool2d_backward", (8, 64, 28, 28),
     dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ("max 3x3/2 pad 1 (ResNet stem)", "max_pool2d", (8, 64, 56, 56),
     dict(kernel_size=3, stride=2, padding=1)),
    ("max 2x2/2 (VGG)", "max_pool2d", (8, 128, 56, 56), dict(kernel_size=2)),
    ("max 3x3/2 pad 1 backward", "max_pool2d_backward", (8, 64, 56, 56),
     dict(kernel_size=3, stride=2, padding=1)),
]


def _best_time(call, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def _calls(module, name, shape, kwargs, rng):
    """A no-argument callable running ``module.name`` on random data of ``shape``."""
    x = rng.standard_normal(shape, dtype=np.float32)
    function = getattr(module, name)
    if not name.endswith("_backward"):
        return lambda: function(x, **kwargs)
    forward = getattr(functional, name[:-len("_backward")])
    if name.startswith("max"):
        y, indices = forward(x, **kwargs, return_indices=True)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        return lambda: function(g, indices, shape, **kwargs)
    g = rng.standard_normal(forward(x, **kwargs).shape, dtype=np.float32)
    return lambda: function(g, shape, **kwargs)


def run(cases, repeats, reference_repeats):
    rng = np.random.default_rng(0)
    rows = []
    for label, name, shape, kwargs in cases:
        fast = _best_time(_calls(functional, name, shape, kwargs, rng), repeats)
        slow = _best_time(_calls(reference, name, shape, kwargs, rng), reference_repeats)
        rows.append((label, shape, fast, slow))
    return rows


def _peak_bytes(call):
    """(result, peak bytes NumPy allocated during ``call``), by tracemalloc."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def index_tradeoff(shape=(32, 64, 112, 112), kwargs=None, repeats=10):
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastpool.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--indices", action="store_true",
                        help="compare int64, int32 and compact max-pool indices")
    options = parser.parse_args(argv)
    if options.indices:
        index_tradeoff()
        return
    repeats, reference_repeats = (5, 1) if options.quick else (20, 3)
    print(f"{'case (float32)':<34} {'input shape':<20} {'fastpool':>10} {'NumPy ref':>10} "
          f"{'speed-up':>9}")
    for label, shape, fast, slow in run(CASES, repeats, reference_repeats):
        print(f"{label:<34} {str(shape):<20} {fast * 1e3:>8.2f}ms {slow * 1e3:>8.1f}ms "
              f"{slow / fast:>8.0f}x")


if __name__ == "__main__":
    main()
