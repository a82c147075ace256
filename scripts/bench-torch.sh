#!/usr/bin/env bash
# Compares shoal's training speed with PyTorch's on this machine's CPU:
# the same GPT-2 configurations (gpt-tiny: vocab 256, d 128, 2 layers, 4
# heads, context 64; gpt-small: d 384, 6 layers, 6 heads, context 256),
# batch 16, AdamW, one thread and two.
#
# PyTorch runs as a user who cares would run it. Debian's python3-torch
# links the reference BLAS unless an optimised one is installed, which
# would make it look ten times slower than it is: the script installs
# OpenBLAS (libopenblas0-pthread). OpenBLAS's runtime detection does not
# always pick its fastest kernel for the CPU, so the script times PyTorch
# on gpt-tiny with one thread under auto-detection and under every core
# type this CPU can run (OPENBLAS_CORETYPE), keeps the fastest and says
# which. OpenBLAS's threads are pinned to PyTorch's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
if ! "$PY" -c 'import torch' 2>/dev/null || ! ls /usr/lib/*-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then
  echo "installing Debian's python3-torch and OpenBLAS..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch libopenblas0-pthread >/dev/null
fi
STEPS=${STEPS:-30}            # gpt-tiny steps per measurement
SMALL_STEPS=${SMALL_STEPS:-6} # gpt-small steps per measurement

tiny="--ctx 64 --dim 128 --layers 2 --heads 4"
small="--ctx 256 --dim 384 --layers 6 --heads 6"
torchRate() { # threads coretype steps args...
  local th=$1 ct=$2 steps=$3
  shift 3
  OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th OPENBLAS_CORETYPE=$ct env -u OPENBLAS_L2_SIZE \
    "$PY" scripts/bench_torch.py --threads "$th" --steps "$steps" "$@" |
    "$PY" -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["tokens_per_second"])'
}

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
types=("")
if [ "$(uname -m)" = x86_64 ]; then
  case "$flags" in *" avx2"*) types+=(HASWELL ZEN) ;; esac
  case "$flags" in *" avx512f"*) types+=(SKYLAKEX) ;; esac
  case "$flags" in *" avx512_bf16"*) types+=(COOPERLAKE) ;; esac
fi
best="" bestRate=0
for t in "${types[@]}"; do
  # shellcheck disable=SC2086
  if rate=$(torchRate 1 "$t" "$STEPS" $tiny 2>/dev/null); then
    echo "PyTorch with OpenBLAS core type ${t:-auto}: $rate tokens/s on gpt-tiny, one thread" >&2
    if [ "$rate" -gt "$bestRate" ]; then best=$t bestRate=$rate; fi
  fi
done
echo "fastest: ${best:-auto}" >&2

bench=$(go test -run '^$' -bench 'BenchmarkTrainStep/model=gpt-tiny/' -benchtime "${STEPS}x" ./gradient/
  go test -run '^$' -bench 'BenchmarkTrainStep/model=gpt-small/' -benchtime "${SMALL_STEPS}x" ./gradient/)
echo "$bench" | grep Benchmark >&2
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), PyTorch $("$PY" -c 'import torch; print(torch.__version__)') with OpenBLAS core type ${best:-auto}"
printf '%-10s %-8s %14s %14s %8s\n' model threads shoal_tok/s torch_tok/s ratio
for model in gpt-tiny gpt-small; do
  args=$tiny steps=$STEPS
  if [ "$model" = gpt-small ]; then args=$small steps=$SMALL_STEPS; fi
  for th in 1 2; do
    shoal=$(echo "$bench" | awk -v t="model=$model/threads=$th" '$1 ~ t { for (i=1;i<=NF;i++) if ($i=="tokens/s") print $(i-1) }')
    # shellcheck disable=SC2086
    torch=$(torchRate "$th" "$best" "$steps" $args)
    printf '%-10s %-8s %14.0f %14s %7.2fx\n' "$model" "$th" "$shoal" "$torch" "$(awk -v a="$shoal" -v b="$torch" 'BEGIN { print a/b }')"
  done
done
