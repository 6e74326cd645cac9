#!/usr/bin/env bash
# Wheels of the packages benchmarks/gpu_checks.sh needs that the lent GPU machines lack
# (Python 3.12 there): decord and PyAV, into .whl/ (about 50 MB; the device tool carries
# at most 64 MiB with the working tree). Run here, from the repo root, where pip can reach
# the registry.
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux2010_x86_64 -d .whl decord==0.6.0 av==18.1.0
du -sh .whl
