# payment outbox: every target CI runs is here; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO      ?= go
SQLC    := $(GO) tool -modfile=$(CURDIR)/tools/go.mod sqlc
PKGS    := ./...

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

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

.PHONY: test
test: verify ## run every test against a real Postgres (DATABASE_URL, else a local cluster, else testcontainers)
	scripts/with-db $(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: test-short
test-short: ## the tests without the end-to-end and race detector
	scripts/with-db $(GO) test -short -count=1 $(PKGS)

.PHONY: run
run: ## bring up Postgres, gatewaysim, relay and api on local defaults
	scripts/run-local

.PHONY: clean
clean: ## remove built binaries and local clusters
	-scripts/localpg stop .localpg/run 2>/dev/null
	-scripts/localpg stop .localpg/test 2>/dev/null
	rm -rf bin .localpg .run
