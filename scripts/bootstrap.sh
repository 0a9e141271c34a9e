#!/usr/bin/env bash
# Installs what building and testing goproxy-ha needs on a fresh Debian machine (as root).
# Usage: scripts/bootstrap.sh [build|test|bench|lab]
set -euo pipefail
what=${1:-build}

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

have cc || need_apt+=(build-essential)
have curl || need_apt+=(curl ca-certificates)
have pkg-config || need_apt+=(pkg-config)
if [ "$what" = test ] || [ "$what" = bench ]; then
  have go || need_apt+=(golang-go)
  # The private-module tests run git http-backend (a private git host) and git itself.
  have git || need_apt+=(git)
  # golang.org/x/mod/sumdb (note, tlog, a checksum database server) for the sumdb tests.
  [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] || need_apt+=(golang-golang-x-mod-dev)
  # Git over SSH with checked host keys: the test runs its own sshd in a namespace.
  have ssh-keygen || need_apt+=(openssh-client)
  [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
  have ip || need_apt+=(iproute2)
  have python3 || need_apt+=(python3)
  # The compose smoke test needs the Docker engine (already running on the CI machines).
  have docker-compose || need_apt+=(docker-compose)
  # The dashboard test drives /ui with headless Chromium; the monitoring test checks
  # cluster/monitoring/ alert rules with promtool (Debian's prometheus package).
  have chromium || need_apt+=(chromium)
  have promtool || need_apt+=(prometheus)
fi
if [ "$what" = test ] || [ "$what" = lab ]; then
  # The namespace lab: ip netns, nft for partitions, tc for netem, ethtool for the
  # user-space netem relay (kernels without sch_netem).
  have ip || need_apt+=(iproute2)
  have nft || need_apt+=(nftables)
  have ethtool || need_apt+=(ethtool)
fi
if [ "$what" = lab ]; then
  have keepalived || need_apt+=(keepalived)
fi
if [ "$what" = bench ]; then
  have nginx || need_apt+=(nginx-light)
  have wrk || need_apt+=(wrk)
  have etcd || need_apt+=(etcd-server)
  # Only the etcd load generator (crates/bench/etcd-load) needs protoc; goproxy-ha does not.
  have protoc || need_apt+=(protobuf-compiler)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages with services (openssh-server) must not start them on this machine.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; added_policy=1; fi
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  if [ "${added_policy:-0}" = 1 ]; then rm -f "$policy"; fi
fi

# Rust (stable) through rustup when no cargo is present.
if ! have cargo && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! have cargo; then
  echo "bootstrap: installing the stable Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
fi
