# egret: run Apache Heron topologies on one machine and on Mesos.
# `make` builds bin/egret and the simulated Heron release; `make run` and `make test` are the
# README's two commands.
GO      ?= go
GOFLAGS ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
TEST_TIMEOUT ?= 14m

.PHONY: all build sim-release run test vet bench bench-compare chaos proto dist zookeeper clean

all: build sim-release

build:
	$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o bin/egret ./cmd/egret

# The simulated Heron release (issue 5): build/heron-core-sim.tar.gz, copied beside bin/egret.
sim-release: build
	bash scripts/sim-release.sh

run: all
	bash scripts/run-example.sh

zookeeper:
	bash scripts/ensure-zookeeper.sh

vet:
	$(GO) vet ./...

test: all zookeeper vet
	EGRET_BIN=$(CURDIR)/bin/egret EGRET_SIM_RELEASE=$(CURDIR)/bin/heron-core-sim.tar.gz \
		$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

bench: all
	$(GO) run ./bench

bench-compare: all
	bash scripts/bench-compare.sh

chaos: all zookeeper
	EGRET_BIN=$(CURDIR)/bin/egret EGRET_SIM_RELEASE=$(CURDIR)/bin/heron-core-sim.tar.gz \
		$(GO) run ./test/chaos $(CHAOS_FLAGS)

proto:
	bash scripts/proto.sh

dist:
	VERSION=$(VERSION) bash scripts/dist.sh

clean:
	rm -rf bin build dist
