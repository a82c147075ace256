#!/usr/bin/env bash
# Moves GPT-2 weights between shoal and an independent PyTorch GPT-2
# (scripts/hf_interop.py) in Hugging Face's layout and compares their losses
# on a token batch (TestHuggingFaceInterop). Installs Debian's python3-torch
# if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "installing Debian's python3-torch..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch >/dev/null
fi
SHOAL_REQUIRE_TORCH=1 go test -count=1 -run 'TestHuggingFaceInterop' -v ./cmd/shoal/ | grep -E '^(=== RUN|--- |\s+hf_interop|ok|FAIL|PASS)'
