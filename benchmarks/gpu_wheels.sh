#!/usr/bin/env bash
# Wheels of decord and PyAV for a GPU node that has the other packages of
# benchmarks/gpu_checks.sh but no package index (Python 3.12 there), into .whl/ (about 50 MB).
# Run from the repository root on a machine where pip can reach the registry.
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux2010_x86_64 -d .whl decord==0.6.0 av==18.1.0
du -sh .whl
