# goproxy-ha: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

LISTEN ?= 127.0.0.1:8080
RAFT_LISTEN ?= 127.0.0.1:7080
DATA_DIR ?= ./data
UPSTREAM ?= https://proxy.golang.org
CARGO ?= cargo
# One-shot builds (CI, make test) gain nothing from incremental state but its disk space.
export CARGO_INCREMENTAL ?= 0
# Where cargo puts binaries, as cargo itself says (CARGO_TARGET_DIR, build.target-dir in a
# cargo config, or ./target); evaluated when a recipe runs, after deps-build installed cargo.
TARGET_DIR ?= $(or $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'),$(CARGO_TARGET_DIR),target)

.PHONY: run build test lint unit compose-smoke compose-certs image image-vcs bench fuzz clean deps-build deps-test deps-bench \
	lab-up lab-down failover-bench chaos deps-lab scale

## run: build and start one node on embedded storage (http://$(LISTEN), data in $(DATA_DIR))
run: deps-build
	$(CARGO) build --release --locked -p goproxy-ha
	$(TARGET_DIR)/release/goproxy-ha serve --listen $(LISTEN) --raft-listen $(RAFT_LISTEN) \
		--data-dir $(DATA_DIR) --upstream $(UPSTREAM)

build: deps-build
	$(CARGO) build --release --locked

## test: install test dependencies (golang-go, ...), check formatting and lints, run all tests,
## then the compose smoke test (image from the test build, VIP failover in docker)
test: deps-test lint unit compose-smoke

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

## compose-smoke: three containers from an offline image; fetch via the VIP, kill the holder, fetch again
compose-smoke:
	$(CARGO) build --locked -p goproxy-ha
	cluster/compose-smoke.sh $(TARGET_DIR)/debug/goproxy-ha

## compose-certs: the compose cluster's CA and node/admin certificates in cluster/compose/tls
compose-certs:
	$(CARGO) build --release --locked -p goproxy-ha
	$(TARGET_DIR)/release/goproxy-ha certs init --dir cluster/compose/tls
	for n in 1 2 3; do $(TARGET_DIR)/release/goproxy-ha certs issue --dir cluster/compose/tls --node $$n; done
	$(TARGET_DIR)/release/goproxy-ha certs issue --dir cluster/compose/tls --admin ops

## image: the release binary in a FROM-scratch image (goproxy-ha:latest), built offline
image: deps-build
	$(CARGO) build --release --locked -p goproxy-ha
	cluster/image/build.sh $(TARGET_DIR)/release/goproxy-ha goproxy-ha:latest

## image-vcs: goproxy-ha:vcs, the image plus go, git and ssh for direct routes (private modules)
image-vcs: deps-build
	$(CARGO) build --release --locked -p goproxy-ha
	command -v go >/dev/null && command -v ssh >/dev/null || apt-get install -y -qq golang-go git openssh-client
	cluster/image/build.sh --vcs $(TARGET_DIR)/release/goproxy-ha goproxy-ha:vcs
	docker run --rm --entrypoint /usr/bin/go goproxy-ha:vcs version
	docker run --rm --entrypoint /usr/bin/git goproxy-ha:vcs --version

## lab-up: three nodes, a client and an upstream in network namespaces on one bridge, the VIP
## 10.99.0.100 on the leader; stays up until lab-down (see cluster/LAB.md)
lab-up: deps-lab
	$(CARGO) build --release --locked -p goproxy-ha -p goproxy-lab
	$(TARGET_DIR)/release/goproxy-lab up --tag gplab

## lab-down: delete the lab's namespaces and every process in them
lab-down:
	@if [ -x $(TARGET_DIR)/release/goproxy-lab ]; then $(TARGET_DIR)/release/goproxy-lab down --tag gplab; \
	else for ns in $$(ip netns list | awk '/^gplab-/{print $$1}'); do \
		ip netns pids $$ns | xargs -r kill -9; ip netns del $$ns; done; fi

## failover-bench: kill the VIP holder >= 20 times (power loss, crash) plus partitions and SIGSTOP,
## client probing every 10 ms, holders sampled every 5 ms; then keepalived on the same namespaces
FAILOVER_ARGS ?=
failover-bench: deps-lab
	$(CARGO) build --release --locked -p goproxy-ha -p goproxy-lab
	$(TARGET_DIR)/release/goproxy-lab failover-bench --tag gpfb $(FAILOVER_ARGS)

## chaos: every chaos scenario (named faults, workload through the VIP, one check per invariant,
## real go builds) in the namespace lab, then the summary table; CHAOS_ARGS="--seed N" replays a run
CHAOS_ARGS ?=
chaos: deps-test
	$(CARGO) build --release --locked -p goproxy-ha -p goproxy-lab -p chaos-tests
	$(TARGET_DIR)/release/goproxy-chaos $(CHAOS_ARGS)

## bench: cache hits vs nginx, 3-node fill latency and per-node hits vs a single node, cold fills
## with checksum verification on vs off, hits with client access control (HTTPS, tokens, audit)
## on vs off, index commit throughput vs etcd 3.4 (all ratios measured in the same run;
## BENCH_ONLY=hits|engine-rows|cluster|verify|secure|commit runs one part, BENCH_SECONDS sets each
## load's length (5), BENCH_COMMIT_WRITERS the commit writers (64); goproxy.cn's engine
## is measured beside the hits, cold go mod downloads and concurrent misses when
## ../shared/anchors/goproxy_build.sh has built it)
bench: deps-bench
	$(CARGO) build --release --locked -p goproxy-ha -p goproxy-bench
	$(CARGO) build --release --locked --manifest-path crates/bench/etcd-load/Cargo.toml --target-dir $(TARGET_DIR)
	$(TARGET_DIR)/release/goproxy-bench

## scale: generate indexes of SCALE_LEVELS entries (blobs to match) and print the curve: RSS,
## start-up, status and hit latency, snapshot size and build time, two wiped nodes' rejoin
## (snapshot install, blob catch-up); 1M entries take a while and several GB of disk
## (SCALE_ARGS="--work-dir DIR --json FILE" puts them elsewhere and keeps the figures)
SCALE_LEVELS ?= 10000,100000,1000000
SCALE_ARGS ?=
scale: deps-build
	$(CARGO) build --release --locked -p goproxy-ha -p goproxy-scale
	$(TARGET_DIR)/release/goproxy-scale --levels $(SCALE_LEVELS) $(SCALE_ARGS)

## fuzz: the path-codec fuzz target (cargo-fuzz; nightly features enabled via RUSTC_BOOTSTRAP)
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd crates/protocol/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run path_codec -- -max_total_time=$${FUZZ_SECONDS:-60}

deps-build:
	@scripts/bootstrap.sh build

deps-test:
	@scripts/bootstrap.sh test

deps-bench:
	@scripts/bootstrap.sh bench

deps-lab:
	@scripts/bootstrap.sh lab

clean:
	$(CARGO) clean
