"""Build and runtime configuration: ``fastpool.show_config()``."""

import platform

import numpy as np

from . import _build_info, _kernels


def show_config(file=None):
    """Print fastpool's version, whether OpenMP is built in, the threads it will use and the
    instruction set of its kernels.

    Parameters
    ----------
    file : file-like, optional
        Where to print; defaults to ``sys.stdout``.

    Returns
    -------
    dict
        The reported values: ``version``, ``openmp``, ``debug_build`` (bounds-checked build),
        ``threads`` (the default ``num_threads``), ``simd`` (the kernels' instruction set:
        ``avx2`` or ``baseline``, see FASTPOOL_SIMD in README), ``numpy``, ``python``.

    Examples
    --------
    >>> import io, fastpool
    >>> config = fastpool.show_config(file=io.StringIO())
    >>> sorted(config)
    ['debug_build', 'numpy', 'openmp', 'python', 'simd', 'threads', 'version']
    """
    from . import __version__

    config = {
        "version": __version__,
        "openmp": _build_info.openmp(),
        "debug_build": _build_info.debug(),
        "threads": _build_info.max_threads(),
        "simd": _kernels.SIMD,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    width = max(map(len, config))
    for key, value in config.items():
        print(f"{key:<{width}} : {value}", file=file)
    return config
