#!/usr/bin/env bash
# Instructions per cache hit, counted by callgrind: stable on a loaded machine, where rps is
# not. Starts nginx over the corpus and a release node under callgrind, fills and warms each
# artifact, then for each one zeroes the counters, sends REQUESTS sequential keep-alive GETs
# (a Python client, outside the count) and dumps; the total over that window divided by
# REQUESTS is printed. Another window of the same length with no requests measures what the
# node does by itself (Raft ticks, timers), which is subtracted.
#
# usage: crates/bench/profile/callgrind.sh [OUT_DIR]   (valgrind, nginx, python3 installed)
# env:   GOPROXY_HA (binary; default $CARGO_TARGET_DIR/release/goproxy-ha), REQUESTS (2000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:-$(mktemp -d /tmp/goproxy-callgrind.XXXX)}
binary=${GOPROXY_HA:-${CARGO_TARGET_DIR:-$root/target}/release/goproxy-ha}
corpus=${GOPROXY_CORPUS:-$root/../shared/testdata/goproxy-corpus}
requests=${REQUESTS:-2000}
upstream_port=18710 http_port=18711 raft_port=18712
mkdir -p "$out"
rm -f "$out"/callgrind.out*

cat > "$out/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $out/nginx.pid;
error_log $out/nginx.err warn;
events { worker_connections 1024; }
http { access_log off; sendfile on;
  client_body_temp_path $out; proxy_temp_path $out; fastcgi_temp_path $out; uwsgi_temp_path $out; scgi_temp_path $out;
  server { listen 127.0.0.1:$upstream_port; root $corpus; } }
NGINX
nginx -c "$out/nginx.conf" -e "$out/nginx.err" &
nginx_pid=$!
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$binary" serve --data-dir "$out/data" --listen 127.0.0.1:$http_port --raft-listen 127.0.0.1:$raft_port \
  --upstream http://127.0.0.1:$upstream_port --verify-fills false --log-level warn >"$out/node.out" 2>"$out/node.err" &
node_pid=$!
trap 'kill $node_pid; kill -QUIT $nginx_pid; wait' EXIT
for _ in $(seq 600); do curl -sf -o /dev/null http://127.0.0.1:$http_port/readyz && break; sleep 0.2; done

# Sends N keep-alive GETs of one path; prints the seconds it took.
client() {
  python3 - "$http_port" "$1" "$2" <<'PY'
import http.client, sys, time
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
start = time.monotonic()
for _ in range(n):
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
print(f"{time.monotonic() - start:.3f}")
PY
}

# Total instructions (Ir) counted since the last zeroing, read from a fresh dump.
instructions() {
  callgrind_control --dump="$1" "$node_pid" >/dev/null
  local file
  file=$(ls -t "$out"/callgrind.out.* | head -1)
  awk '/^summary:/ {print $2}' "$file"
}

cases=(info:/example.com/hello/@v/v1.1.0.info mod:/github.com/gin-gonic/gin/@v/v1.8.1.mod zip:/gopkg.in/yaml.v3/@v/v3.0.1.zip)
for case in "${cases[@]}"; do
  client "${case#*:}" 20 >/dev/null   # fill, then warm the memory cache
done
printf '%-6s %10s %14s %16s\n' artifact requests instructions "per request"
for case in "${cases[@]}"; do
  name=${case%%:*} path=${case#*:}
  callgrind_control --zero "$node_pid" >/dev/null
  seconds=$(client "$path" "$requests")
  total=$(instructions "$name")
  # The node's own work over the same time, without requests.
  callgrind_control --zero "$node_pid" >/dev/null
  sleep "$seconds"
  idle=$(instructions "idle-$name")
  awk -v n="$name" -v r="$requests" -v t="$total" -v i="$idle" \
    'BEGIN { printf "%-6s %10d %14d %16.0f\n", n, r, t - i, (t - i) / r }'
done
echo "callgrind dumps in $out"
