#!/usr/bin/env bash
# Takes the README's screenshots of the client pages in headless Chromium (Debian package
# `chromium`): starts `mot serve` on a throwaway SQLite database, posts a touchpoint, and
# photographs its survey page, the answer page of a bad rating, and a follow-up status page.
set -euo pipefail
cd "$(dirname "$0")/.."
MOT=.venv/bin/mot
work=$(mktemp -d)
port=8765
base="http://127.0.0.1:$port"
export MOT_DATABASE_URL="sqlite:///$work/mot.db" MOT_LOG_LEVEL=warning
"$MOT" serve --port "$port" & server=$!
trap 'kill $server; rm -rf "$work"' EXIT
"$MOT" smoke "$base" --wait 30 >/dev/null

json() { curl -sf -H 'content-type: application/json' "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

json -X POST "$base/v1/touchpoints" -d '{"id": "shot-1", "moment": "service-desk.first-voice",
  "channel": "call", "occurred_at": "2026-11-23T09:30:00Z", "client_ref": "c-1"}' >/dev/null
links=$(json -X POST "$base/v1/touchpoints/shot-1/survey" -d '{"scale": "csat5"}')
page=$(echo "$links" | field '["page_url"]')
follow_up=$(curl -sf "$page/2" >/dev/null && curl -sf "$base/v1/follow-ups" | field '["data"][0]["id"]')
json -X POST "$base/v1/follow-ups/$follow_up/events" -d '{"status": "acknowledged", "actor": "desk",
  "note": "internal: check the queue", "next_update_at": "2026-11-25T12:00:00Z",
  "client_message": "Thank you for telling us, and we are sorry. We are looking into what happened and will call you back."}' >/dev/null
status=$(curl -sf "$base/v1/follow-ups/$follow_up" | field '["status_url"]')

shoot() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chromium" --hide-scrollbars --window-size=420,640 \
    --screenshot="docs/$1" "$2" 2>/dev/null
}
shoot survey-page.png "$page"
shoot survey-sorry.png "$page/2"
shoot status-page.png "$status"
echo "docs/survey-page.png docs/survey-sorry.png docs/status-page.png"
