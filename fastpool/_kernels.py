"""The pooling kernel modules this process runs, chosen once, at import.

x86-64 builds carry the average, max and global pooling kernels twice: the baseline modules
(``fastpool._avg_pool``, ``fastpool._max_pool``, ``fastpool._global_pool``, plain x86-64, so
they run on any such CPU) and the same C compiled for AVX2 (``fastpool._avx2``), which the
overlapping-window cases and global means run measurably faster (README, Speed). Both give
the same bits. ``FASTPOOL_SIMD`` (read at import) chooses: ``auto`` (the default: AVX2 where
this build has it and the CPU runs it), ``baseline``, or ``avx2`` (an ImportError where the
build or the CPU has none). ``SIMD`` names the choice.
"""

import importlib
import importlib.util
import os

from . import _build_info

SIMD_SETTINGS = ("auto", "baseline", "avx2")


MODULES = ("_avg_pool", "_max_pool", "_global_pool")


def load(setting):
    """(name, average module, max module, global module) for a FASTPOOL_SIMD ``setting``."""
    if setting not in SIMD_SETTINGS:
        raise ValueError(f"FASTPOOL_SIMD={setting!r}: expected one of {', '.join(SIMD_SETTINGS)}")
    package = __package__
    if setting != "baseline":
        built = importlib.util.find_spec(f"{__package__}._avx2._max_pool") is not None
        if built and _build_info.cpu_has_avx2():
            setting, package = "avx2", f"{__package__}._avx2"
        elif setting == "avx2":
            why = "this build has no AVX2 kernels" if not built else "this CPU does not run AVX2"
            raise ImportError(f"FASTPOOL_SIMD='avx2', but {why}")
        else:
            setting = "baseline"
    return (setting, *[importlib.import_module(f"{package}.{name}") for name in MODULES])


SIMD, _avg_pool, _max_pool, _global_pool = load(os.environ.get("FASTPOOL_SIMD", "auto"))
