"""Threads: num_threads per call, OMP_NUM_THREADS, threadpoolctl, many Python threads at once."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastpool
from cases import random_array
from fastpool import _arguments


def test_omp_num_threads_is_the_default():
    code = "import fastpool, io; print(fastpool.show_config(file=io.StringIO())['threads'])"
    for value in ("1", "3"):
        env = dict(os.environ, OMP_NUM_THREADS=value)
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True)
        expected = value if fastpool.show_config(file=open(os.devnull, "w"))["openmp"] else "1"
        assert result.stdout.strip() == expected


def test_threadpoolctl_limits_are_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not fastpool.show_config(file=open(os.devnull, "w"))["openmp"]:
        pytest.skip("serial build")
    from fastpool import _build_info
    before = _build_info.max_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _build_info.max_threads() == 1
    assert _build_info.max_threads() == before


def test_many_python_threads_at_once():
    """Calls from a thread pool (the GIL is released in the kernels) give the serial results."""
    inputs = [random_array((4, 8, 61, 47), np.float32, seed=i) for i in range(12)]

    def work(x):
        y, indices = fastpool.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
        return (fastpool.avg_pool2d(x, 3, stride=1, padding=1),
                fastpool.max_pool2d_backward(y, indices, x.shape, 3, 2, 1),
                fastpool.adaptive_avg_pool2d(x, 5))

    serial = [work(x) for x in inputs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = list(pool.map(work, inputs * 3))
    for i, results in enumerate(concurrent):
        for got, expected in zip(results, serial[i % len(inputs)]):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("function, args", [
    (fastpool.avg_pool2d, (3, 1, 1)), (fastpool.max_pool2d, (2,)),
    (fastpool.adaptive_avg_pool2d, (1,)), (fastpool.adaptive_max_pool2d, (1,)),
])
def test_bit_identical_for_any_thread_count(function, args):
    x = random_array((3, 5, 211, 199), np.float32, seed=4)
    one = function(x, *args, num_threads=1)
    for threads in (2, 4, 7):
        np.testing.assert_array_equal(function(x, *args, num_threads=threads), one)


KERNEL_PATHS = [  # one of each kernel's configurations: each runs one-thread calls serially
    ("avg_pool2d", dict(kernel_size=3, stride=1, padding=1)),  # forward_plane, backward_plane
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=2)),  # backward_disjoint
    ("max_pool2d", dict(kernel_size=5, stride=1, padding=2)),  # forward_plane
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),  # forward_plane, strided
    ("max_pool2d", dict(kernel_size=2)),  # backward_disjoint
    ("max_pool3d", dict(kernel_size=(2, 3, 3), stride=(1, 2, 2))),  # forward_by_rows
]


@pytest.mark.parametrize("layout", ["C", "channels-last"])
@pytest.mark.parametrize("name, kwargs", KERNEL_PATHS)
def test_every_kernel_gives_the_same_bits_on_one_thread_and_on_several(name, kwargs, layout):
    nd = int(name[-2])
    x = random_array((4, 8, 75, 71) if nd == 2 else (4, 8, 9, 37, 41), np.float32, seed=5)
    if layout == "channels-last":
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    forward = getattr(fastpool, name)
    backward = getattr(fastpool, name + "_backward")

    def run(threads):
        results = [forward(x, **kwargs, num_threads=threads)]
        if "max" in name:
            for kind in (True, "compact"):
                y, indices = forward(x, **kwargs, return_indices=kind, num_threads=threads)
                results += [y, indices]
                arguments = (indices, x.shape)
                results.append(backward(y, *arguments, **kwargs, num_threads=threads))
                out = np.empty_like(x)  # (indices checked before the scatter)
                results.append(backward(y, *arguments, **kwargs, out=out, num_threads=threads))
        else:
            results.append(backward(results[0], x.shape, **kwargs, num_threads=threads))
        return results

    one = run(1)
    assert min(a.size for a in one) >= 1 << 15  # (smaller work runs on one thread anyway)
    for threads in (2, 3):
        for got, expected in zip(run(threads), one):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("planes", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("rows", [1, 2, 5, 13, 56, 1024])
def test_bands_give_each_thread_as_many_tasks_where_the_rows_allow(planes, rows, threads):
    """Tasks are handed out in equal shares: few planes are cut into bands whose count, over
    all planes, the thread count divides, unless every row is already a band of its own."""
    size = _arguments.band_rows(planes, rows, threads)
    bands = -(-rows // size)  # (the last band may be shorter)
    assert 1 <= size <= rows
    if planes < 4 * threads:
        assert planes * bands % threads == 0 or size == 1
        assert bands > 1 or rows == 1
    else:
        assert size == rows
