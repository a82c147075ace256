#!/usr/bin/env bash
# Compares shoal's gpt-tiny training speed with PyTorch's on this machine's
# CPU: the same GPT-2 configuration (vocab 256, d 128, 2 layers, 4 heads,
# context 64), batch 16, AdamW, one thread and two.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "installing Debian's python3-torch..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch >/dev/null
fi
STEPS=${STEPS:-30}
bench=$(go test -run '^$' -bench 'BenchmarkTrainStep/model=gpt-tiny/' -benchtime "${STEPS}x" ./gradient/)
echo "$bench" | grep Benchmark >&2
printf '%-8s %16s %16s %8s\n' threads shoal_tok/s torch_tok/s ratio
for th in 1 2; do
  shoal=$(echo "$bench" | awk -v t="threads=$th" '$1 ~ t { for (i=1;i<=NF;i++) if ($i=="tokens/s") print $(i-1) }')
  torch=$("$PY" scripts/bench_torch.py --threads "$th" --steps "$STEPS" | "$PY" -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["tokens_per_second"])')
  ratio=$(awk -v a="$shoal" -v b="$torch" 'BEGIN { printf "%.2f", a/b }')
  printf '%-8s %16.0f %16s %7sx\n' "$th" "$shoal" "$torch" "$ratio"
done
