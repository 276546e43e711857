#!/usr/bin/env bash
# Every GPU row of docs/benchmarks.md in one command, from the repository root on a machine with
# a CUDA GPU (about 8 minutes on an H200 with 16 cores):  bash bench/gpu_suite.sh [LOG]
# Each benchmark has a time limit, so one that hangs or runs long cannot take the others' time;
# the log (default gpu_suite.log) gets every table with the card, the cores and the commit.
set -u
log=${1:-gpu_suite.log}
: > "$log"
step() {
    local limit=$1; shift
    echo "== $(date -u +%H:%M:%S) $*" | tee -a "$log"
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    echo "$(nproc) CPU cores; commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    python3 -c "import torch, av, decord, cv2, open_clip; print('torch', torch.__version__, 'PyAV', av.__version__, 'decord', decord.__version__, 'OpenCV', cv2.__version__, 'open_clip', open_clip.__version__)"
} 2>&1 | tee -a "$log"
loader="python3 -m bench.loader_throughput --videos 64 --workers 8 --backends pyav decord"
step 150 $loader --rounds 2 --keyframe-interval 12
step 110 $loader --rounds 2 --keyframe-interval 250
step 90 $loader --rounds 2 --keyframe-interval 12 --codec mpeg4
step 90 $loader --rounds 2 --keyframe-interval 250 --codec vp9 --frames 48
step 40 python3 -m bench.augmentation --device cuda
step 40 python3 -m bench.temporal_conv --device cuda
step 90 python3 -m bench.train_throughput --backbone ViT-B-16-quickgelu --device cuda --frames 8 --batch 4 --precision bf16
echo "== $(date -u +%H:%M:%S) done" | tee -a "$log"
