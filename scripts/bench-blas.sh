#!/usr/bin/env bash
# Prints shoal's sgemm speed beside OpenBLAS's on this machine's CPU, at n
# = 256, 1024 and 2048 (square, row-major, C = A·B), one thread and two,
# with the ratio.
#
# OpenBLAS is measured as a user who cares would run it: with the fastest
# kernel it has for this CPU. Its runtime detection does not always pick
# that one, so the script times auto-detection and every core type this
# CPU can run (OPENBLAS_CORETYPE) at n=1024 on one thread, keeps the
# fastest and says which. The OpenBLAS side is a small C program
# (scripts/sgemm_bench.c) linked against Debian's libopenblas0-pthread,
# which the script installs if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
LIB=$(ls /usr/lib/*-linux-gnu/libopenblas.so.0 2>/dev/null | head -n1 || true)
if [ -z "$LIB" ]; then
  echo "installing Debian's OpenBLAS (libopenblas0-pthread)..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas0-pthread >/dev/null
  LIB=$(ls /usr/lib/*-linux-gnu/libopenblas.so.0 | head -n1)
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -o "$TMP/sgemm_bench" scripts/sgemm_bench.c "$LIB"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || uname -m)
fam=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ' || true)
mod=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ' || true)
[ -n "$fam" ] && cpu="$cpu (family $fam, model $mod)"
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
types=("")
if [ "$(uname -m)" = x86_64 ]; then
  case "$flags" in *" avx2"*) types+=(HASWELL ZEN) ;; esac
  case "$flags" in *" avx512f"*) types+=(SKYLAKEX) ;; esac
  case "$flags" in *" avx512_bf16"*) types+=(COOPERLAKE SAPPHIRERAPIDS) ;; esac
fi
best="" bestRate=0
for t in "${types[@]}"; do
  if out=$(OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=$t "$TMP/sgemm_bench" 1024 2>/dev/null); then
    rate=${out%% *} name=${out#* }
    echo "OpenBLAS core type ${t:-auto} (kernel $name): $rate GFLOP/s at n=1024, one thread" >&2
    if awk -v a="$rate" -v b="$bestRate" 'BEGIN { exit !(a > b) }'; then
      best=$t bestRate=$rate bestName=$name
    fi
  fi
done
echo "fastest: ${best:-auto} (kernel $bestName)" >&2

shoal=$(go test -run '^$' -bench 'BenchmarkSgemm/n=(256|1024|2048)/threads=(1|2)/impl=shoal$' ./tensor/internal/gemm/)
echo "$shoal" | grep Benchmark >&2
echo "$cpu, OpenBLAS $(basename "$(readlink -f "$LIB")") kernel $bestName"
printf '%-6s %-8s %14s %16s %7s\n' n threads shoal_GFLOP/s openblas_GFLOP/s ratio
for n in 256 1024 2048; do
  for th in 1 2; do
    s=$(echo "$shoal" | awk -v k="n=$n/threads=$th/impl=shoal" '$1 ~ k { for (i=1;i<=NF;i++) if ($i=="GFLOP/s") print $(i-1) }')
    o=$(OPENBLAS_NUM_THREADS=$th OPENBLAS_CORETYPE=$best "$TMP/sgemm_bench" "$n")
    o=${o%% *}
    printf '%-6s %-8s %14s %16s %6.2fx\n' "$n" "$th" "$s" "$o" "$(awk -v a="$s" -v b="$o" 'BEGIN { print a/b }')"
  done
done
