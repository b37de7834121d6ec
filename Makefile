# openai-proxy — the two set-up commands (README): `make run` and `make test`.
SWIFT ?= swift
DATA_DIR ?= ./data
## Release builds leave out Swift's run-time exclusivity checks: measured with bench/callgrind-worker.sh, they were
## 16 % of a worker's instructions per request (171,017 -> 144,150), almost all inside SwiftNIO. Debug builds, and
## so every test, keep them, and so does the fuzz build. See README, "Building".
RELEASE_FLAGS ?= -Xswiftc -enforce-exclusivity=unchecked

.PHONY: run test build release lint format fuzz bench bench-console screenshots clean

## Install what is missing, build in release, start the service on ./data.
run:
	@scripts/install-deps.sh run
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product openai-proxy
	OPENAI_PROXY_DATA_DIR=$(DATA_DIR) .build/release/openai-proxy serve

## Install what is missing, then run every test: lint, Swift tests, the Python end-to-end suite. The Swift tests
## start one throw-away PostgreSQL cluster (scripts/pg-scratch.sh) and fail, not skip, when they cannot.
test:
	@scripts/install-deps.sh test
	$(SWIFT) build --build-tests
	$(SWIFT) format lint --strict --recursive --parallel Package.swift Plugins Sources Tests
	OPENAI_PROXY_TEST_REQUIRE_POSTGRESQL=1 OPENAI_PROXY_BIN=$(CURDIR)/.build/debug/openai-proxy $(SWIFT) test --skip-build
	OPENAI_PROXY_BIN=$(CURDIR)/.build/debug/openai-proxy .venv/bin/python -m pytest -q Tests/e2e
	$(MAKE) fuzz FUZZ_SECONDS=60

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release $(RELEASE_FLAGS)

lint:
	$(SWIFT) format lint --strict --recursive --parallel Package.swift Plugins Sources Tests

format:
	$(SWIFT) format --in-place --recursive --parallel Package.swift Plugins Sources Tests

## libFuzzer over the request scanners for FUZZ_SECONDS, with AddressSanitizer (the console plugin's tool
## fails to link so and is not needed); a crash fails, its input lands in .build-fuzz/crash-*, and a plain
## build of the target replays it.
FUZZ_SECONDS ?= 300
fuzz:
	$(SWIFT) build -c release --product request-scanning-fuzz --scratch-path .build-fuzz \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
	mkdir -p .build-fuzz/corpus
	.build-fuzz/release/request-scanning-fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
		-artifact_prefix=.build-fuzz/ .build-fuzz/corpus Tests/Fuzz/corpus

## Benchmarks (not tests): openai-proxy against direct and nginx, see bench/run.sh.
bench:
	@scripts/install-deps.sh bench
	$(SWIFT) build -c release $(RELEASE_FLAGS)
	bench/run.sh

## How long the console's dashboard takes to paint with 50 keys and 10,000 request-log rows (release build).
bench-console:
	@scripts/install-deps.sh test
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product openai-proxy
	OPENAI_PROXY_BIN=$(CURDIR)/.build/release/openai-proxy .venv/bin/python bench/console_paint.py

## A PNG of every console page, desktop and phone, into docs/screenshots/ (see scripts/screenshots.py).
screenshots:
	@scripts/install-deps.sh screenshots
	$(SWIFT) build --product openai-proxy
	OPENAI_PROXY_BIN=$(CURDIR)/.build/debug/openai-proxy .venv/bin/python scripts/screenshots.py

clean:
	rm -rf .build
