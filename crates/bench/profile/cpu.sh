#!/usr/bin/env bash
# The node's CPU time (user + system, from /proc/PID/stat) per cache hit while wrk -t2 -c64
# loads it for 5 s, for `.info`, a `.mod` and the 98 KiB zip. Less sensitive to a busy
# machine than requests/s, though not as stable as callgrind.sh's instruction counts.
# Reading: ../PROFILE.md.
#
# usage: crates/bench/profile/cpu.sh BINARY LABEL   (wrk, nginx, curl installed)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=$1 label=$2
out=$(mktemp -d /tmp/goproxy-cpu.XXXX)
corpus=${GOPROXY_CORPUS:-$root/../shared/testdata/goproxy-corpus}
up=18730 http=18731 raft=18732
cat > $out/nginx.conf <<NG
daemon off; worker_processes 1; pid $out/nginx.pid; error_log $out/nginx.err warn;
events { worker_connections 1024; }
http { access_log off; sendfile on; client_body_temp_path $out; proxy_temp_path $out; fastcgi_temp_path $out; uwsgi_temp_path $out; scgi_temp_path $out;
  server { listen 127.0.0.1:$up; root $corpus; } }
NG
nginx -c $out/nginx.conf -e $out/nginx.err & ng=$!
$bin serve --data-dir $out/data --listen 127.0.0.1:$http --raft-listen 127.0.0.1:$raft --upstream http://127.0.0.1:$up --verify-fills false --log-level warn >$out/node.out 2>$out/node.err & node=$!
trap 'kill $node; kill -QUIT $ng; wait' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:$http/healthz && break; sleep 0.1; done
ticks() { awk '{print $14 + $15}' /proc/$node/stat; }
for p in example.com/hello/@v/v1.1.0.info github.com/gin-gonic/gin/@v/v1.8.1.mod gopkg.in/yaml.v3/@v/v3.0.1.zip; do
  curl -sf -o /dev/null http://127.0.0.1:$http/$p; curl -sf -o /dev/null http://127.0.0.1:$http/$p
  before=$(ticks)
  reqs=$(wrk -t2 -c64 -d5s http://127.0.0.1:$http/$p | awk '/requests in/ {print $1}')
  after=$(ticks)
  awk -v l=$label -v p=$p -v r=$reqs -v t=$((after - before)) 'BEGIN {printf "%-5s %-36s %8d req %6.1f us CPU/req\n", l, p, r, t * 10000 / r}'
done
