#!/usr/bin/env bash
# Cross-architecture determinism: builds the kernel, data, aggregation and model tests
# for arm64 and runs them under qemu-user. The golden tests there (f32
# values, FMA32 results, generated data, the parameter hash after 20
# training steps of gpt-tiny and after a short distillation) must give the
# same bits as on amd64.
set -euo pipefail
cd "$(dirname "$0")/.."
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -z "$QEMU" ]; then
  echo "installing Debian's qemu-user-static..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user-static >/dev/null
  QEMU=$(command -v qemu-aarch64-static)
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { # package, test pattern
  local pkg=$1 pattern=$2 bin
  bin="$out/$(echo "$pkg" | tr / _).test"
  GOARCH=arm64 go test -c -o "$bin" "./$pkg"
  echo "== arm64: $pkg ($pattern)"
  (cd "$pkg" && "$QEMU" "$bin" -test.run "$pattern" -test.short)
}
run tensor '.'
run tensor/internal/f32 '.'
run tensor/internal/gemm '.'
run tensor/internal/fma '.'
run gradient/data 'Golden|Task|Sample|Shards'
run gradient/aggregate 'TestGolden|TestScreen'
run gradient 'TestGoldenTraining|TestGoldenDistillation|TestGoldenGeneration|TestGoldenQuantGeneration|TestQuantMatrix|TestInitDeterministic|TestSchedule|TestAdamW|TestNesterov'
echo "arm64: same bits as amd64"
