# camd: make run starts the daemon on the embedded default; make test runs
# every test (installing what they need on Debian).

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# UPDATE_KEYS: minisign public keys (comma-separated) trusted to sign the
# update feed, replacing update/keys/trusted.pub (docs/updates.md, "Keys").
UPDATE_KEYS ?=
LDFLAGS := -s -w -X github.com/camd-project/camd/device.Version=$(VERSION) \
	$(if $(UPDATE_KEYS),-X github.com/camd-project/camd/update.BuildKeys=$(UPDATE_KEYS))
# Packages with goroutines run under the race detector.
RACE_PKGS := ./media/... ./device/... ./discovery/... ./board/... ./storage/... ./network/...

.PHONY: run build test deps vet race unit bench lint staticcheck fuzz tidy-check clean cross install

run: build
	./bin/camd run --data ./data

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/camd ./cmd/camd
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/camctl ./cmd/camctl

deps:
	./scripts/install-deps.sh

test: deps lint race unit

# The lean embedded builds' tags (scripts/cross.sh): their files are
# vetted and their tests run here, since make unit builds without them.
LEAN_TAGS := camd_nocapture,camd_notzdata,camd_nometrics,camd_noqrscan

vet:
	$(GO) vet ./...
	$(GO) vet -tags $(LEAN_TAGS) ./...
	$(GO) test -count=1 -tags $(LEAN_TAGS) ./device/metrics ./network

# The whole suite; tools the tests need must be present (no skipping).
# The app's screenshots (each screen at 360×740 and 1280×800) are kept
# in artifacts/screenshots for people to look at. The e2e package takes
# about 12 minutes on an idle 2-core machine and 16 beside stress-ng
# --cpu 2: its timeout leaves room for a machine busier than that.
SCREENSHOTS := $(CURDIR)/artifacts/screenshots
unit:
	mkdir -p $(SCREENSHOTS)
	CAMD_REQUIRE_TOOLS=1 CAMD_SCREENSHOTS=$(SCREENSHOTS) $(GO) test -count=1 -timeout 45m ./...

race:
	$(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

tidy-check:
	$(GO) mod tidy -diff

bench: build
	./scripts/bench.sh

# Embedded builds: linux/arm64 and linux/armv7 with the cgo codecs (and an
# armv7-lean build without V4L2/ALSA capture or the tz database),
# linux/armv6 and linux/mipsle (soft float) without cgo (passthrough
# only); stripped, version-stamped, sizes printed. See docs/porting.md.
cross:
	VERSION=$(VERSION) UPDATE_KEYS=$(UPDATE_KEYS) ./scripts/cross.sh

# Installs camd into DESTDIR (a root filesystem being built, or /) with
# FHS paths: /usr/bin/camd, /etc/camd/camd.yaml, /var/lib/camd, and both
# the init system's file: INIT=systemd (a unit) or INIT=busybox (an init
# script). BIN picks the binary (default: this machine's build; e.g.
# bin/linux-armv7/camd after make cross).
BIN  ?= bin/camd
INIT ?= systemd
install:
	INIT=$(INIT) ./packaging/install.sh "$(BIN)" "$(DESTDIR)"

# go vet, go mod tidy -diff, staticcheck and gofmt; make test runs it.
lint: vet tidy-check staticcheck
	gofmt -l . | tee /dev/stderr | (! read -r _)
	./scripts/fuzz.sh --check-corpus

# staticcheck at one version (2026.2.2, which knows Go 1.26), installed
# into GOBIN when that version is not there yet.
STATICCHECK_VERSION := v0.8.2
STATICCHECK = $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)/staticcheck
staticcheck:
	@$(STATICCHECK) -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION:v%=%))' || \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...

# Every fuzz target for FUZZTIME each, from its seed corpus in the
# package's testdata/fuzz (scripts/fuzz.sh).
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

clean:
	rm -rf bin
