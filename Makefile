# Latchkey. `make run` serves a demo on http://localhost:8080; `make test`
# runs every test (PostgreSQL tests use 127.0.0.1:5432 or a throwaway
# cluster started from the installed server binaries).

GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Two packages at a time: the end-to-end and storage suites each start
# servers and databases; more parallelism only adds contention on 2 cores.
TESTFLAGS ?= -p 2 -count=1 -timeout 15m

.PHONY: all build run test test-short bench lint fmt clean

all: lint test

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/latchkey ./cmd/latchkey

run: build
	$(BIN)/latchkey serve --demo

test:
	$(GO) test $(TESTFLAGS) ./...

# Skips the PostgreSQL and end-to-end suites' slow parts; not what CI runs.
test-short:
	$(GO) test -short ./...

bench:
	./scripts/bench.sh
	./scripts/bench-admin-search.sh

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
