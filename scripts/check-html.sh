#!/usr/bin/env bash
# Opens an HTML report in headless Chromium (Debian's `chromium`) and fails if the page logs
# anything to the console: a blocked script or resource, a Content-Security-Policy violation,
# an error. With a second argument, also saves a screenshot of the report's first finding
# (its SVG ladder diagram) to that PNG file.
#
#   scripts/check-html.sh report.html [ladder.png]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 REPORT.html [SCREENSHOT.png]" >&2; exit 2; }
report=$(realpath "$1")
shot=${2:-}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  echo "check-html: chromium not found (apt-get install chromium)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Flags that keep Chromium off the network and quiet, as root, without a display.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$work/profile")

messages=$(timeout 120 "$chromium" "${flags[@]}" --enable-logging=stderr --log-level=0 --dump-dom "file://$report" \
  2>&1 >"$work/dom.html" | grep -E "CONSOLE|Uncaught|Refused to|Failed to load" || true)
if [ -n "$messages" ]; then
  echo "check-html: $1 logged to the console:" >&2
  echo "$messages" >&2
  exit 1
fi
grep -q "</html>" "$work/dom.html" || { echo "check-html: $1 did not render" >&2; exit 1; }

if [ -n "$shot" ]; then
  # A page with the report's style and its first finding only, sized to the ladder.
  python3 - "$report" "$work/first.html" <<'PY'
import re, sys
page = open(sys.argv[1], encoding="utf-8").read()
style = re.search(r"<style>.*?</style>", page, re.S).group(0)
article = re.search(r'<article id="finding-1">.*?</article>', page, re.S).group(0)
open(sys.argv[2], "w", encoding="utf-8").write(
    '<!DOCTYPE html><html><head><meta charset="utf-8">' + style + "</head><body>" + article + "</body></html>")
PY
  timeout 120 "$chromium" "${flags[@]}" --hide-scrollbars --window-size=820,700 --screenshot="$(realpath -m "$shot")" \
    "file://$work/first.html" >/dev/null 2>&1
  echo "check-html: screenshot of the first ladder in $shot"
fi
echo "check-html: $1 renders with no console messages"
