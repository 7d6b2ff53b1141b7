#!/usr/bin/env bash
# The server under attack, on 127.0.0.1 only, bounded in time (about two minutes plus the
# release build): small pages (`/feed?questions=10`) measured by wrk, first on a quiet server,
# then while 1,000 idle connections hold partial requests (re-opened as soon as the server
# closes them, as a slowloris attacker does) and 6 maximum-size pages
# (`/feed?questions=10000&answers=10`, each re-requested as soon as it is answered) are in
# flight. Prints both latency distributions and passes when every small page got a 200 with
# p99 under 100 ms under attack.
#
# Not part of CI (it measures time, on whatever else the machine is doing). Installs wrk,
# curl and python3 from Debian's packages when missing (as root). Settings, from the
# environment: DURATION (seconds of each wrk run, default 20), IDLE (partial connections,
# default 1000), HEAVY (maximum-size pages in flight, default 6), CONNECTIONS (wrk's
# connections, default 8), and SERVER_ARGS (extra flags for the server).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
IDLE=${IDLE:-1000}
HEAVY=${HEAVY:-6}
CONNECTIONS=${CONNECTIONS:-8}
SMALL="/feed?questions=10"
LARGE="/feed?questions=10000&answers=10"

need() {
  command -v "$1" >/dev/null 2>&1 && return
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing $2 (Debian package)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null)
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "$1 is missing: apt-get install $2" >&2; exit 1; }
}
need wrk wrk
need curl curl
need python3 python3

# Each idle connection is a file descriptor of the server and of the holder.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "==> building the server (release)"
cargo build --release -q -p asynq-examples --bin server

dir=$(mktemp -d)
pids=()
cleanup() {
  rm -f "$dir/attack"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# shellcheck disable=SC2086
target/release/server --db "$dir/profile.sqlite" ${SERVER_ARGS:-} >"$dir/out" 2>"$dir/err" &
pids+=($!)
for _ in $(seq 600); do
  grep -q "listening on" "$dir/out" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^server: listening on //p' "$dir/out")
[ -n "$base" ] || { cat "$dir/err" >&2; echo "the server did not start" >&2; exit 1; }
port=${base##*:}
echo "==> server at $base; building both pages' data sets (not measured)"
curl -sf -o /dev/null -m 60 "$base$SMALL"
curl -sf -o /dev/null -m 600 "$base$LARGE"

p99() { awk '$1 == "99%" { print $2 }' "$1"; }
p50() { awk '$1 == "50%" { print $2 }' "$1"; }
errors() { awk '/Non-2xx|Socket errors/ { print }' "$1"; }
requests() { awk '/requests in/ { print $1 }' "$1"; }

echo "==> quiet: wrk -t1 -c$CONNECTIONS -d${DURATION}s $SMALL"
wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$base$SMALL" >"$dir/quiet"

echo "==> attack: $IDLE partial connections, $HEAVY pages of $LARGE in flight"
touch "$dir/attack"
python3 - "$port" "$IDLE" "$dir/attack" "$dir/held" <<'PY' &
# Hold `n` connections to 127.0.0.1:port, each with a partial request; re-open any the
# server closes; write how many are open at the end to `report`; stop when the
# `flag` file is gone (or after 10 minutes).
import os, selectors, socket, sys, time
port, n, flag, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
partial = b"GET /feed?questions=10 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
sel = selectors.DefaultSelector()  # epoll: more than 1024 descriptors
def open_one():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(partial)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
for _ in range(n):
    open_one()
reopened, start = 0, time.time()
while os.path.exists(flag) and time.time() - start < 600:
    for key, _ in sel.select(timeout=0.2):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # closed by the server (its header-read timeout): come back
            sel.unregister(s)
            s.close()
            open_one()
            reopened += 1
with open(report, "w") as f:
    f.write(f"{len(sel.get_map())} held at the end, {reopened} re-opened after the server closed them\n")
PY
pids+=($!)
for _ in $(seq "$HEAVY"); do
  (while [ -f "$dir/attack" ]; do
     curl -s -o /dev/null -w '%{http_code}\n' -m 120 "$base$LARGE" >>"$dir/heavy" || true
   done) &
  pids+=($!)
done
sleep 3 # the holder's connections are open, the large pages rendering and queued
echo "==> under attack: wrk -t1 -c$CONNECTIONS -d${DURATION}s $SMALL"
wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$base$SMALL" >"$dir/attack-wrk"
stats=$(curl -s -m 10 "$base/stats" | sed -n '/^refused/,$p')
rm -f "$dir/attack"
sleep 1

echo
echo "quiet:        $(requests "$dir/quiet") small pages, p50 $(p50 "$dir/quiet"), p99 $(p99 "$dir/quiet") $(errors "$dir/quiet")"
echo "under attack: $(requests "$dir/attack-wrk") small pages, p50 $(p50 "$dir/attack-wrk"), p99 $(p99 "$dir/attack-wrk") $(errors "$dir/attack-wrk")"
echo "idle partial connections: $(cat "$dir/held" 2>/dev/null || echo 'holder still running')"
echo "large pages answered during the attack: $(sort "$dir/heavy" | uniq -c | awk '{ printf "%s x %s  ", $1, $2 }')"
echo "server counters:"
echo "$stats" | sed 's/^/  /'

p99_ms=$(p99 "$dir/attack-wrk" | awk '/us$/ { print $1 / 1000; next } /ms$/ { print $1 + 0; next } /s$/ { print $1 * 1000 }')
if [ -n "$(errors "$dir/attack-wrk")" ]; then
  echo "FAIL: small pages failed under attack" >&2
  exit 1
fi
if awk -v p="$p99_ms" 'BEGIN { exit !(p < 100) }'; then
  echo "PASS: every small page got a 200, p99 ${p99_ms} ms < 100 ms under attack"
else
  echo "FAIL: p99 ${p99_ms} ms >= 100 ms under attack" >&2
  exit 1
fi
