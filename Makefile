# camd: make run starts the daemon on the embedded default; make test runs
# every test (installing what they need on Debian).

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/camd-project/camd/device.Version=$(VERSION)
# Packages with goroutines run under the race detector.
RACE_PKGS := ./media/... ./device/...

.PHONY: run build test deps vet race unit bench lint tidy-check clean

run: build
	./bin/camd run --data ./data

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/camd ./cmd/camd
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/camctl ./cmd/camctl

deps:
	./scripts/install-deps.sh

test: deps vet tidy-check race unit

vet:
	$(GO) vet ./...

# The whole suite; tools the tests need must be present (no skipping).
unit:
	CAMD_REQUIRE_TOOLS=1 $(GO) test -count=1 ./...

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

tidy-check:
	$(GO) mod tidy -diff

bench: build
	./scripts/bench.sh

lint: vet tidy-check
	gofmt -l . | tee /dev/stderr | (! read -r _)

clean:
	rm -rf bin
