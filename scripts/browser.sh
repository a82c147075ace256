#!/usr/bin/env bash
# Makes sure a headless-capable browser is on PATH for the dashboard's
# browser tests (tracker/dashboard/browser_test.go and any end-to-end test
# that uses dashboard.FindBrowser). If one of chromium, chromium-browser,
# google-chrome or headless_shell is already there it does nothing;
# otherwise it installs Debian's chromium with apt-get (as root, or through
# `sudo -n` when not root). Safe to run again.
set -euo pipefail

names=(chromium chromium-browser google-chrome headless_shell)

find_browser() {
  local n
  for n in "${names[@]}"; do
    if command -v "$n" >/dev/null 2>&1; then
      command -v "$n"
      return 0
    fi
  done
  return 1
}

if path=$(find_browser); then
  echo "browser.sh: found $path ($("$path" --version 2>/dev/null || echo 'version unknown')); nothing to do"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser.sh: no browser on PATH (looked for ${names[*]}) and no apt-get to install one;" >&2
  echo "browser.sh: install Chromium or Chrome by hand and put it on PATH" >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
    echo "browser.sh: no browser on PATH, and installing one needs root: run this script as root" >&2
    echo "browser.sh: or allow passwordless sudo (it runs 'sudo -n apt-get')" >&2
    exit 1
  fi
  SUDO=(sudo -n)
fi

echo "browser.sh: no browser on PATH; installing Debian's chromium with apt-get..."
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -qq; then
  echo "browser.sh: apt-get update failed" >&2
  exit 1
fi
if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  echo "browser.sh: apt-get install chromium failed" >&2
  exit 1
fi

if ! path=$(find_browser); then
  echo "browser.sh: chromium was installed but none of ${names[*]} is on PATH" >&2
  exit 1
fi
echo "browser.sh: installed $path ($("$path" --version 2>/dev/null || echo 'version unknown'))"
