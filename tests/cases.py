"""The shared parameter generator: every pooling test runs over these cases.

A case is an input shape and the keyword arguments of a pooling call. The generator is
deterministic (seeded), covers every square kernel 1-4 / stride 1-3 / padding up to its limit
with both ceil_mode and count_include_pad values, and adds a seeded sample of anisotropic
kernels, strides and paddings, divisor_override, odd sizes, N or C = 1, N = 0 and unbatched
input. ``describe`` renders a case for assertion messages.
"""

import itertools
import random
from typing import NamedTuple

import numpy as np

BATCHES = [(2, 3), (1, 1), (1, 4), (3, 1), (0, 2), (3,), (1,)]  # (N, C) or unbatched (C,)


class Case(NamedTuple):
    shape: tuple
    kwargs: dict

    def describe(self, function=""):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{function}(x of shape {self.shape}, {arguments})"


def _spatial_size(rng, kernel, padding):
    """An input length for which the output is non-empty, odd and even alike."""
    smallest = max(1, kernel - 2 * padding)
    return rng.randint(smallest, smallest + 6)


def _avg_case(rng, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    spatial = tuple(_spatial_size(rng, k, p) for k, p in zip(kernel, padding))
    kwargs = dict(kernel_size=kernel if len(set(kernel)) > 1 else kernel[0],
                  stride=stride, padding=padding, ceil_mode=ceil_mode,
                  count_include_pad=count_include_pad, divisor_override=divisor_override)
    return Case(rng.choice(BATCHES) + spatial, kwargs)


def avg_cases(nd, samples=300):
    """Average-pooling cases for nd spatial dimensions."""
    rng = random.Random(2026 + nd)
    cases = []
    for k, s, ceil_mode, count_include_pad in itertools.product(
            range(1, 5), range(1, 4), (False, True), (True, False)):
        for p in range(k // 2 + 1):
            stride = rng.choice([s, None]) if s == k else s
            cases.append(_avg_case(rng, (k,) * nd, stride, (p,) * nd, ceil_mode,
                                   count_include_pad, None))
    for _ in range(samples):
        kernel = tuple(rng.randint(1, 4) for _ in range(nd))
        stride = tuple(rng.randint(1, 3) for _ in range(nd))
        padding = tuple(rng.randint(0, k // 2) for k in kernel)
        cases.append(_avg_case(rng, kernel, stride, padding, rng.random() < 0.5,
                               rng.random() < 0.5, rng.choice([None, None, 1, 3, 7])))
    return cases


def random_array(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
