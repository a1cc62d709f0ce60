# coevent: build, install, test, demo.  `make help` lists the targets.
# LUA_INTERP=/usr/bin/lua5.4 (what LuaRocks passes, see coevent-scm-1.rockspec):
# LUA is what that interpreter says it is, so LuaJIT is told from PUC Lua 5.1.
ifdef LUA_INTERP
  LUA := $(shell $(LUA_INTERP) -e 'print(jit and "jit" or _VERSION:match("%d+%.%d+"))')
endif
LUA ?= 5.4
ifeq ($(filter 5.1 5.3 5.4 jit,$(LUA)),)
  $(error LUA=$(LUA)$(if $(LUA_INTERP), (from $(LUA_INTERP))): one of 5.1, 5.3, 5.4, jit)
endif
PROFILE ?= release
CARGO ?= cargo
SHELL := /bin/bash

# LUA=5.4|5.3|5.1|jit -> the mlua feature, the interpreter and the build folder.
ifeq ($(LUA),jit)
  FEATURE := luajit
  LUABIN := luajit
  DIR := luajit
else
  FEATURE := lua$(subst .,,$(LUA))
  LUABIN := lua$(LUA)
  DIR := lua$(LUA)
endif
# The version in install paths: LuaJIT loads 5.1 modules from the 5.1 directories.
ABI := $(if $(filter jit,$(LUA)),5.1,$(LUA))
# BUILD_STD=1: std compiled for the module from its sources (rustup's rust-src),
# without its backtrace symbolizer and panic locations and with its size-optimized
# algorithms: a third smaller at the same speed. -Zbuild-std is unstable:
# RUSTC_BOOTSTRAP=1 lets the stable toolchain take it.
BUILD_STD ?= 0
ifeq ($(BUILD_STD),1)
  HOST := $(shell rustc -vV | sed -n 's/^host: //p')
  STD_ENV := RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Zlocation-detail=none
  STD_FLAGS := -Zbuild-std=std,panic_unwind -Zbuild-std-features=panic-unwind,backtrace-trace-only,optimize_for_size --target $(HOST)
  SO := target/$(DIR)/$(HOST)/$(PROFILE)/libcoevent.so
else
  SO := target/$(DIR)/$(PROFILE)/libcoevent.so
endif
# Where `make module` puts coevent.so: build/lua5.4, build/lua5.4-small, build/lua5.4-small-std-notls.
# UNGUARDED=1: the `unguarded` feature (Cargo.toml; docs/building.md), into build/<lua>-unguarded.
UNGUARDED ?= 0
# NGX=0|1: without or with coevent.ngx (the `ngx` feature: ngx.re on PCRE2, digests;
# docs/ngx.md; about 175 KB). With it by default, but in the size-tuned builds
# (PROFILE=small), which are for small footprints. Against the default: build/<lua>-nongx, -ngx.
NGX_DEFAULT := $(if $(filter small,$(PROFILE)),0,1)
NGX ?= $(NGX_DEFAULT)
comma := ,
# TLS=0: without sslhandshake (no libssl), into build/<lua>-notls (docs/building.md).
TLS ?= 1
FEATURES := $(FEATURE),module$(if $(filter 1,$(UNGUARDED)),$(comma)unguarded)$(if $(filter 1,$(TLS)),$(comma)tls)$(if $(filter 1,$(NGX)),$(comma)ngx)
OUT := build/$(DIR)$(if $(filter-out release,$(PROFILE)),-$(PROFILE))$(if $(filter 1,$(BUILD_STD)),-std)$(if $(filter 1,$(UNGUARDED)),-unguarded)$(if $(filter 1,$(TLS)),,-notls)$(if $(filter-out $(NGX_DEFAULT),$(NGX)),$(if $(filter 1,$(NGX)),-ngx,-nongx))
# Expanded only where used (`modules`), not on every make run.
RUST_SRC = $(shell rustc --print sysroot)/lib/rustlib/src/rust/library

# What the tests need from Debian: the interpreters the modules are tested on,
# dnsmasq as a real nameserver for the resolver tests, redis-server for the
# 10,000-connection test, memcached as a real UDP server for the datagram
# tests, valgrind for `make valgrind`; for the install tests
# (tests/install.rs) luarocks with the Lua headers it checks for even when a
# Makefile builds, lintian, and dpkg-dev (dpkg-shlibdeps, dpkg-architecture);
# libssl-dev and pkg-config to build TLS, openssl (s_server) and nginx for its tests;
# libpcre2-dev and python3-websockets for coevent.ngx (ngx.re links the system's PCRE2; tests/ngx.rs);
# curl, redis-tools and python3: the real clients of the example servers (tests/serve.rs).
DEBS := lua5.1 lua5.3 lua5.4 luajit dnsmasq-base redis-server memcached valgrind luarocks liblua5.1-0-dev liblua5.4-dev libluajit-5.1-dev lintian dpkg-dev libssl-dev pkg-config openssl nginx curl redis-tools python3 libpcre2-dev python3-websockets

# `make install`: the usual PREFIX and DESTDIR; LuaRocks sets the directories itself.
PREFIX ?= /usr/local
DESTDIR ?=
LUA_CMODULE_DIR ?= $(PREFIX)/lib/lua/$(ABI)
BINDIR ?= $(PREFIX)/bin
# Empty: no docs (LuaRocks keeps a rock's docs itself).
DOCDIR ?= $(PREFIX)/share/doc/coevent
DOCS := README.md $(sort $(wildcard docs/*.md))

FUZZ_SECONDS ?= 60

.PHONY: help all deps module modules size-modules install install-cpath uninstall rock deb runner demo test check fuzz bench bench-deps size clean

help:
	@echo "make demo            run the examples against a local HTTP server (vendored Lua, no system Lua needed)"
	@echo "make test            install what is missing ($(DEBS)), build, run every test"
	@echo "make module LUA=5.4  build build/lua5.4/coevent.so (LUA=5.4|5.3|5.1|jit)"
	@echo "  ... PROFILE=small  the size-tuned build, into build/lua5.4-small (install takes it too)"
	@echo "  ... TLS=0          without TLS (no libssl), into build/lua5.4-notls"
	@echo "  ... BUILD_STD=1    std rebuilt without its symbolizer (needs rust-src): a third smaller, build/lua5.4-std"
	@echo "  ... UNGUARDED=1    5.1/5.3/LuaJIT without mlua's allocation guards: faster, a raising finalizer aborts (build/luajit-unguarded)"
	@echo "make install LUA=5.4 module, runner and docs under PREFIX (/usr/local), DESTDIR honoured; make uninstall reverses it"
	@echo "make install-cpath LUA=5.4  only the module, into the first directory of that interpreter's package.cpath"
	@echo "make deb LUA=5.4     build/lua-coevent-5.4_<version>-1_<arch>.deb (LUA=5.4|5.1|jit; see docs/install.md)"
	@echo "luarocks make coevent-scm-1.rockspec   the module and runner into a LuaRocks tree"
	@echo "make runner          build target/release/coevent"
	@echo "make check           cargo fmt --check, clippy, and no import cycle among the modules"
	@echo "make valgrind        the Lua test scripts through lua5.4 under valgrind"
	@echo "make soak SOAK_SECONDS=600  the mixed workload for that long (default 60)"
	@echo "make adversary       the test scripts with threads started inside whatever runs (ADVERSARY=3)"
	@echo "make fuzz            run every fuzz target FUZZ_SECONDS (60) each"
	@echo "make size            build the size variants, smoke-test them, check the 512 KiB guard; sizes, RSS"
	@echo "make bench           compare with OpenResty, cqueues, luv, copas and a raw epoll floor (bench/RESULTS.md, bench/CALLGRIND.md)"

all: runner modules size-modules

runner:
	$(CARGO) build --release --bin coevent

# One .so per Lua ABI, each in its own target dir so builds do not evict each other.
# `cargo rustc --crate-type cdylib`: with the rlib beside it cargo drops LTO.
# PROFILE=small: the size-tuned profile of Cargo.toml (smaller, a little slower).
module:
	$(STD_ENV) $(CARGO) rustc --profile $(PROFILE) --lib --crate-type cdylib --no-default-features --features $(FEATURES) --target-dir target/$(DIR) $(STD_FLAGS)
	mkdir -p $(OUT)
	cp $(SO) $(OUT)/coevent.so

# One module per supported Lua ABI: what `make test` runs the scripts through.
modules:
	$(MAKE) module LUA=5.4
	$(MAKE) module LUA=5.3
	$(MAKE) module LUA=5.1
	$(MAKE) module LUA=jit

# The size variants, for `make size` (smoke run and 512 KiB guard), not `make test`.
# Without TLS (TLS=0): the smallest build is for minimal deployments.
size-modules:
	$(MAKE) module LUA=5.4 PROFILE=small TLS=0
	@if [ -d $(RUST_SRC) ]; then \
	  $(MAKE) module LUA=5.4 PROFILE=small BUILD_STD=1 TLS=0 && $(MAKE) module LUA=jit PROFILE=small BUILD_STD=1 TLS=0; \
	else echo "no rust-src (rustup component add rust-src): the BUILD_STD=1 modules not built"; fi

# install to a temporary name, then rename: a process that has the old file
# mapped keeps it intact (copying over it in place would change its pages).
PUT = put() { install -d "$$3" && install -m $$1 "$$2" "$$3/.$$4.tmp$$$$" && mv -f "$$3/.$$4.tmp$$$$" "$$3/$$4" && echo "installed $$3/$$4"; }

install: module runner
	@set -e; $(PUT); \
	put 0644 $(OUT)/coevent.so "$(DESTDIR)$(LUA_CMODULE_DIR)" coevent.so; \
	put 0755 target/release/coevent "$(DESTDIR)$(BINDIR)" coevent; \
	if [ -n "$(DOCDIR)" ]; then for f in $(DOCS); do \
	  case $$f in */*) d=/$${f%/*};; *) d=;; esac; put 0644 $$f "$(DESTDIR)$(DOCDIR)$$d" $${f##*/}; done; fi

# Removes what `make install` with the same variables put there. The runner is
# one for every LUA: uninstalling one version removes it.
uninstall:
	rm -f "$(DESTDIR)$(LUA_CMODULE_DIR)/coevent.so" "$(DESTDIR)$(BINDIR)/coevent"
	@if [ -n "$(DOCDIR)" ]; then \
	  for f in $(DOCS); do rm -fv "$(DESTDIR)$(DOCDIR)/$$f"; done; \
	  rmdir --ignore-fail-on-non-empty "$(DESTDIR)$(DOCDIR)/docs" "$(DESTDIR)$(DOCDIR)" 2>/dev/null || true; \
	fi

# The module alone, into the first directory of the interpreter's package.cpath
# that is a real path (on Debian the same as `make install`'s /usr/local/lib/lua/<v>).
install-cpath: module
	@dest=$$($(LUABIN) -e 'for p in package.cpath:gmatch("[^;]+") do if p:match("^/") and p:match("/%?%.so$$") then print((p:gsub("/%?%.so$$", ""))) return end end'); \
	test -n "$$dest" || { echo "no install directory in $(LUABIN)'s package.cpath"; exit 1; }; \
	set -e; $(PUT); put 0644 $(OUT)/coevent.so "$$dest" coevent.so

# What LuaRocks' `make` build type runs (coevent-*.rockspec): the module for the
# interpreter it passes as LUA_INTERP, and the runner; then `make install`.
rock: module runner

# A Debian binary package of the release module for one interpreter (packaging/deb.sh).
deb: module
	bash packaging/deb.sh $(LUA) $(OUT)/coevent.so build

demo: runner
	sh examples/demo.sh target/release/coevent

# Installs what is missing (as root, with apt), else says what to install.
deps:
	@missing=""; for b in $(DEBS); do dpkg -s $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS); \
	  else echo "missing:$$missing; install them (Debian: sudo apt-get install $(DEBS))"; exit 1; fi; \
	fi
	@# OpenResty's Lua module for the oracle test, unpacked privately (as root; without it the test says skipped).
	@if [ ! -f bench/.deps/openresty/usr/lib/nginx/modules/ngx_http_lua_module.so ] && [ "$$(id -u)" = 0 ]; then bash bench/deps.sh openresty; fi
	@# Debian's OpenResty client libraries for tests/ngx.rs, unpacked privately likewise.
	@if [ "$$(id -u)" = 0 ]; then bash tests/ngxdeps.sh; fi

# Ends with one summary line over every test binary: "N passed, M failed".
# The valgrind runs and the soak have targets of their own (below). The release
# runner is for tests/install.rs (LuaRocks and `make install` install it).
test: deps modules runner
	$(CARGO) build --bins
	@set -o pipefail; $(CARGO) test --workspace -- --include-ignored --skip valgrind:: --skip soak --skip size_variants:: 2>&1 | tee target/test.log; rc=$$?; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log; \
	exit $$rc

# Every fuzz target for FUZZ_SECONDS each, on stable Rust (ASAN=1: with AddressSanitizer).
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh

# The peers for the benchmark (Debian, as root). Never installs libnginx-mod-http-lua
# system-wide: it would replace Debian's luajit with OpenResty's (see bench/deps.sh).
bench-deps:
	bash bench/deps.sh

# About 20 minutes on 2 cores: bench/RESULTS.md (CPU times, syscalls, memory),
# then bench/CALLGRIND.md (instructions per round trip). BENCH_QUICK=1: a smoke
# run of the first alone.
bench: bench-deps modules
	bash bench/run.sh
	@if [ "$${BENCH_QUICK:-0}" != 1 ]; then bash bench/callgrind.sh; fi

# The size variants: one script through each (tests/lua.rs, mod size_variants) and the
# guard that the smallest modules stay under 512 KiB. Then the footprint: stripped
# sizes; the runner's idle RSS and memory per parked thread; with redis-server
# (on a unix socket, started here) memory per idle connection.
size: deps runner modules size-modules
	$(CARGO) test --test lua -- --ignored size_variants::
	@for f in build/*/coevent.so target/release/coevent; do printf '%8d bytes  %s\n' $$(stat -c %s $$f) $$f; done
	@dir=$$(mktemp -d); pid=; \
	if command -v redis-server >/dev/null; then \
	  redis-server --port 0 --unixsocket $$dir/redis.sock --save '' --appendonly no >/dev/null & pid=$$!; sock=$$dir/redis.sock; \
	  for i in $$(seq 100); do [ -S $$sock ] && break; sleep 0.05; done; \
	fi; \
	target/release/coevent bench/size.lua $$sock; rc=$$?; \
	[ -z "$$pid" ] || kill $$pid; rm -rf $$dir; exit $$rc

# Last, so fmt and clippy report too: no module of engine/src or src imports in a
# circle (tools/import-cycles.py; -v lists every file's edges).
check:
	$(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 tools/import-cycles.py engine/src src

clean:
	$(CARGO) clean
	rm -rf build

# Reliability (tests/faults.rs). `make valgrind`: the Lua test scripts (tests/lua,
# tests/lua/faults and tests/lua/tls) through lua5.4 and build/lua5.4/coevent.so under valgrind,
# failing on any error it reports or a definite leak. `make soak SOAK_SECONDS=600`:
# the mixed workload of tests/soak through the runner and LuaJIT against redis-server and the peer (not SECONDS:
# bash, the SHELL here, keeps its own SECONDS).
.PHONY: valgrind soak adversary
SOAK_SECONDS ?= 60
ADVERSARY ?= 3

valgrind:
	@for b in valgrind lua5.4; do command -v $$b >/dev/null || { echo "$$b is missing (Debian: apt-get install $$b)"; exit 1; }; done
	$(MAKE) module LUA=5.4
	COEVENT_VALGRIND=1 $(CARGO) test --test faults -- --ignored --show-output lua54:: valgrind::
	COEVENT_VALGRIND=1 $(CARGO) test --test tls -- --ignored --show-output lua54::

# The test scripts with tests/lua/harness.lua's adversary, which starts light
# threads inside whatever runs: from a finalizer at each collection, and on
# LuaJIT from a debug hook every ADVERSARY VM instructions (docs/testing.md).
adversary: deps modules
	COEVENT_ADVERSARY=$(ADVERSARY) $(CARGO) test --test lua --test dns --test faults --test ngx --test pool --test tls -- --include-ignored --skip valgrind:: --skip soak --skip size_variants::

soak:
	@for b in redis-server luajit; do command -v $$b >/dev/null || { echo "$$b is missing (Debian: apt-get install $$b)"; exit 1; }; done
	$(MAKE) module LUA=jit
	COEVENT_SOAK_SECONDS=$(SOAK_SECONDS) $(CARGO) test --test faults -- --ignored soak:: --nocapture
