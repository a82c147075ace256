# shoal — one static binary; everything here needs only Go.

GO       ?= go
BIN      ?= bin/shoal
FUZZTIME ?= 30s
BENCHTIME ?= 1s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: all build cross test test-noasm test-arm64 test-hf bench bench-net bench-protocol bench-torch bench-blas bench-exchange demo fuzz lint clean

all: build

## build: the shoal binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/shoal

## test: vet, then every test on the fast path and on the pure-Go (noasm) path
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory test-noasm

## test-noasm: the tensor and gradient tests on the pure-Go kernels (gradient/exchange, which has no kernel of its own and trains slowly there, in -short mode)
test-noasm:
	$(GO) vet -tags noasm ./tensor/... ./gradient/...
	$(GO) test -count=1 -tags noasm $$($(GO) list ./tensor/... ./gradient/... | grep -v /gradient/exchange)
	$(GO) test -count=1 -tags noasm -short ./gradient/exchange/

## test-arm64: the determinism tests built for arm64 and run under qemu-user (installs it if missing)
test-arm64:
	scripts/test-arm64.sh

## test-hf: GPT-2 weights to and from an independent PyTorch implementation in Hugging Face's layout, losses compared (installs python3-torch)
test-hf:
	scripts/test-hf.sh

## bench: kernel and training benchmarks (GFLOP/s, tokens/s, MB/s)
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./tensor/... ./gradient/... ./checkpoint/...

## bench-net: blob fetch as a fraction of the raw libp2p stream (TCP, QUIC), gossip delivery and amplification (p2p)
bench-net:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./p2p/...

## bench-protocol: the protocol core's cost per step per peer, the simulator's speed, and coordinator messages/s through one tracker and a raft group of three
bench-protocol:
	$(GO) test -run '^$$' -bench . -benchtime 3x -benchmem ./simulations/...
	$(GO) test -run '^$$' -bench Coordinator -benchtime 2s ./tracker/group/

## bench-torch: gpt-tiny and gpt-small training speed against PyTorch on its fastest OpenBLAS kernel for this CPU (installs python3-torch)
bench-torch:
	scripts/bench-torch.sh

## bench-blas: sgemm GFLOP/s of shoal and of OpenBLAS's fastest kernel for this CPU, side by side (installs libopenblas0-pthread)
bench-blas:
	scripts/bench-blas.sh

## bench-exchange: gradient exchange methods, bytes sent against final loss (several minutes)
bench-exchange: build
	$(BIN) bench exchange

## demo: set up and run the main job on the built-in default
demo: build
	$(BIN) demo

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## cross: the binary built for every platform a volunteer may run (linux, darwin and windows on amd64 and arm64)
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
cross:
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "build $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/shoal-$$os-$$arch$$ext ./cmd/shoal; \
	done

## lint: formatting and vet
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags noasm ./...

clean:
	rm -rf bin
