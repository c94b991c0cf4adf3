"""Build fastpool's Cython kernels.

Everything about compiling lives here, once:
- the extension list (one module per kernel family, the build facts, and the prepared-call
  cache that serves repeated calls);
- the Cython compiler directives (``FASTPOOL_CYTHON_DEBUG=1`` turns bounds, wraparound and
  initialisation checks back on, for the debug build that CI tests, compiled -Og);
- the OpenMP flags, chosen per compiler and proved by compiling and linking a test program.
  If no flag works the build goes on serially and says so; ``FASTPOOL_OPENMP=0`` forces a
  serial build. ``fastpool.show_config()`` reports which one you got.
- the AVX2 variant: on x86-64 (GCC or Clang), the pooling kernels are compiled a second time
  with ``-mavx2`` into ``fastpool._avx2``, from the same generated C, and ``fastpool._kernels``
  picks that build at import time where the CPU has AVX2 (FASTPOOL_SIMD=baseline declines it).
  The baseline modules stay plain x86-64, so the wheel runs on any x86-64 CPU.
  ``FASTPOOL_AVX2=0`` builds without the variant.
- the generated C, reused while the sources, Cython, NumPy and the directives are the same,
  and a kept copy of each compiled module beside it, reused while that C, the compiler and the
  flags are the same (under build/cython, or ``FASTPOOL_MODULE_CACHE``, a directory laid out
  the same way; pip builds an editable install afresh each time).
"""

import glob
import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile

import Cython
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTPOOL_CYTHON_DEBUG", "0") == "1"
MODULE_CACHE = os.environ.get("FASTPOOL_MODULE_CACHE")
CYTHON_DIR = os.path.join("build", "cython")  # generated C, and the modules kept beside it
WANT_OPENMP = os.environ.get("FASTPOOL_OPENMP", "1") != "0"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "freethreading_compatible": True,
}

# (_prepared holds no kernel: it is compiled for the speed of the per-call path)
MODULES = ["_build_info", "_avg_pool", "_max_pool", "_global_pool", "_bandwidth", "_prepared"]
# (those that use NumPy's C API: built against the NumPy in the build environment, >= 2.0,
# whose C API serves NumPy >= 1.23 at run time, as NumPy's headers target by default)
NUMPY_API_MODULES = ["_prepared"]
# The compute-bound kernels, whose overlapping windows run measurably faster as AVX2 code
# (README, Speed), and global pooling (a 7x7 plane's mean 5.5 -> 4.6 ns); the bandwidth probe
# is memory-bound already.
AVX2_MODULES = ["_avg_pool", "_max_pool", "_global_pool"]
# (no contraction into FMA: -mavx2 alone does not enable it, so the bits stay the baseline's)
AVX2_FLAGS = ["-mavx2"]
WANT_AVX2 = (os.environ.get("FASTPOOL_AVX2", "1") != "0"
             and sysconfig.get_platform().endswith(("x86_64", "amd64"))
             and not sysconfig.get_platform().startswith("win"))  # (MSVC: no variant yet)

OPENMP_TEST_PROGRAM = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return omp_get_max_threads() > 0 && n > 0 ? 0 : 1;
}
"""


def openmp_candidates(compiler):
    """(compile flags, link flags) to try, in order, for this compiler."""
    if compiler.compiler_type == "msvc":
        return [(["/openmp"], [])]
    if sys.platform == "darwin":
        # Apple Clang needs the preprocessor route and an explicit libomp; LLVM clang or GCC
        # from a package manager take the plain flag.
        return [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    return [(["-fopenmp"], ["-fopenmp"])]


def compile_cost(ext):
    """A rough measure of how long ``ext`` takes to compile: its generated C's size, more
    with the AVX2 flags (which vectorise more loops)."""
    size = sum(os.path.getsize(source) for source in ext.sources)
    return size * (2 if AVX2_FLAGS[0] in ext.extra_compile_args else 1)


def digest(paths, facts):
    """A digest of the files ``paths`` (their contents, in order) and of ``facts``."""
    result = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            result.update(f.read())
    result.update(repr(facts).encode())
    return result.hexdigest()


def compile_key(compiler, ext):
    """What a compiled module depends on: its generated C, and the compiler and flags that
    compile and link it (a digest)."""
    return digest(ext.sources, (ext.name, ext.define_macros, ext.extra_compile_args,
                                ext.extra_link_args, compiler.compiler_type,
                                getattr(compiler, "compiler_so", None),
                                getattr(compiler, "linker_so", None), sys.version,
                                # (NumPy's headers, the only include directory, by version:
                                # pip's build environment is a new temporary directory each time)
                                numpy.__version__ if ext.include_dirs else None,
                                sysconfig.get_config_var("EXT_SUFFIX")))


def copy_module(source, target):
    """Copy a compiled module (or generated C) to ``target`` as a new file (os.replace): a
    process that has the old one loaded keeps its own, where writing into it would change code
    under it."""
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    shutil.copyfile(source, target + ".part")
    os.replace(target + ".part", target)


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:  # compile the kernel modules side by side
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        flags = self.find_openmp_flags() if WANT_OPENMP else None
        if flags is None:
            why = "FASTPOOL_OPENMP=0" if not WANT_OPENMP else "the compiler cannot build an OpenMP program"
            print(f"fastpool: building WITHOUT OpenMP ({why}); kernels will run on one thread",
                  file=sys.stderr)
            compile_flags, link_flags = [], []
        else:
            compile_flags, link_flags = flags
        if self.compiler.compiler_type != "msvc":
            # No debug information in a release build (Python's CFLAGS ask for -g): the
            # max-pool module's object is 8x smaller and compiles in 40% less time. The
            # debug build is for checks and debuggers, not speed: -Og (a clean build on 2
            # cores 209 -> 71 s; its test run as long as under -O3).
            compile_flags = compile_flags + (["-Og"] if DEBUG else ["-g0"])
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args) + compile_flags
            ext.extra_link_args = list(ext.extra_link_args) + link_flags
        # The longest compiles first, so that the compilers running side by side finish
        # nearer together (in module order the AVX2 max-pool module, the longest, started
        # last: a clean compile of the release build on 2 cores took 183 s, now 167 s).
        self.extensions.sort(key=compile_cost, reverse=True)
        super().build_extensions()

    def build_extension(self, ext):
        # pip builds an editable install in a new temporary directory each time, so every
        # `pip install -e .` compiled every module again (~3 min on 2 cores, twice in CI:
        # README's demo and test commands). A module is kept beside its generated C with the
        # digest of what it was compiled from, and copied where that has not changed.
        target = self.get_ext_fullpath(ext.name)
        kept = os.path.splitext(ext.sources[0])[0] + os.path.splitext(target)[1]
        if MODULE_CACHE:  # (the same place under it as under build/cython)
            kept = os.path.join(MODULE_CACHE, os.path.relpath(kept, CYTHON_DIR))
        key = compile_key(self.compiler, ext)
        if os.path.exists(kept) and os.path.exists(kept + ".key"):
            with open(kept + ".key") as f:
                if f.read() == key:
                    copy_module(kept, target)
                    # (one write: the modules are built side by side, and lines must not mix)
                    sys.stderr.write(f"fastpool: {ext.name}: compiled before, copied\n")
                    return
            os.remove(kept + ".key")  # (until the new module is kept whole)
        super().build_extension(ext)
        copy_module(target, kept)
        with open(kept + ".key", "w") as f:
            f.write(key)

    def find_openmp_flags(self):
        for compile_flags, link_flags in openmp_candidates(self.compiler):
            with tempfile.TemporaryDirectory() as tmp:
                source = os.path.join(tmp, "openmp_test.c")
                with open(source, "w") as f:
                    f.write(OPENMP_TEST_PROGRAM)
                try:
                    objects = self.compiler.compile([source], output_dir=tmp,
                                                    extra_postargs=compile_flags)
                    self.compiler.link_executable(objects, "openmp_test", output_dir=tmp,
                                                  extra_postargs=link_flags)
                except Exception:  # CompileError, LinkError: try the next candidate
                    continue
            return compile_flags, link_flags
        return None


# Generated C goes to a directory per variant, so switching the debug or OpenMP switch never
# reuses objects compiled under the other setting.
variant = ("debug" if DEBUG else "release") + ("-openmp" if WANT_OPENMP else "-serial")


def extension(module, name, **options):
    """Extension ``module`` from fastpool/<name>.pyx."""
    macros = [("FASTPOOL_DEBUG_BUILD", "1" if DEBUG else "0")]
    if name in NUMPY_API_MODULES:
        options["include_dirs"] = [numpy.get_include()]
        macros.append(("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"))
    return Extension(module, [f"fastpool/{name}.pyx"], define_macros=macros, **options)


def cythonized(extensions, build_dir):
    """``extensions`` with their generated C, under build/cython/``build_dir``: Cython's, or
    the C generated before (there, or under ``FASTPOOL_MODULE_CACHE``) from the same sources
    with the same Cython and directives. (Cython goes by timestamps, and in each new build
    environment pip installs it afresh, newer than the C: every `pip install` generated all
    the C again, ~30 s on 2 cores, to the same bytes.)"""
    directory = os.path.join(CYTHON_DIR, build_dir)
    key = digest(sorted(glob.glob("fastpool/*.pyx") + glob.glob("fastpool/*.pxd")),
                 # (NumPy's version: its own .pxd is cimported)
                 (Cython.__version__, numpy.__version__, DIRECTIVES,
                  [ext.name for ext in extensions]))
    generated = [os.path.join(directory, os.path.splitext(ext.sources[0])[0] + ".c")
                 for ext in extensions]
    for place in [CYTHON_DIR] + ([MODULE_CACHE] if MODULE_CACHE else []):
        kept = [os.path.join(place, os.path.relpath(c, CYTHON_DIR)) for c in generated]
        key_file = os.path.join(place, build_dir, "sources.key")
        if all(map(os.path.exists, kept + [key_file])):
            with open(key_file) as f:
                if f.read() == key:
                    for source, target in zip(kept, generated):
                        if source != target:
                            copy_module(source, target)
                    for ext, c in zip(extensions, generated):
                        ext.sources = [c]
                    return extensions
    extensions = cythonize(extensions, compiler_directives=DIRECTIVES, build_dir=directory,
                           nthreads=os.cpu_count() or 1)
    with open(os.path.join(directory, "sources.key"), "w") as f:
        f.write(key)
    return extensions


extensions = cythonized([extension(f"fastpool.{name}", name) for name in MODULES], variant)
if WANT_AVX2:  # generated apart: a Cython module knows its full name
    extensions += cythonized([extension(f"fastpool._avx2.{name}", name,
                                        extra_compile_args=AVX2_FLAGS)
                              for name in AVX2_MODULES], variant + "-avx2")

setup(
    ext_modules=extensions,
    cmdclass={"build_ext": BuildExt},
)
