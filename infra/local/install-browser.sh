#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the browser tests, when missing.
# The only system-wide install of the project: the packages come from Debian's archive.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then exit 0; fi
SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || { echo "install-browser.sh: chromium and chromium-driver are missing; install them as root: apt-get install -y chromium chromium-driver" >&2; exit 1; }
  SUDO=(sudo)
fi
echo "== installing chromium and chromium-driver (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
/usr/bin/chromedriver --version
