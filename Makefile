# Exporter: build, run and test. `make help` lists the targets.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 30s
# Tools the tests need, pinned; `make tools` installs what is missing.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
GOLANGCI_VERSION := v2.15.0
export PATH := $(BIN):$(PATH)

.PHONY: help build run test test-short lint fuzz bench bench-e2e bench-getmap bench-api web web-check demo-data demo-data-check tools tidy clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/exporter (installs the TurboJPEG headers where missing)
	@BIN=$(BIN) GO=$(GO) scripts/tools.sh --build
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/exporter ./cmd/exporter

run: build ## run everything in one process with embedded Redis and ./data (installs redis-server where missing; prints the URL)
	@BIN=$(BIN) GO=$(GO) scripts/tools.sh --run
	$(BIN)/exporter all

test: tools ## install missing test tools, then run every test with the race detector
	$(GO) test -race -count=1 -timeout 20m ./...

test-short: ## run the unit tests only (no Redis, MinIO or GDAL)
	$(GO) test -short -count=1 ./...

lint: ## gofmt, go vet, golangci-lint (staticcheck, errcheck, errorlint, depguard), promtool, dashboard JSON
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt wants to change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@command -v golangci-lint >/dev/null || GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	golangci-lint run ./...
	@command -v promtool >/dev/null || { echo "promtool not found: run make tools (Debian package prometheus)"; exit 1; }
	promtool check config monitoring/prometheus/prometheus.yml
	promtool check rules monitoring/prometheus/rules/*.yml
	@for f in monitoring/grafana/dashboards/*.json; do python3 -m json.tool "$$f" >/dev/null || { echo "$$f: invalid JSON"; exit 1; }; done

fuzz: ## run every fuzz target for FUZZTIME (default 30s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10x $$pkg || exit 1; \
	  done; \
	done

bench: ## run every benchmark once, to keep them compiling (BENCHTIME=1s for numbers)
	$(GO) test -run '^$$' -bench . -benchtime $${BENCHTIME:-1x} ./...

bench-e2e: ## end-to-end throughput and memory against mapproxy-seed, loopback only (BENCH_LARGE=1: 1M tiles)
	scripts/bench-e2e.sh

bench-getmap: ## MapProxy's CPU per GetMap for each way of writing the WMS source's request, same bboxes, same pixels checked, loopback only (2 to 4 min)
	/usr/bin/python3 scripts/bench_getmap.py

bench-api: ## the API under load: requests/s, p50, p99 per route against /healthz with wrk, real Redis, loopback only (1.5 to 3.5 min)
	scripts/bench-api.sh

web: ## rebuild the web tool's and the API reference's bundles (trigger/web/dist, trigger/apidocs/dist, committed and embedded)
	cd trigger/web && npm ci --no-audit --no-fund && npm run build
	cd trigger/apidocs && npm ci --ignore-scripts --no-audit --no-fund && npm run build

web-check: ## type-check the web tool and fail if a committed bundle is not what its sources build
	cd trigger/web && npm ci --no-audit --no-fund && npm run verify
	cd trigger/apidocs && npm ci --ignore-scripts --no-audit --no-fund && npm run verify

demo-data: ## regenerate the demo map's Natural Earth files (source/world, committed and embedded) from npm's world-atlas; needs npm and node
	cd source/world && $(GO) generate

demo-data-check: demo-data ## fail if the committed demo map files are not what the generator makes
	git diff --exit-code -- source/world

tools: ## install redis-server, the MinIO server, GDAL and wrk where missing
	@MINIO_VERSION=$(MINIO_VERSION) BIN=$(BIN) GO=$(GO) scripts/tools.sh

tidy: ## go mod tidy
	$(GO) mod tidy

clean: ## remove build output and local packages
	rm -rf $(BIN)/exporter ./data
