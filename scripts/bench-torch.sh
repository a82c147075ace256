#!/usr/bin/env bash
# Compares shoal's gpt-tiny training speed with PyTorch's on this machine's
# CPU: the same GPT-2 configuration (vocab 256, d 128, 2 layers, 4 heads,
# context 64), batch 16, AdamW, one thread and two.
#
# Debian's python3-torch links the reference BLAS unless an optimised one is
# installed, which would make PyTorch look ten times slower than it is; this
# script installs OpenBLAS (libopenblas0-pthread) so the comparison is fair,
# pins OpenBLAS to the same number of threads as PyTorch, and clears
# OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for the PyTorch run, which on some
# machines select a slower kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
if ! "$PY" -c 'import torch' 2>/dev/null || ! ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then
  echo "installing Debian's python3-torch and OpenBLAS..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch libopenblas0-pthread >/dev/null
fi
STEPS=${STEPS:-30}
bench=$(go test -run '^$' -bench 'BenchmarkTrainStep/model=gpt-tiny/' -benchtime "${STEPS}x" ./gradient/)
echo "$bench" | grep Benchmark >&2
printf '%-8s %16s %16s %8s\n' threads shoal_tok/s torch_tok/s ratio
for th in 1 2; do
  shoal=$(echo "$bench" | awk -v t="threads=$th" '$1 ~ t { for (i=1;i<=NF;i++) if ($i=="tokens/s") print $(i-1) }')
  torch=$(OPENBLAS_NUM_THREADS=$th OMP_NUM_THREADS=$th env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    "$PY" scripts/bench_torch.py --threads "$th" --steps "$STEPS" | "$PY" -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["tokens_per_second"])')
  ratio=$(awk -v a="$shoal" -v b="$torch" 'BEGIN { printf "%.2f", a/b }')
  printf '%-8s %16.0f %16s %7sx\n' "$th" "$shoal" "$torch" "$ratio"
done
