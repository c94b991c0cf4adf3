"""The shared parameter generator: every pooling test runs over these cases.

A case is an input shape and the keyword arguments of a pooling call. The generator is
deterministic (seeded). For each kind it covers every square kernel 1-4 / stride 1-3 /
padding up to its limit with both ceil_mode values (and, for average pooling, both
count_include_pad values; for max pooling, dilation 1 and 2), then adds a seeded sample of
anisotropic kernels, strides, paddings and dilations, divisor_override, odd sizes, N or C = 1,
N = 0 and unbatched input. ``describe`` renders a case for assertion messages.
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


def _case(rng, kind, kernel, stride, padding, dilation, **options):
    """A case whose output is non-empty, with input lengths odd and even alike."""
    spatial = []
    for k, p, d in zip(kernel, padding, dilation):
        smallest = max(1, (k - 1) * d + 1 - 2 * p)
        spatial.append(rng.randint(smallest, smallest + 6))
    kwargs = dict(kernel_size=kernel if len(set(kernel)) > 1 else kernel[0], stride=stride,
                  padding=padding)
    if kind == "max":
        kwargs["dilation"] = dilation
    return Case(rng.choice(BATCHES) + tuple(spatial), dict(kwargs, **options))


def pool_cases(nd, kind, samples=300):
    """Cases for ``kind`` 'avg' or 'max' pooling with nd spatial dimensions."""
    rng = random.Random(f"{kind}{nd}")
    extra_flags = [dict(count_include_pad=True), dict(count_include_pad=False)] \
        if kind == "avg" else [dict(), dict()]
    dilations = (1,) if kind == "avg" else (1, 2)
    cases = []
    for k, s, d, ceil_mode, flags in itertools.product(
            range(1, 5), range(1, 4), dilations, (False, True), extra_flags):
        for p in range(((k - 1) * d + 1) // 2 + 1):
            stride = rng.choice([s, None]) if s == k else s
            cases.append(_case(rng, kind, (k,) * nd, stride, (p,) * nd, (d,) * nd,
                               ceil_mode=ceil_mode, **flags))
    for _ in range(samples):
        kernel = tuple(rng.randint(1, 4) for _ in range(nd))
        dilation = tuple(rng.choice(dilations + (3,)) if kind == "max" else 1 for _ in kernel)
        padding = tuple(rng.randint(0, ((k - 1) * d + 1) // 2) for k, d in zip(kernel, dilation))
        options = dict(ceil_mode=rng.random() < 0.5)
        if kind == "avg":
            options.update(count_include_pad=rng.random() < 0.5,
                           divisor_override=rng.choice([None, None, 1, 3, 7]))
        cases.append(_case(rng, kind, kernel, tuple(rng.randint(1, 3) for _ in kernel), padding,
                           dilation, **options))
    return cases


def to_channels_last(a, nd):
    """The same values as ``a`` (N, C, spatial... over ``nd`` spatial dimensions, or
    unbatched), laid out channels-last: memory (N, spatial..., C), axes as ``a``'s."""
    axis = a.ndim - nd - 1
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, axis, -1)), -1, axis)


def nan_payloads(count, dtype):
    """``count`` quiet NaNs of ``dtype`` with distinct payloads 1, 2, ..., count."""
    bits = np.uint32 if np.dtype(dtype) == np.float32 else np.uint64
    return (np.arange(1, count + 1, dtype=bits) | np.array(np.nan, dtype).view(bits)).view(dtype)


def random_array(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def numeric_gradient(forward, x, g, h):
    """Central differences of L(x) = <forward(x), g>, one input element at a time."""
    numeric = np.empty_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        numeric[index] = (np.vdot(forward(x + step), g) - np.vdot(forward(x - step), g)) / (2 * h)
    return numeric


def adaptive_cases(nd, count=120):
    """Adaptive-pooling cases: output sizes smaller than, equal to and larger than the input,
    an int or one entry per dimension (None keeps that input size)."""
    rng = random.Random(f"adaptive{nd}")
    cases = []
    for i in range(count):
        spatial = tuple(rng.randint(1, 9) for _ in range(nd))
        relation = i % 3  # 0: smaller or equal, 1: equal, 2: larger
        sizes = tuple(n if relation == 1 else rng.randint(1, n) if relation == 0
                      else rng.randint(n + 1, n + 5) for n in spatial)
        output_size = sizes[0] if len(set(sizes)) == 1 and rng.random() < 0.5 else sizes
        if isinstance(output_size, tuple) and relation == 1 and rng.random() < 0.5:
            output_size = tuple(None if rng.random() < 0.5 else v for v in output_size)
        cases.append(Case(rng.choice(BATCHES) + spatial, dict(output_size=output_size)))
    return cases
