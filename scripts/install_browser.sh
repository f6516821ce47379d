#!/usr/bin/env bash
# Installs the headless browser that tests/test_demo.py drives: Debian's chromium and chromium-driver (apt; no
# browser download). Idempotent, and tolerant: where apt cannot install them, it says so and the browser test skips.
set -uo pipefail
if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: no apt-get here; the browser test will skip (install chromium and its driver)." >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "install_browser.sh: not root and no sudo; the browser test will skip." >&2
    exit 0
  fi
fi
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >/tmp/install_browser.log 2>&1; then
  echo "install_browser.sh: apt could not install chromium and chromium-driver (log: /tmp/install_browser.log); the browser test will skip." >&2
fi
exit 0
