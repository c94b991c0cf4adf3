"""The benchmark users run (``python -m fastpool.bench``): it runs, and reports what it says."""

import math

import numpy as np
import pytest

from fastpool import bench


def test_quick_benchmark_reports_every_case_with_its_roof(capsys):
    bench.main(["--quick", "--no-reference", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("float32 unless marked; 1 threads")
    assert lines[1].split() == ["case", "shape", "fastpool", "out=", "%", "roof", "NumPy",
                                "PyTorch", "oneDNN"]
    for case, line in zip(bench.QUICK_CASES, lines[2:]):
        assert line.startswith(case.label)
        new, reused, roof = line[62:].split()[:3]
        assert new.endswith("ms") and reused.endswith("ms") and roof.endswith("%")
        assert float(new[:-2]) > 0 and float(reused[:-2]) > 0 and float(roof[:-1]) > 0


def test_rows_time_new_and_reused_outputs_against_the_roof():
    case = bench.QUICK_CASES[-1]._replace(shape=(2, 8, 16, 16))  # a backward case
    rows = bench._run([case], repeats=2, reference_repeats=1, threads=1)
    row = rows[0]
    assert row.case is case
    assert all(t > 0 for t in (row.seconds, row.reused, row.roof, row.reference))


def test_plot_draws_the_comparison(tmp_path):
    pytest.importorskip("matplotlib")
    case = bench.QUICK_CASES[0]._replace(shape=(1, 4, 16, 16))
    rows = bench._run([case], repeats=1, reference_repeats=0, threads=1)
    path = tmp_path / "bench.png"
    bench._plot(rows, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_thread_scaling_reports_each_large_forward_case_once(capsys):
    large = bench.QUICK_CASES[1]._replace(shape=(1, 1, 2048, 2048))  # 4 Mi elements: timed
    small = large._replace(label="small", shape=(1, 1, 64, 64))  # skipped, as backward is
    bench._scaling([large, small, bench.QUICK_CASES[-1]], threads=2, repeats=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(large.label)
    assert float(lines[0].split("threads:")[1].rstrip("x")) > 0


def test_per_call_times_are_reported_for_each_call(capsys):
    bench._overhead(repeats=200)
    lines = capsys.readouterr().out.splitlines()
    names = [line.split(": ")[0].removeprefix("per-call time on (1, 1, 3, 3), ") for line in lines]
    assert names[:5] == ["fastpool avg_pool2d", "fastpool max_pool2d",
                         "fastpool max_pool2d, indices", "fastpool avg_pool2d_backward",
                         "fastpool max_pool2d_backward"]
    assert len(lines) in (5, 10)  # (PyTorch's five where it is installed)
    assert all(float(line.split(": ")[1].removesuffix(" us")) > 0 for line in lines)


def test_memory_report_finds_no_temporary_the_size_of_an_array(capsys):
    cases = [c._replace(shape=(min(c.shape[0], 2),) + c.shape[1:]) for c in bench.CASES]
    rows = bench._memory(cases)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["case", "outputs", "MB", "extra", "KB", "out=", "extra", "KB"]
    assert len(rows) == len(lines) - 2 == len(cases)
    for (case, out_bytes, extra, reused_extra), line in zip(rows, lines[2:]):
        assert line.startswith(case.title) and out_bytes > 0
        # scratch rows and tables only: a copy of the input (forward) or of the input-shaped
        # gradient (backward) would take eight times this
        bound = math.prod(case.shape) * np.dtype(case.dtype).itemsize // 8
        assert 0 <= extra < bound and 0 <= reused_extra < bound, case.label
