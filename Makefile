SHELL := /bin/bash
# Sluice: `make run` (demo on virtual devices) and `make test` (all tests).
# Both install what they need on a fresh Debian 12 machine (run as root).

CARGO ?= cargo
SLUICED := target/release/sluiced

.PHONY: run test deps build pgo lint bench clean

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release --bin sluiced

# The embedded default: a pcap replay port cross-connected to a sink, live counters
# for 5 seconds. Hugepages when they can be had, else --no-huge with a warning.
run: build
	@if scripts/hugepages.sh 512; then \
		$(SLUICED) --demo; \
	else \
		echo "WARNING: no hugepages: running with --no-huge (slower; fine for a demo)" >&2; \
		$(SLUICED) --demo --no-huge; \
	fi

test: deps
	@scripts/p4rt-clients.sh
	$(CARGO) test --workspace --no-fail-fast 2>&1 | tee target-test.log; \
	status=$${PIPESTATUS[0]}; \
	echo "== summary =="; \
	awk '/^test result:/ {p+=$$4; f+=$$6; i+=$$8} END {printf "%d passed, %d failed, %d skipped\n", p, f, i}' target-test.log; \
	rm -f target-test.log; \
	exit $$status

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# A profile-guided release build in target/pgo/release/ (scripts/pgo.sh; ~10 minutes).
pgo: deps
	@scripts/pgo.sh

bench: build
	perf/bench_xconnect.sh

clean:
	$(CARGO) clean
