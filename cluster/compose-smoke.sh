#!/usr/bin/env bash
# Compose smoke test: build the image offline, bring the three-node compose cluster up, fetch
# through the VIP, stop the upstream, SIGKILL the leader's container, fetch again through the VIP
# (served by the new leader from its replicated cache, same bytes). Always tears down.
#   cluster/compose-smoke.sh [binary]
set -euo pipefail
binary=$(realpath "${1:-target/release/goproxy-ha}")
cd "$(dirname "$0")"
corpus=$(realpath "${GOPROXY_CORPUS:-../../shared/testdata/goproxy-corpus}")
project="gpha-smoke-$$"
image="goproxy-ha:smoke-$$"
vip=10.89.0.100
gateway=10.89.0.1
tls=$(mktemp -d)
compose() { GOPROXY_HA_IMAGE=$image GOPROXY_HA_UPSTREAM="http://$gateway:$port" GOPROXY_HA_VERIFY_FILLS=false \
            GOPROXY_HA_TLS_DIR="$tls" docker-compose -p "$project" -f docker-compose.yml "$@"; }
log() { echo "compose-smoke: $*"; }

upstream_pid=""
cleanup() {
    status=$?
    if [ $status -ne 0 ]; then
        compose logs --no-color --tail=40 2>/dev/null || true
    fi
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null || true
    compose down -v --remove-orphans >/dev/null 2>&1 || true
    docker rmi -f "$image" >/dev/null 2>&1 || true
    rm -rf "$tls"
    exit $status
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

./image/build.sh "$binary" "$image"
# Node-to-node mutual TLS, as an operator would set it up.
"$binary" certs init --dir "$tls" >/dev/null
for n in 1 2 3; do "$binary" certs issue --dir "$tls" --node "$n" >/dev/null; done
compose up -d
# The bridge (and its gateway address) exists now: serve the corpus on it as the upstream.
python3 -m http.server --bind "$gateway" --directory "$corpus" "$port" >/dev/null 2>&1 &
upstream_pid=$!

wait_for() { # wait_for <seconds> <what> <command...>
    local until=$((SECONDS + $1)) what=$2; shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $until ] || { log "timed out waiting for $what"; return 1; }
        sleep 0.2
    done
}
zip="github.com/gin-gonic/gin/@v/v1.8.1.zip"
# The first fetch fills from the upstream: it must be listening (a refused upstream is a 404).
wait_for 30 "the upstream to answer" curl -fsS -m 2 -o /dev/null "http://$gateway:$port/$zip"
wait_for 60 "the VIP to answer" curl -fsS -m 2 "http://$vip:8080/readyz"
before=$(curl -fsS -m 30 "http://$vip:8080/$zip" | sha256sum | cut -d' ' -f1)
log "fetched $zip through the VIP: $before"

holder=""
for n in 1 2 3; do
    if curl -fsS -m 2 "http://10.89.0.1$n:8080/cluster/status" | grep -q '"vip_held":true'; then
        holder=node$n
    fi
done
[ -n "$holder" ] || { log "no node reports holding the VIP"; exit 1; }
kill "$upstream_pid"; upstream_pid=""
log "upstream stopped; SIGKILL $holder (the VIP holder)"
started=$SECONDS
compose kill -s SIGKILL "$holder" >/dev/null
wait_for 30 "the VIP to answer again" curl -fsS -m 1 "http://$vip:8080/readyz"
after=$(curl -fsS -m 30 "http://$vip:8080/$zip" | sha256sum | cut -d' ' -f1)
[ "$before" = "$after" ] || { log "different bytes after failover: $after"; exit 1; }
new_holder=""
for n in 1 2 3; do
    if curl -fsS -m 2 "http://10.89.0.1$n:8080/cluster/status" 2>/dev/null | grep -q '"vip_held":true'; then
        new_holder=node$n
    fi
done
log "VIP moved $holder -> ${new_holder:-?} within $((SECONDS - started)) s; same bytes served: ok"
