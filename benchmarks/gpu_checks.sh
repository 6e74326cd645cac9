#!/usr/bin/env bash
# Every GPU check of the project in one run, about 9 minutes on one H100-class GPU with 16 CPU
# cores: the CUDA tests, the extraction throughput (videos/s and the ratio to the decode
# ceiling) and the training loader ratio (docs/benchmarks-extraction.md,
# docs/benchmarks-training.md). Results (JSON, logs) go to the folder given as the first
# argument, else $GPU_RESULTS, else ./gpu_results.
#
# It needs torch, torchvision, torchaudio, transformers, pandas, pytest, decord and PyAV. On a
# GPU node without a package index, make the decord and PyAV wheels on a machine with one
# (bash benchmarks/gpu_wheels.sh, into .whl/), copy .whl/ with the repository, then from the
# repository root:
#     bash benchmarks/gpu_checks.sh [RESULTS_DIR]
# A dry run of the script itself on any machine: SMOKE=1 DEVICE=cpu bash benchmarks/gpu_checks.sh
set -uo pipefail
OUT=${1:-${GPU_RESULTS:-gpu_results}}
mkdir -p "$OUT"
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site:$PYTHONPATH" || { echo "wheel install failed" >&2; exit 1; }
fi
cores=$(nproc)
if [ "$SMOKE" = 1 ]; then
    clips=2; seconds=1; workers=1; batch=32; tvideos=8; tframes=50; tbatch=2; tsteps=4; tworkers=1
    crop=64; w2v=tiny  # the script's plumbing only: small models
else
    clips=64; seconds=8; workers=$((cores > 1 ? cores - 1 : 1)); batch=512; tvideos=256; tframes=500; tbatch=32
    tsteps=60; tworkers=8; crop=224; w2v=base
fi
{
    date -u; nvidia-smi 2>&1 | head -15; echo "cores: $cores"
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
torch.cuda.get_device_name() if torch.cuda.is_available() else '', 'transformers', transformers.__version__)"
    "$PY" -c "import decord, av; print('decord', decord.__version__, 'av', av.__version__)"
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
status=0
run() {  # name, command...: log to $OUT/<name>.log, keep going after a failure
    local name=$1; shift
    echo "== $name: $*"
    local start=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1 || { echo "   FAILED (see $name.log)"; status=1; }
    echo "   $((SECONDS - start)) s"; tail -n 6 "$OUT/$name.log"
}
# 1. The CUDA paths agree with the CPU (skipped, and so passing, without a GPU).
run cuda_tests "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py -rs
# 2. Extraction throughput: the same clips for every setting.
clipdir=$(mktemp -d)
run make_clips "$PY" -m wmmt.synthetic --out "$clipdir" --num-videos "$clips" --seed 0 \
    --min-duration "$seconds" --max-duration "$seconds" --workers "$cores"
for setting in "bf16 $workers" "fp32 $workers" "bf16 $(( (workers + 1) / 2 ))"; do
    set -- $setting
    flag=""; [ "$1" = bf16 ] && flag="--bf16"
    run "extract_$1_w$2" "$PY" benchmarks/bench_extract.py --videos "$clipdir/**/*.mp4" --device "$DEVICE" \
        --workers "$2" --batch-frames "$batch" $flag --crop-size "$crop" --random-wav2vec2-size "$w2v" \
        --json "$OUT/extract_$1_w$2.json"
done
rm -rf "$clipdir"
# 3. Training: real loading vs the model alone, and the loader alone.
run train "$PY" -m benchmarks.bench_train --device "$DEVICE" --videos "$tvideos" --frames "$tframes" \
    --batch-size "$tbatch" --steps "$tsteps" --rounds 4 --num-workers "$tworkers"
grep -h '^{' "$OUT/train.log" > "$OUT/train.json" || true
echo "results in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $status
