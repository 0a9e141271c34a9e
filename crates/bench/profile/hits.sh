#!/usr/bin/env bash
# Profiles goproxy-ha's hit path as `make bench` loads it: a release node over nginx (the
# corpus), warm, wrk -t2 -c64, perf record with DWARF call graphs, for `.info` and the 98 KiB
# zip. Prints perf's top symbols, the share of each component (owners.py) and the syscalls
# per request. Summary and reading: ../PROFILE.md.
#
# usage: crates/bench/profile/hits.sh [OUT_DIR]   (as root; perf, wrk, nginx installed)
# env:   GOPROXY_HA (binary; default $CARGO_TARGET_DIR/release/goproxy-ha), SECONDS_LOAD (14)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${1:-$(mktemp -d /tmp/goproxy-profile.XXXX)}
binary=${GOPROXY_HA:-${CARGO_TARGET_DIR:-$root/target}/release/goproxy-ha}
corpus=${GOPROXY_CORPUS:-$root/../shared/testdata/goproxy-corpus}
load=${SECONDS_LOAD:-14}
upstream_port=18700 http_port=18701 raft_port=18702
mkdir -p "$out"

cat > "$out/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $out/nginx.pid;
error_log $out/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  client_body_temp_path $out; proxy_temp_path $out; fastcgi_temp_path $out; uwsgi_temp_path $out; scgi_temp_path $out;
  server { listen 127.0.0.1:$upstream_port; root $corpus; } }
EOF
nginx -c "$out/nginx.conf" -e "$out/nginx.err" &
nginx_pid=$!
"$binary" serve --data-dir "$out/data" --listen 127.0.0.1:$http_port --raft-listen 127.0.0.1:$raft_port \
  --upstream http://127.0.0.1:$upstream_port --verify-fills false --log-level warn >"$out/node.out" 2>"$out/node.err" &
node_pid=$!
trap 'kill $node_pid; kill -QUIT $nginx_pid; wait' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$http_port/healthz && break; sleep 0.1; done

for case in info:example.com/hello/@v/v1.1.0.info zip:gopkg.in/yaml.v3/@v/v3.0.1.zip; do
  name=${case%%:*} path=${case#*:} url=http://127.0.0.1:$http_port/${case#*:}
  curl -sf -o /dev/null "$url"; curl -sf -o /dev/null "$url"   # fill, then a hit (memory cache)
  echo "== $name ($path), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  wrk -t2 -c64 -d${load}s --latency "$url" >"$out/wrk-$name.txt" &
  wrk_pid=$!
  sleep 2
  perf record -F 499 -g --call-graph dwarf,16384 -p $node_pid -o "$out/perf-$name.data" -- sleep $((load - 4)) 2>/dev/null
  wait $wrk_pid
  grep Requests/sec "$out/wrk-$name.txt" | sed 's/^/under perf: /'
  perf report -i "$out/perf-$name.data" --no-children --sort symbol --stdio -g none --percent-limit 0.6 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | sed -E 's/ {2,}-.*$//' | cut -c1-120
  perf script -i "$out/perf-$name.data" 2>/dev/null >"$out/script-$name.txt"
  python3 "$here/owners.py" "$out/script-$name.txt"
  # Syscalls per request, without perf's unwinding overhead.
  wrk -t2 -c64 -d8s "$url" >"$out/wrk-stat-$name.txt" &
  wrk_pid=$!
  sleep 1
  perf stat -x, -e 'syscalls:sys_enter_writev,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,context-switches' \
    -p $node_pid -o "$out/stat-$name.csv" -- sleep 5
  wait $wrk_pid
  rps=$(awk '/Requests\/sec/{print $2}' "$out/wrk-stat-$name.txt")
  awk -F, -v rps="$rps" '$1 ~ /^[0-9]/ {printf "  %-36s %6.2f per request\n", $3, $1 / (rps * 5)}' "$out/stat-$name.csv"
done
echo "perf data and scripts in $out"
