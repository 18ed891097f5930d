# zrep — see README.md. Every target works on a fresh Debian machine with Go;
# the integration tests and the demo need root, zfs-fuse and openssh-server
# (.ci/run installs them).

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
BIN       := bin/zrep-stdinserver
FUZZTIME  ?= 20s
# zfs, zpool and sshd live in the sbin directories.
export PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin

.PHONY: all build test test-short test-openzfs openzfs-shell vet fmt-check fuzz bench-rpc bench-pull soak demo clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/zrep-stdinserver

# What CI runs (through .ci/run): formatting, vet, and every test with the
# race detector. Integration tests skip without zfs-fuse or sshd unless
# ZREP_REQUIRE_ZFS=1 / ZREP_REQUIRE_SSHD=1, and the promtool and
# systemd-analyze checks without those tools unless ZREP_REQUIRE_TOOLS=1;
# .ci/run sets all three.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 30m ./...

# The OpenZFS lab (root; see scripts/openzfs-vm): the test packages that use
# zfs or sshd, run as root inside a qemu VM with Debian's OpenZFS $(ZFS)
# kernel module (2.1 or 2.3), nothing skipped. The first run builds the
# VM image (15-30 minutes) into /var/cache/zrep; later runs boot it in seconds.
ZFS ?= 2.3
test-openzfs:
	scripts/openzfs-vm $(ZFS) test

# A root shell in the OpenZFS $(ZFS) VM (started if needed, stopped after
# the shell if it was started for it).
openzfs-shell:
	scripts/openzfs-vm $(ZFS) shell

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Each fuzz target for FUZZTIME (default 20s). A failing target does not
# stop the others; the failures are listed at the end.
fuzz:
	@failed=""; for pkg in ./rpc ./api ./policy ./authkeys ./zfs ./nvlist ./sendstream ./resumetoken ./internal/printable ./internal/cparse; do \
	  for target in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || failed="$$failed $$pkg:$$target"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (inputs under PKG/testdata/fuzz)"; exit 1; fi

# Streams 4 GiB through the rpc layer between two processes and through a
# plain cat relay over the same kind of pipes; the last line is ratio=X.XX.
bench-rpc:
	$(GO) build -o bin/rpcbench ./bench/rpcbench
	bin/rpcbench -size 4GiB -rounds 3

# Replicates 1 GiB through OpenSSH with pull and with ssh ... zfs send | zfs recv
# on the same zfs-fuse pools (ratio=X.XX) with serve's peak memory, a
# --bwlimit pull, 8 sources at once next to one (sources8/one=), where zfs
# has them (OpenZFS) compressible data sent without and with -L -e -c
# (lec/plain bytes= time=), and nothing-to-do pulls over 200 datasets and 2,000 snapshots next to a bare
# ssh handshake and zfs list (noop200/handshake=, noop2000/list=). Needs
# root; a part alone: go test ./integration -run 'TestBenchPull/scale' -args -bench-pull.
bench-pull:
	@mkdir -p bin
	$(GO) test -count=1 -timeout 60m -run '^TestBenchPull$$' ./integration/ -args -bench-pull -bench-report $(CURDIR)/bin/bench-pull.txt
	@echo; cat bin/bench-pull.txt

# Ten minutes of pulls killed at random moments (the puller, the source's
# serve, ssh), then a clean run: everything complete and guid-verified, no
# process, descriptor or temporary file left. Needs root. SOAK=10m.
SOAK ?= 10m
soak:
	$(GO) test -v -count=1 -timeout 60m -run '^TestSoak$$' ./integration/ -args -soak -soak-duration $(SOAK)

# The quick start: two file-backed pools, the embedded sshd, a full and an
# incremental pull. Needs root; installs zfs-fuse if missing.
demo: build
	scripts/demo.sh

clean:
	rm -rf bin
