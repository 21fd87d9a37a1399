#!/usr/bin/env bash
# Regenerates the web console's screenshots in docs/screenshots/ (shown in
# the README) with the same setup as the browser test: a real server, a
# real device, a real headless Chromium (apt-get install -y chromium).
# The test fails rather than write stale pictures.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/docs/screenshots"
if ! command -v chromium >/dev/null 2>&1 && [ -z "${E4C2_CHROME:-}" ]; then
  echo "screenshots: no chromium (apt-get install -y chromium, or set E4C2_CHROME)" >&2
  exit 1
fi
mkdir -p "$out"
E4C2_SCREENSHOTS="$out" go test -count=1 -run '^TestConsoleInBrowser(PK)?$' -v ./transport/http/console/ \
  | grep -E '^(--- |ok|FAIL|PASS)'
ls -1 "$out"
