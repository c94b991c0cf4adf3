"""Calls that fastpool routes to different kernels or paths give the same results.

Stride-1 pooling of small C-order planes runs a plane at a time (``forward_plane``, and
``backward_plane`` for average pooling), and so does max pooling whose windows overlap down
the columns at stride H 1; at a larger stride H, max pooling folds down each output row's
window rows, then across; larger planes and channels-last arrays take the row kernels. Sums
keep their order and max keeps its tie and NaN rules on every path, so results agree bit for
bit (NaN payloads included). Repeated plain calls take a prepared, lean path. The AVX2 build
of the kernels (x86-64) gives the baseline build's bits."""

import importlib.util
import io
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import fastpool
from fastpool import _arguments, _build_info, _kernels, _prepared, functional, reference
from fastpool._kernels import _avg_pool, _max_pool
from cases import nan_payloads, pool_cases, to_channels_last

STRIDE_ONE = [
    ("avg_pool2d", dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=(2, 4), stride=1, padding=(1, 2), ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=2, stride=1, divisor_override=3)),  # (folded in place)
    ("avg_pool1d", dict(kernel_size=4, stride=1, padding=2, count_include_pad=False)),
    ("max_pool2d", dict(kernel_size=5, stride=1, padding=2)),
    ("max_pool2d", dict(kernel_size=(3, 2), stride=1, dilation=(2, 3), padding=1,
                        ceil_mode=True)),
    ("max_pool1d", dict(kernel_size=3, stride=1, dilation=2, padding=2)),
    ("avg_pool2d", dict(kernel_size=(2, 3), stride=1, padding=(0, 1))),
    ("avg_pool1d", dict(kernel_size=3, stride=1)),  # (folded in place)
]


# Max pooling whose windows overlap down the columns, for 2-D planes of (9, 13): (kernel,
# stride, padding, dilation, ceil_mode). At a stride H above 1 each output row folds down its
# window's rows, then across (``forward_down_across``); at stride H 1 a plane at a time, the
# padded copy's rows holding whole windows, or the whole input row where no window reaches its
# end (kernel W 2 at stride 2, or 4 at 4, on 13 columns).
STRIDED_MAX = [
    ((3, 3), (2, 2), (1, 1), (1, 1), False),  # the ResNet stem's
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (2, 2), (0, 0), (1, 1), False),
    ((4, 3), (3, 2), (2, 1), (1, 1), True),
    ((3, 2), (2, 3), (1, 1), (2, 1), False),
    ((5, 4), (4, 3), (2, 2), (1, 2), True),
    ((3, 4), (2, 4), (1, 1), (1, 1), False),
    ((3, 3), (1, 2), (1, 1), (1, 1), False),  # (stride 1 down the columns)
    ((3, 2), (2, 1), (0, 1), (2, 1), True),
    ((2, 3), (1, 3), (0, 1), (3, 2), True),  # (stride 1 down the columns)
]
PLANE_PASSES = STRIDE_ONE + [("max_pool2d", dict(zip(
    ("kernel_size", "stride", "padding", "dilation", "ceil_mode"), case)))
    for case in STRIDED_MAX]


def test_max_pooling_of_overlapping_rows_takes_its_kernel():
    for case in STRIDED_MAX:
        plan = _arguments.pool_plan((9, 13), *case)
        if case[1][0] > 1:
            assert plan.down_across is not None and plan.plane_pass is None, case
        else:
            assert plan.plane_pass is not None and plan.down_across is None, case
    assert _arguments.pool_plan((9, 13), *STRIDED_MAX[0], channels=3).down_across is None


def _data(shape, dtype):
    """Few distinct values (ties, signed zeros) and NaNs with distinct payloads."""
    rng = np.random.default_rng(11)
    x = rng.choice(np.array([-0.0, 0.0, 1.5, -2.0, 3.0], dtype), shape)
    flat = x.reshape(-1)
    nans = rng.choice(flat.size, size=flat.size // 9, replace=False)
    flat[nans] = nan_payloads(len(nans), dtype)
    return x, np.uint32 if dtype == np.float32 else np.uint64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", PLANE_PASSES)
def test_plane_at_a_time_gives_the_row_kernels_bits(name, kwargs, dtype):
    nd = int(name[-2])
    x, bits = _data((2, 3) + (9, 13)[2 - nd:], dtype)
    if name.startswith("avg"):
        x = np.nan_to_num(x, nan=0.25)  # sums: NaN would hide the bits that matter
    plane = getattr(fastpool, name)(x, **kwargs)
    rows = getattr(fastpool, name)(to_channels_last(x, nd), **kwargs)
    np.testing.assert_array_equal(plane.view(bits), np.ascontiguousarray(rows).view(bits))
    if name.startswith("avg"):  # and the stride-1 backward's plane-at-a-time gather
        g, _ = _data(plane.shape, dtype)
        g = np.nan_to_num(g, nan=-0.75)
        backward = getattr(fastpool, name + "_backward")
        np.testing.assert_array_equal(
            backward(g, x.shape, **kwargs).view(bits),
            np.ascontiguousarray(backward(to_channels_last(g, nd), x.shape, **kwargs)).view(bits))


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_down_then_across_scans_zeros_and_nan_again_in_row_major_order(dtype, threads):
    # Negative numbers (the passes skip NaN bookkeeping), then ties of signed zeros and NaNs
    # with payloads, each pair where column-major order would pick the other, the NaNs below
    # rows already pooled: results must be the row kernels' bits, in bands (2-3 threads) too.
    bits = np.uint32 if dtype == np.float32 else np.uint64
    x = -1 - np.abs(np.random.default_rng(2).standard_normal((1, 2, 30, 27))).astype(dtype)
    x[..., 10, 4], x[..., 11, 3] = -0.0, 0.0
    x[..., 12, 5], x[..., 12, 6] = 0.0, -0.0
    x[..., 20, 7], x[..., 21, 6] = nan_payloads(2, dtype)
    kwargs = dict(kernel_size=3, stride=2, padding=1)
    assert _arguments.pool_plan((30, 27), (3, 3), (2, 2), (1, 1), (1, 1), False).down_across
    rows = np.ascontiguousarray(fastpool.max_pool2d(to_channels_last(x, 2), **kwargs))
    np.testing.assert_array_equal(
        fastpool.max_pool2d(x, **kwargs, num_threads=threads).view(bits), rows.view(bits))
    assert (rows == 0).any() and np.isnan(rows).any()  # (the cases are met)


@pytest.mark.parametrize("name, kwargs", STRIDE_ONE[:1] + STRIDE_ONE[4:5] + [
    ("max_pool2d", dict(kernel_size=3, stride=(1, 2), padding=1))])
def test_a_plane_too_large_for_one_pass(name, kwargs):
    """Planes past PLANE_PASS_LIMIT, in the stride-1-down geometries that smaller planes take
    a plane at a time, run the row kernels instead, and give the reference's values."""
    side = int(np.sqrt(_arguments.PLANE_PASS_LIMIT)) + 4
    x = np.random.default_rng(5).standard_normal((1, 2, side, side - 3))
    np.testing.assert_allclose(getattr(fastpool, name)(x, **kwargs),
                               getattr(reference, name)(x, **kwargs), rtol=1e-12, atol=1e-12)


ALIKE_ROWS = [  # max pooling whose interior rows the forward kernel folds a run at a time
    ("max_pool2d", (2, 1, 13, 11), dict(kernel_size=2)),
    ("max_pool2d", (1, 2, 15, 12), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", (3, 1, 9, 17), dict(kernel_size=(4, 3), stride=(3, 2), padding=(2, 1))),
    ("max_pool2d", (1, 1, 20, 9), dict(kernel_size=(2, 4), stride=(1, 2), dilation=(2, 1))),
    ("max_pool3d", (1, 2, 5, 9, 10), dict(kernel_size=(2, 3, 2), stride=2, padding=(1, 1, 0))),
]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("name, shape, kwargs", ALIKE_ROWS)
def test_runs_of_alike_rows_give_the_row_by_row_bits(name, shape, kwargs, threads):
    """Interior rows (clipped first and last rows break the runs; few planes, so bands cut
    them too) folded a run per call give what the channels-last kernel, row by row, gives."""
    x, bits = _data(shape, np.float32)
    function = getattr(fastpool, name)
    runs = function(x, **kwargs, num_threads=threads)
    channels_last = function(to_channels_last(x, len(shape) - 2), **kwargs)
    np.testing.assert_array_equal(runs.view(bits), np.ascontiguousarray(channels_last).view(bits))
    np.testing.assert_array_equal(runs, getattr(reference, name)(x, **kwargs))


PAIR_MAXIMA = [  # 2x2 windows at stride 2 along W, which _simd_passes takes a vector at a time
    ((2, 3, 16, 16), dict(kernel_size=2)),  # rows of whole vectors
    ((1, 2, 10, 58), dict(kernel_size=2)),  # 29 outputs: the last vector overlaps
    ((1, 2, 9, 31), dict(kernel_size=2, padding=1, ceil_mode=True)),  # edges, odd widths
    ((2, 1, 12, 40), dict(kernel_size=2, stride=2, dilation=(2, 1))),  # rows apart
    ((1, 2, 8, 6), dict(kernel_size=2)),  # 3 outputs: shorter than a vector
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kwargs", PAIR_MAXIMA)
def test_vector_pair_maxima_keep_the_scans_bits(shape, kwargs, dtype, threads):
    """Signed zeros tie everywhere (a window's -0.0 and 0.0 in both orders: row-major order
    and any other pick differently), without NaN (taken a vector at a time) and with NaN
    payloads (which send those rows back to the folds): the reference's bits."""
    rng = np.random.default_rng(3)
    x = rng.choice(np.array([-0.0, 0.0, -1.0], dtype), shape)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for nans in (0, 3):
        flat = x.reshape(-1)
        places = rng.choice(flat.size, size=nans, replace=False)
        flat[places] = nan_payloads(nans, dtype)
        y = fastpool.max_pool2d(x, **kwargs, num_threads=threads)
        np.testing.assert_array_equal(y.view(bits),
                                      reference.max_pool2d(x, **kwargs).view(bits))
    x3 = x.reshape(1, 1, -1, *shape[2:])  # 3-D windows of 2 x 1 x 2: taps planes apart
    kwargs3 = dict(kernel_size=(2, 1, 2), stride=2)
    np.testing.assert_array_equal(fastpool.max_pool3d(x3, **kwargs3).view(bits),
                                  reference.max_pool3d(x3, **kwargs3).view(bits))


PLANE_MAXIMA = [  # stride-1 max windows on small planes, which _simd_passes takes a row at a time
    ((2, 3, 20, 20), dict(kernel_size=5, stride=1, padding=2)),  # SPPF's
    ((1, 2, 9, 13), dict(kernel_size=(3, 2), stride=1, dilation=(2, 3), padding=1,
                         ceil_mode=True)),
    ((2, 2, 7, 31), dict(kernel_size=(1, 4), stride=1, padding=(0, 2))),  # a row each
    ((1, 3, 12, 9), dict(kernel_size=(6, 3), stride=1, dilation=(2, 1), padding=(5, 1))),
    ((1, 2, 6, 5), dict(kernel_size=3, stride=1, padding=1)),  # rows shorter than a vector
    # window rows folded down 4 or 2 output rows at once, the rest one by one
    ((1, 2, 23, 17), dict(kernel_size=5, stride=1, padding=2)),  # 4 x 5, 2, 1
    ((1, 2, 10, 12), dict(kernel_size=(4, 3), stride=1, padding=(2, 1))),  # 4 x 2, 2, 1
    ((1, 2, 18, 16), dict(kernel_size=(7, 5), stride=1, padding=(3, 2))),  # 4 x 4, 2
    ((1, 2, 13, 11), dict(kernel_size=(3, 2), stride=1, padding=(1, 0))),  # 2 x 6, 1
    ((1, 2, 9, 10), dict(kernel_size=2, stride=1)),  # 2 x 4
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kwargs", PLANE_MAXIMA)
def test_vector_plane_maxima_keep_the_scans_bits(shape, kwargs, dtype, threads):
    """Signed zeros tie everywhere, planes without NaN (taken in vector instructions) and the
    first with NaN payloads (pooled by the folds), in one call: the reference's bits; distinct
    values, where any tap missed or taken twice shows; and max_pool1d's stride-1 windows (its
    planes are single rows)."""
    assert _arguments.pool_plan(shape[2:], *[(v, v) if isinstance(v, int) else v for v in (
        kwargs["kernel_size"], 1, kwargs.get("padding", 0), kwargs.get("dilation", 1))],
        kwargs.get("ceil_mode", False)).plane_pass is not None
    rng = np.random.default_rng(4)
    x = rng.choice(np.array([-0.0, 0.0, -1.0, 2.0], dtype), shape)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    x[0, 0, 1, 2], x[0, 0, -1, 0] = nan_payloads(2, dtype)
    y = fastpool.max_pool2d(x, **kwargs, num_threads=threads)
    np.testing.assert_array_equal(y.view(bits), reference.max_pool2d(x, **kwargs).view(bits))
    planes = y.reshape(-1, *y.shape[2:])
    assert np.isnan(planes[0]).any() and not np.isnan(planes[1:]).any()  # (both kinds met)
    distinct = rng.permutation(x.size).reshape(shape).astype(dtype)  # (every tap matters)
    np.testing.assert_array_equal(fastpool.max_pool2d(distinct, **kwargs, num_threads=threads),
                                  reference.max_pool2d(distinct, **kwargs))
    x1 = x.reshape(shape[0], -1, shape[3])
    np.testing.assert_array_equal(
        fastpool.max_pool1d(x1, 5, stride=1, padding=2, num_threads=threads).view(bits),
        reference.max_pool1d(x1, 5, stride=1, padding=2).view(bits))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", [c for c in STRIDE_ONE if c[0].startswith("avg")])
def test_vector_plane_sums_keep_the_row_kernels_bits(name, kwargs, dtype):
    """Stride-1 averages of small planes and their gradients, which _simd_passes sums in
    vector instructions, on values whose sums round differently in any other order: the
    channels-last (row) kernels' bits, rows of whole vectors and of a last vector overlapping
    the one before, in one group of four vectors or more (the passes go down the rows a group
    of columns at a time)."""
    nd = int(name[-2])
    rng = np.random.default_rng(6)
    for width in (16, 28, 44, 75):
        x = rng.standard_normal((2, 3) + (12, width)[2 - nd:]).astype(dtype)
        function = getattr(fastpool, name)
        y = function(x, **kwargs)
        last = function(to_channels_last(x, nd), **kwargs)
        np.testing.assert_array_equal(y.view(np.uint8), np.ascontiguousarray(last).view(np.uint8))
        g = rng.standard_normal(y.shape).astype(dtype)
        backward = getattr(fastpool, name + "_backward")
        last = backward(to_channels_last(g, nd), x.shape, **kwargs)
        np.testing.assert_array_equal(backward(g, x.shape, **kwargs).view(np.uint8),
                                      np.ascontiguousarray(last).view(np.uint8))


@pytest.fixture
def none_kept():
    """No call kept at the start: a test that counts lean calls must not meet the moment the
    kept calls reach ``_prepared.KEPT_CALLS`` and are all dropped (then one repeat, the first
    after it, takes the full path; how many earlier tests kept decides when)."""
    _prepared.forget()


@pytest.fixture
def served(monkeypatch):
    """Whether each public call made since was served by the lean path (True) or went on to
    the full path (False)."""
    record = []
    lean = _prepared.lean

    def spy(kind, a, b, out, num_threads, full):
        went_on = []

        def full_path(*arguments):
            went_on.append(True)
            return full(*arguments)
        try:
            return lean(kind, a, b, out, num_threads, full_path)
        finally:
            record.append(not went_on)
    monkeypatch.setattr(_prepared, "lean", spy)
    return record


PREPARED_CALLS = [  # forward calls that a repeat serves from a prepared kernel call
    ("avg_pool2d", dict(kernel_size=2)),
    ("avg_pool2d", dict(kernel_size=3, stride=1, padding=1)),
    ("avg_pool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=2)),
    ("max_pool2d", dict(kernel_size=5, stride=1, padding=2)),
    ("max_pool3d", dict(kernel_size=2, padding=(0, 1, 1))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("name, kwargs", PREPARED_CALLS)
@pytest.mark.usefixtures("none_kept")
def test_repeated_calls_take_the_lean_path_and_give_the_same_results(name, kwargs, dtype):
    if dtype == np.int16 and name.startswith("avg"):
        pytest.skip("average pooling takes floats")
    nd = int(name[-2])
    shape = (2, 3) + (6, 7, 9)[3 - nd:]
    function, expected = getattr(fastpool, name), getattr(reference, name)
    for seed in range(3):  # the first call prepares, the others reuse it on new data
        x = (np.random.default_rng(seed).standard_normal(shape) * 100).astype(dtype)
        for threads in (None, 2):
            y = function(x, **kwargs, num_threads=threads)
            assert y.dtype == dtype
            np.testing.assert_allclose(y, expected(x, **kwargs), rtol=1e-5, atol=1e-4)
    prepared = [call for call in _prepared._KEPT.values()
                if call.given[0].shape == shape and call.given[0].dtype == dtype]
    # and it calls the kernel compiled for the dtype, not the fused one that dispatches
    assert prepared and all(call.kernel is not kernel for call in prepared for kernel in (
        _avg_pool.forward, _avg_pool.forward_plane, _max_pool.forward, _max_pool.forward_plane,
        _max_pool.forward_by_rows))
    # and holds its window tables as its kernel module's memoryviews, not arrays to ask again
    assert all(not (isinstance(value, np.ndarray) and value.ndim == 2)
               for call in prepared for value in call.arguments)
    x = x.astype(np.float32)
    # the same shape in another layout, dtype or byte order is not served the prepared call
    for other in (to_channels_last(x, nd), x.astype(np.float64), x.astype(">f4"),
                  x.astype(np.float16), x[..., ::-1]):
        result = function(other, **kwargs)
        assert result.dtype == other.dtype.newbyteorder("=")
        np.testing.assert_allclose(result, expected(np.ascontiguousarray(other, np.float64),
                                                    **kwargs), rtol=2e-3, atol=2e-3)
    # arguments are still checked on every call
    with pytest.raises(TypeError, match="num_threads"):
        function(x, **kwargs, num_threads=True)
    with pytest.raises(TypeError, match="ceil_mode"):
        function(x, **{**kwargs, "ceil_mode": 1})


@pytest.mark.parametrize("name, kwargs", PREPARED_CALLS)
@pytest.mark.usefixtures("none_kept")
def test_repeated_calls_into_out_take_the_lean_path_and_check_out(name, kwargs, served):
    nd = int(name[-2])
    x = np.random.default_rng(7).standard_normal((2, 3) + (6, 7, 9)[3 - nd:])
    function = getattr(fastpool, name)
    expected = function(x, **kwargs)  # prepares the call
    served.clear()
    out = np.full_like(expected, np.nan)
    for threads in (None, 2):
        assert function(x, **kwargs, out=out, num_threads=threads) is out
        np.testing.assert_array_equal(out, expected)
    assert served == [True, True]
    # an out that is not exactly the array the call writes is refused as on the full path
    bad = [(np.empty(expected.shape[:-1] + (expected.shape[-1] + 1,)), ValueError, "shape"),
           (expected.astype(np.float32), TypeError, "dtype"),
           (np.asfortranarray(np.empty_like(expected)), ValueError, "C-contiguous"),
           (np.empty_like(expected).tolist(), TypeError, "ndarray")]
    read_only = np.empty_like(expected)
    read_only.flags.writeable = False
    bad.append((read_only, ValueError, "read-only"))
    shared = np.empty(x.size + expected.size)  # an input and an out sharing an element
    y = shared[:x.size].reshape(x.shape)
    y[...] = x
    bad.append((shared[x.size - 1:][:expected.size].reshape(expected.shape), ValueError,
                "overlaps"))
    for wrong, error, message in bad:
        with pytest.raises(error, match=message):
            function(y, **kwargs, out=wrong)
    assert served.count(True) == 2


@pytest.mark.parametrize("shape", [
    (3, 6, 9),  # unbatched
    (1, 1, 4, 9),  # (unit dimensions, whose strides NumPy may leave as they come)
    (4, 8, 280, 280),  # an output from the output cache
])
@pytest.mark.usefixtures("none_kept")
def test_lean_path_takes_any_plain_array_and_makes_new_arrays(shape, served):
    rng = np.random.default_rng(3)
    # read-only, and not aligned to its element size (both kept by the kernel's view of it)
    buffer = np.empty(math.prod(shape) * 4 + 1, np.uint8)
    data = buffer[1:].view(np.float32).reshape(shape)
    x = data.view()
    x.flags.writeable = False
    results = []
    for seed in range(3):  # the first call prepares, the others reuse it on new data
        data[...] = rng.standard_normal(shape)
        assert not x.flags.writeable and not x.flags.aligned
        for name, kwargs in [("max_pool2d", dict(kernel_size=2, return_indices=True)),
                             ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1))]:
            result = getattr(fastpool, name)(x, **kwargs)
            want = getattr(reference, name)(np.array(x), **kwargs)
            for a, b in zip(result if isinstance(result, tuple) else [result],
                            want if isinstance(want, tuple) else [want]):
                assert type(a) is np.ndarray and a.shape == b.shape and a.dtype == b.dtype
                assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
                assert not np.may_share_memory(a, x)
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
                results.append(a)
    assert served == [False, False] + [True] * 4
    for i, a in enumerate(results):  # each its own memory, held while it is in use
        assert not any(np.may_share_memory(a, b) for b in results[i + 1:])


@pytest.mark.usefixtures("none_kept")
def test_a_kept_call_serves_only_its_own_signature(served):
    """Kept calls are found by a hash of their signature; one found under another's hash (two
    signatures whose hashes collide) is not served."""
    x = np.random.default_rng(5).standard_normal((2, 3, 8, 8))
    # signatures that differ in dtype, shape, strides (of a unit dimension) or arguments
    unit = np.zeros((2, 1, 8, 8))[:, ::1]
    unit_strided = np.lib.stride_tricks.as_strided(unit, strides=(512, 8, 64, 8))
    assert unit_strided.flags.c_contiguous and unit_strided.strides != unit.strides
    calls = [(x, 2), (x.astype(np.float32), 2), (x[:1], 2), (x, 3), (unit, 2),
             (unit_strided, 2)]
    for array, size in calls + calls:
        fastpool.max_pool2d(array, size)
    assert served == [False] * len(calls) + [True] * len(calls)
    keys = list(_prepared._KEPT)
    assert len(keys) == len(calls)
    kept = list(_prepared._KEPT.values())
    for key, call in zip(keys, kept[1:] + kept[:1]):  # each call under another's key
        _prepared._KEPT[key] = call
    served.clear()
    for array, size in calls:
        np.testing.assert_array_equal(fastpool.max_pool2d(array, size),
                                      reference.max_pool2d(array, size))
    assert served == [False] * len(calls)


@pytest.mark.usefixtures("none_kept")
def test_a_kept_calls_views_export_the_arrays_memory_in_the_kernels_shape():
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)
    fastpool.max_pool2d(x, 2)
    (call,) = _prepared._KEPT.values()
    layout = call.given[0]
    read_only = x.copy()
    read_only.flags.writeable = False
    for array in (x, read_only):
        view = memoryview(layout.view(array))
        assert view.shape == (6, 1, 4, 6) and view.format == memoryview(x).format
        assert view.c_contiguous and view.readonly == (array is read_only)
        as_array = np.asarray(view)
        assert np.shares_memory(as_array, array)
        np.testing.assert_array_equal(as_array, array.reshape(6, 1, 4, 6))
    ctypes = pytest.importorskip("ctypes")
    (ctypes.c_char * x.nbytes).from_buffer(layout.view(x))  # (asks for a writable buffer)
    with pytest.raises((BufferError, TypeError), match="read-only|not writable"):
        (ctypes.c_char * x.nbytes).from_buffer(layout.view(read_only))


KEPT_GRADIENTS = [  # backward calls (and forward with indices) that repeats serve lean
    ("avg_pool2d", dict(kernel_size=2)),  # (disjoint windows)
    ("avg_pool2d", dict(kernel_size=3, stride=1, padding=1)),  # (a plane at a time)
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool1d", dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=2)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool3d", dict(kernel_size=2, stride=1)),
]


@pytest.mark.parametrize("name, kwargs", KEPT_GRADIENTS)
@pytest.mark.usefixtures("none_kept")
def test_repeated_backward_and_index_calls_take_the_lean_path_and_give_the_same_results(
        name, kwargs, served):
    nd = int(name[-2])
    shape = (2, 3) + (6, 7, 9)[3 - nd:]
    forward = getattr(fastpool, name)
    backward, expected = (getattr(fastpool, name + "_backward"),
                          getattr(reference, name + "_backward"))
    index_kinds = [True, "compact"] if "max" in name else [None]
    for seed in range(3):  # the first call of each kind prepares, the others reuse it
        if seed == 1:
            served.clear()
        rng = np.random.default_rng(seed)
        x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32)  # no ties
        for kind in index_kinds:
            if kind is None:
                y, arguments = forward(x, **kwargs), (x.shape,)
            else:
                y, indices = forward(x, **kwargs, return_indices=kind)
                want_y, want_indices = getattr(reference, name)(x, **kwargs,
                                                                return_indices=True)
                np.testing.assert_array_equal(y, want_y)
                if kind is True:
                    np.testing.assert_array_equal(indices, want_indices)
                arguments = (indices, x.shape)
            g = rng.standard_normal(y.shape).astype(np.float32)
            want = expected(g, *arguments, **kwargs)
            for threads in (None, 2):
                np.testing.assert_allclose(backward(g, *arguments, **kwargs,
                                                    num_threads=threads), want, rtol=1e-6,
                                           atol=1e-6)
    assert served and all(served)
    if "max" in name:  # an invalid index is still found, and named, on a repeat
        indices = indices.copy()
        indices.reshape(-1)[-1] = 0 if kind is True else 255
        with pytest.raises(ValueError, match=r"does not name an element of its pooling window"):
            backward(g, indices, x.shape, **kwargs)
        assert served[-1] is False  # (the kept call found it; the full path said where)
        out = np.full(x.shape, 7.0, np.float32)
        with pytest.raises(ValueError, match=r"does not name an element"):
            backward(g, indices, x.shape, **kwargs, out=out)
        assert (out == 7.0).all()


@pytest.mark.parametrize("name, output_size", [
    ("adaptive_avg_pool2d", 1), ("adaptive_avg_pool2d", (3, None)),
    ("adaptive_avg_pool1d", 4), ("adaptive_max_pool2d", (3, 4)), ("adaptive_max_pool2d", 1),
])
@pytest.mark.usefixtures("none_kept")
def test_repeated_adaptive_calls_take_the_lean_path_and_give_the_same_results(
        name, output_size, served):
    nd = int(name[-2])
    shape = (2, 3) + (7, 9)[2 - nd:]
    forward, expected = getattr(fastpool, name), getattr(reference, name)
    backward = getattr(fastpool, name + "_backward")
    expected_backward = getattr(reference, name + "_backward")
    for seed in range(3):  # the first call of each kind prepares, the others reuse it
        if seed == 1:
            served.clear()
        rng = np.random.default_rng(seed)
        x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32)  # no ties
        if "max" in name:
            y, indices = forward(x, output_size, return_indices=True)
            want_y, want_indices = expected(x, output_size, return_indices=True)
            np.testing.assert_array_equal(indices, want_indices)
            np.testing.assert_array_equal(forward(x, output_size), want_y)
            arguments = (indices, x.shape)
        else:
            y, want_y, arguments = forward(x, output_size), expected(x, output_size), (x.shape,)
        np.testing.assert_allclose(y, want_y, rtol=1e-6)
        g = rng.standard_normal(y.shape).astype(np.float32)
        np.testing.assert_allclose(backward(g, *arguments), expected_backward(g, *arguments),
                                   rtol=1e-6, atol=1e-6)
    assert served and all(served)
    wrong = float(output_size) if type(output_size) is int else \
        tuple(None if v is None else float(v) for v in output_size)
    with pytest.raises(TypeError, match="output_size"):
        forward(x, wrong)


DISJOINT = [  # windows that share no input: backward writes each input once
    ("max_pool2d", dict(kernel_size=2)),
    ("max_pool2d", dict(kernel_size=2, stride=3, padding=1)),  # gaps, clipped edges
    ("max_pool2d", dict(kernel_size=(1, 3), stride=(2, 3), ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=2, stride=3, dilation=2)),  # inputs between taps
    ("max_pool1d", dict(kernel_size=3, stride=4, padding=1)),
    ("max_pool3d", dict(kernel_size=2, padding=1)),
    ("adaptive_max_pool2d", dict(output_size=(3, 4))),
    ("avg_pool2d", dict(kernel_size=2)),
    ("avg_pool2d", dict(kernel_size=3, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=(2, 1), stride=(2, 3), divisor_override=3)),
    ("avg_pool1d", dict(kernel_size=2, stride=3, padding=1)),
    ("avg_pool3d", dict(kernel_size=2, padding=(0, 1, 1))),
    ("adaptive_avg_pool2d", dict(output_size=(3, 4))),
]


def test_kept_calls_are_bounded(none_kept):
    for width in range(2, _prepared.KEPT_CALLS + 3):  # a signature per width
        row = np.arange(width, dtype=np.float32).reshape(1, 1, width)
        np.testing.assert_array_equal(fastpool.max_pool1d(row, 2, stride=1), row[..., 1:])
        assert 1 <= len(_prepared._KEPT) <= _prepared.KEPT_CALLS
    assert len(_prepared._KEPT) == 1  # (the last call found them all kept, dropped them)
    np.testing.assert_array_equal(fastpool.max_pool1d(row, 2, stride=1), row[..., 1:])


@pytest.fixture
def plans_afresh():
    """Plans made anew in the test and after it (they are cached, with what the test set)."""
    _arguments.pool_plan.cache_clear()
    _arguments.adaptive_plan.cache_clear()
    yield
    _arguments.pool_plan.cache_clear()
    _arguments.adaptive_plan.cache_clear()


@pytest.mark.parametrize("by_planes", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", DISJOINT)
def test_backward_of_disjoint_windows_writes_each_input_once_with_the_scatters_bits(
        name, kwargs, dtype, by_planes, monkeypatch, plans_afresh):
    """``by_planes``: max pooling's flat indices go to ``backward_owned`` (a plane at a time,
    on planes this small), else to ``backward_disjoint`` (as on larger planes)."""
    nd = int(name[-2])
    x, bits = _data((2, 3) + (10, 9, 12)[3 - nd:], dtype)
    kernels = _max_pool if "max" in name else _avg_pool
    calls = []
    _prepared.forget()  # (a kept call holds the kernel it was prepared with)
    if not by_planes:
        monkeypatch.setattr(_arguments, "OWNED_PLANE_LIMIT", 0)
    for kernel in ("backward_disjoint", "backward_owned"):
        if hasattr(kernels, kernel):
            monkeypatch.setattr(kernels, kernel, lambda *a, run=getattr(kernels, kernel),
                                name=kernel: calls.append(name) or run(*a))
    forward, expected = getattr(fastpool, name), getattr(reference, name + "_backward")
    backward = getattr(fastpool, name + "_backward")
    if "max" in name:
        _, flat = forward(x, **kwargs, return_indices=True)
        _, compact = forward(x, **kwargs, return_indices="compact")
        runs = [(index, x.shape) for index in (flat, flat.astype(np.int32), compact)]
    else:
        runs = [(x.shape,)]
    g, _ = _data(forward(x, **kwargs).shape, dtype)  # NaN payloads and signed zeros
    if name.startswith("adaptive"):
        kwargs = {}  # (the gradient's shape gives the output size)
    for arguments in runs:
        want = expected(g, *arguments, **kwargs).view(bits)
        out = np.full(x.shape, np.nan, dtype)  # no input may be left unwritten
        backward(g, *arguments, **kwargs, out=out)
        np.testing.assert_array_equal(out.view(bits), want)
        np.testing.assert_array_equal(backward(g, *arguments, **kwargs).view(bits), want)
    owned = 4 if by_planes and "max" in name else 0  # (the flat indices, int64 and int32)
    assert calls.count("backward_owned") == owned
    assert calls.count("backward_disjoint") == 2 * len(runs) - owned


def _kernel_set(setting):
    try:
        return _kernels.load(setting)
    except ImportError as error:
        pytest.skip(str(error))


def _kernel_variants():
    """The baseline and the AVX2 kernel modules (skips where this build or CPU has no AVX2)."""
    variants = [_kernel_set(setting)[1:] for setting in ("baseline", "avx2")]
    assert not set(variants[0]) & set(variants[1])
    return variants


def _use_kernels(monkeypatch, modules):
    for name, module in zip(_kernels.MODULES, modules):
        monkeypatch.setattr(functional, name, module)
    _prepared.forget()  # (prepared calls hold a module's kernels)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_the_avx2_kernels_give_the_baseline_kernels_bits(kind, nd, monkeypatch):
    """Forward (with and without indices) and backward over the shared parameter generator,
    on inputs widened so that the vectorised loops and their remainders both run, in C order
    and channels-last, with ties and signed zeros, and NaN payloads where max selects (which
    NaN a sum of two carries depends on the compiler's operand order, in either build)."""
    variants = _kernel_variants()
    forward = getattr(fastpool, f"{kind}_pool{nd}d")
    backward = getattr(fastpool, f"{kind}_pool{nd}d_backward")
    for number, case in enumerate(pool_cases(nd, kind, samples=60)):
        dtype = (np.float32, np.float64)[number % 2]
        shape = case.shape[:-1] + (case.shape[-1] + 21 + number % 9,)
        x, _ = _data(shape, dtype)
        if kind == "avg":
            x = np.nan_to_num(x, nan=0.25)
        if number % 5 == 0 and len(shape) == nd + 2:  # channels-last, C = 3
            x = to_channels_last(x[:, :1].repeat(3, 1), nd)
        g = None
        results = []
        for modules in variants:
            _use_kernels(monkeypatch, modules)
            if kind == "max":
                y, indices = forward(x, **case.kwargs, return_indices=True)
                outputs = [forward(x, **case.kwargs), y, indices]
                gradient = (indices, x.shape)
            else:
                outputs = [forward(x, **case.kwargs)]
                gradient = (x.shape,)
            if g is None:
                g = np.nan_to_num(_data(outputs[0].shape, dtype)[0], nan=-0.75)
            outputs.append(backward(g, *gradient, **case.kwargs))
            results.append([np.ascontiguousarray(a).view(np.uint8) for a in outputs])
        for baseline, avx2 in zip(*results):
            np.testing.assert_array_equal(avx2, baseline, err_msg=case.describe(forward.__name__))
    _prepared.forget()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_avx2_global_kernels_give_the_baseline_kernels_bits(dtype, monkeypatch):
    """Global means (of C-order and channels-last arrays), maxima with indices and their
    gradients, on planes of every size up to three lanes' worth and past (the last lanes'
    remainder), and large enough for chunks."""
    results = []
    for modules in _kernel_variants():
        _use_kernels(monkeypatch, modules)
        outputs = []
        for size in list(range(1, 27)) + [49, 67, 1000, 40000]:
            x, _ = _data((3, 5, size), dtype)
            y, indices = fastpool.adaptive_max_pool1d(x, 1, return_indices=True)
            x = np.nan_to_num(x, nan=0.25)
            mean = fastpool.adaptive_avg_pool1d(x, 1)
            np.testing.assert_allclose(mean[..., 0], x.mean(axis=-1), rtol=1e-6, atol=1e-6)
            x_last = to_channels_last(x, 1)
            outputs += [y, indices, mean, fastpool.adaptive_avg_pool1d_backward(mean, x.shape),
                        fastpool.adaptive_avg_pool1d(x_last, 1)]
        results.append([np.ascontiguousarray(a).view(np.uint8) for a in outputs])
    for baseline, avx2 in zip(*results):
        np.testing.assert_array_equal(avx2, baseline)
    _prepared.forget()


def test_the_simd_setting_chooses_the_kernels():
    built = importlib.util.find_spec("fastpool._avx2._max_pool") is not None
    if sys.platform.startswith("linux") and os.path.exists("/proc/cpuinfo"):
        # the kernel's own reading of CPUID and of the state it saves
        flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo")
                      if line.startswith("flags")), [])
        assert _build_info.cpu_has_avx2() == ("avx2" in flags)
    if platform.machine().lower() in ("x86_64", "amd64") and sys.platform != "win32" \
            and os.environ.get("FASTPOOL_AVX2") != "0":
        assert built, "setup.py builds the AVX2 variant on x86-64"
    setting = os.environ.get("FASTPOOL_SIMD", "auto")
    chosen = "avx2" if setting != "baseline" and built and _build_info.cpu_has_avx2() \
        else "baseline"
    assert _kernels.SIMD == chosen
    assert fastpool.show_config(file=io.StringIO())["simd"] == chosen
    package = "fastpool._avx2" if chosen == "avx2" else "fastpool"
    assert [getattr(functional, name).__name__ for name in _kernels.MODULES] == [
        f"{package}.{name}" for name in _kernels.MODULES]
    assert _kernel_set("baseline")[2].__name__ == "fastpool._max_pool"
    with pytest.raises(ValueError, match="FASTPOOL_SIMD='sse9'"):
        _kernels.load("sse9")
    if not (built and _build_info.cpu_has_avx2()):
        with pytest.raises(ImportError, match="FASTPOOL_SIMD='avx2', but"):
            _kernels.load("avx2")
    code = "import fastpool; print(fastpool.functional._max_pool.__name__)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "FASTPOOL_SIMD": "baseline"}, check=True)
    assert run.stdout.strip() == "fastpool._max_pool"
