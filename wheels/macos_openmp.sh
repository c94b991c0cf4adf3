#!/usr/bin/env bash
# cibuildwheel's before-all on macOS: install an LLVM OpenMP runtime built for old deployment
# targets (conda-forge's llvm-openmp: macOS 10.13 on x86_64, 11.0 on arm64) into
# $OPENMP_PREFIX, for the runner's own architecture. Homebrew's libomp is built for the
# runner's macOS version and would make wheels that fail to load on older systems.
set -euo pipefail
prefix="${OPENMP_PREFIX:-$HOME/openmp}"
case "$(uname -m)" in
    arm64) platform=osx-arm64 ;;
    x86_64) platform=osx-64 ;;
    *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
tools="$(mktemp -d)"
curl -fsSL "https://micro.mamba.pm/api/micromamba/${platform}/latest" | tar -xj -C "$tools" bin/micromamba
"$tools/bin/micromamba" create --yes --prefix "$prefix" --channel conda-forge \
    --platform "$platform" llvm-openmp
ls "$prefix/lib/libomp.dylib" "$prefix/include/omp.h"
