# payment outbox: every target CI runs is here; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO      ?= go
SQLC    := $(GO) tool -modfile=$(CURDIR)/tools/go.mod sqlc
PKGS    := ./...

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build api, relay and gatewaysim into bin/
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/...

.PHONY: generate
generate: ## regenerate the sqlc code from db/
	cd db && $(SQLC) generate

.PHONY: verify
verify: ## check formatting, vet, and that generated code is current
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd db && $(SQLC) diff
	$(GO) mod tidy -diff

.PHONY: verify-deploy
verify-deploy: ## build every Kubernetes overlay and check it against the API types; check deploy/compose.yaml
	@out=$$(cd deploy/k8s && gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed in deploy/k8s:"; echo "$$out"; exit 1; fi
	cd deploy/k8s && $(GO) vet ./... && $(GO) mod tidy -diff && $(GO) test -count=1 ./...
	@if command -v docker-compose >/dev/null 2>&1; then docker-compose -f deploy/compose.yaml config -q; \
	elif docker compose version >/dev/null 2>&1; then docker compose -f deploy/compose.yaml config -q; \
	else echo "verify-deploy: no docker-compose or docker compose; deploy/compose.yaml not checked"; fi

.PHONY: images
images: ## build the api, relay and gatewaysim images (static binaries on scratch; pulls nothing)
	deploy/images/build

.PHONY: postgres-image
postgres-image: ## build payment-outbox/postgres:15 from Debian packages unless present (root; FORCE=1 rebuilds)
	deploy/images/build-postgres-image $(if $(FORCE),-f)

# The container tests (outboxtest, examples/checkout) skip only when no
# Docker engine answers. outboxtest builds the api, relay and gatewaysim
# images from the source itself; their Postgres image is built here, once.
.PHONY: test-images
test-images: ## build the Postgres image the container tests run, where a Docker engine answers
	@if docker info >/dev/null 2>&1; then \
		[ -n "$$OUTBOXTEST_POSTGRES_IMAGE" ] || deploy/images/build-postgres-image; \
	else echo "test-images: no Docker engine answers; the container tests (outboxtest) will skip"; fi

.PHONY: setup
setup: ## install what the tests need and the machine lacks (where it allows; else say what)
	scripts/setup test

# The console's browser tests (internal/consoletest) drive Debian's chromium;
# they skip without it, except under CI=true, where they fail.
.PHONY: browser
browser: ## install chromium for the console's browser tests where missing (apt-get, as root)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser: installing chromium"; apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else echo "browser: no chromium and cannot apt-get it; the console's browser tests will skip (fail under CI=true)"; fi

.PHONY: console-screenshots
console-screenshots: browser ## refresh docs/console-overview.png and docs/console-payment.png from the browser test
	scripts/with-db env CONSOLE_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run TestConsoleInBrowser ./internal/consoletest/

.PHONY: test
test: setup verify verify-deploy test-images browser ## run every test against a real Postgres (DATABASE_URL, else a local cluster, else testcontainers), the console in chromium, and examples/checkout
	scripts/with-db $(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) --no-print-directory test-example

.PHONY: test-example
test-example: ## examples/checkout: a checkout in its own module, tested against the outbox in Docker (outboxtest)
	cd examples/checkout && $(GO) vet ./... && $(GO) mod tidy -diff && $(GO) test -count=1 -timeout 15m ./...

.PHONY: chaos
chaos: ## the chaos suite: 2000 payments, gateway faults, relay kills and pauses, Postgres restarts, failover, lost COMMIT acks; fails on any violation (ARGS=-h for knobs)
	$(GO) run ./cmd/chaos $(ARGS)

# Not part of `make test`: each target runs for FUZZTIME (default 10m).
.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 10m; FUZZ=regexp picks some, FUZZJOBS=n at once); reports executions, new inputs and failing inputs
	scripts/with-db env FUZZTIME=$(or $(FUZZTIME),10m) FUZZ='$(FUZZ)' FUZZJOBS=$(or $(FUZZJOBS),1) FUZZFLAGS='$(FUZZFLAGS)' GO=$(GO) scripts/fuzz

.PHONY: test-short
test-short: ## the tests without the end-to-end and race detector
	scripts/with-db $(GO) test -short -count=1 $(PKGS)

.PHONY: run
run: ## bring up Postgres, gatewaysim, relay and api on local defaults
	scripts/setup run
	scripts/run-local

.PHONY: bench
bench: ## measure api vs pgbench, relay drain, e2e latency on a fresh local cluster (ARGS=-quick; docs/benchmarks.md)
	scripts/bench $(ARGS)

.PHONY: clean
clean: ## remove built binaries and local clusters
	-scripts/localpg stop .localpg/run 2>/dev/null
	-scripts/localpg stop .localpg/test 2>/dev/null
	rm -rf bin .localpg .run .build
