#!/usr/bin/env bash
# Lays out an HTML report in headless Chromium (Debian's `chromium`) at a window width and
# prints what the layout came to, one `name=value` per line, for tests/reports.rs:
#   viewport      the window's width in CSS pixels
#   page_overflow how far the page is wider than the window (0: no sideways scrolling
#                 outside the boxes made to scroll, the ladders')
#   table_width   the findings table's width
#   table_overflow how far the table is wider than its box (0: no sideways scrolling)
#   wrapped_cells cells of measures (time, idle) that broke over two lines
#   stacked       1 if the findings are shown as blocks (a phone), 0 as a table
# With a third argument, also saves a screenshot of the page (its first 2400 px) there.
#
#   scripts/html-layout.sh report.html 1280 [page.png]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 REPORT.html WIDTH [SCREENSHOT.png]" >&2; exit 2; }
report=$(realpath "$1")
width=$2
shot=${3:-}
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "html-layout: chromium not found (apt-get install chromium)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$work/profile"
  --window-size="$(( width < 480 ? 500 : width + 20 )),2400")
# A copy of the page with a measuring script (the report itself allows none: its
# Content-Security-Policy is dropped from the copy only), shown in a frame WIDTH pixels wide:
# headless Chromium's window is at least 500 pixels wide, a phone's viewport is narrower.
python3 - "$report" "$work/measured.html" <<'PY'
import re, sys
page = open(sys.argv[1], encoding="utf-8").read()
page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
script = """<script>
addEventListener('load', () => {
  const t = document.querySelector('table.findings');
  // A cell's text broke when its line boxes do not all share one top.
  const lines = c => { const r = document.createRange(); r.selectNodeContents(c);
    return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; };
  const wrapped = [...document.querySelectorAll('td.n')].filter(c => lines(c) > 1).length;
  const out = document.createElement('pre');
  out.id = 'layout';
  out.textContent = [
    'viewport=' + innerWidth,
    'page_overflow=' + Math.max(0, document.documentElement.scrollWidth - innerWidth),
    'table_width=' + (t ? Math.round(t.getBoundingClientRect().width) : 0),
  'table_overflow=' + (t ? Math.max(0, Math.round(t.getBoundingClientRect().width - t.parentElement.clientWidth)) : 0),
    'wrapped_cells=' + wrapped,
    'stacked=' + (t && getComputedStyle(t.querySelector('td')).display === 'block' ? 1 : 0),
  ].join('\\n');
  document.body.appendChild(out);
  parent.postMessage(out.textContent, '*');
});
</script>"""
open(sys.argv[2], "w", encoding="utf-8").write(page.replace("</body>", script + "</body>"))
PY
cat >"$work/frame.html" <<HTML
<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0} iframe{border:0;display:block}</style></head>
<body><iframe src="measured.html" style="width:${width}px;height:2400px"></iframe>
<script>addEventListener('message', e => { const p = document.createElement('pre'); p.id = 'layout'; p.textContent = e.data; document.body.appendChild(p); });</script>
</body></html>
HTML
timeout 120 "$chromium" "${flags[@]}" --virtual-time-budget=5000 --dump-dom "file://$work/frame.html" 2>/dev/null >"$work/dom.html"
python3 - "$work/dom.html" <<'PY'
import html, re, sys
m = re.search(r'<pre id="layout">(.*?)</pre>', open(sys.argv[1], encoding="utf-8").read(), re.S)
if not m:
    sys.exit("html-layout: the page did not lay out")
print(html.unescape(m.group(1)))
PY
if [ -n "$shot" ]; then
  timeout 120 "$chromium" "${flags[@]}" --screenshot="$(realpath -m "$shot")" "file://$work/frame.html" >/dev/null 2>&1
fi
