#!/usr/bin/env bash
# coevent benchmark: coevent (LuaJIT, Lua 5.4) side by side with cqueues, luv,
# copas + LuaSocket, OpenResty's cosocket (nginx + lua module) and a raw Rust
# epoll client (the floor), in one run, on 127.0.0.1 only.
#
#   bash bench/run.sh              full run (about 10-15 min), writes bench/RESULTS.md
#   BENCH_QUICK=1 bash bench/run.sh  smoke run of a few seconds, writes bench/out/RESULTS.quick.md
#
# Needs: build/luajit/coevent.so and build/lua5.4/coevent.so (`make modules`), the
# peers (`bash bench/deps.sh`, as root), cargo (builds bench/floor).
#
# Workloads
#  1. PING: N connections ("light threads") x M round trips of "PING\r\n" ->
#     "+PONG\r\n" against a redis-server started here. Cases are N:M pairs
#     (BENCH_CASES). Measured per client process: requests/s (the client's own
#     clock around its loop), CPU per round trip from wait4's rusage of the
#     client process (user and system; the total is exact, the split is the
#     kernel's tick-sampled one), peak RSS. nginx: the worker's /proc/PID/stat
#     utime/stime and /proc/PID/schedstat run time, before and after the request.
#  2. syscalls: the same with N=BENCH_STRACE_N, M=BENCH_STRACE_M under
#     `strace -c -f` (nginx: strace attached to the worker for the request).
#  3. payloads: one socket reading SIZE bytes K times with a byte count
#     (request "GET SIZE"), and K connections each reading one payload with '*a'
#     (request "ALL SIZE", the server closes after it), from a local Rust server.
#
# Environment: BENCH_QUICK, BENCH_CASES ("N:M ..."), BENCH_CLIENTS, BENCH_STRACE_N,
# BENCH_STRACE_M, BENCH_PAYLOADS ("SIZE:K ..."), BENCH_REPS (runs of each PING case
# of at most 200000 round trips; the median is kept), BENCH_OUT (the Markdown file),
# BENCH_TIMEOUT (seconds per client run).
#
# The two coevent modules are copied at the start (bench/out/raw/mods/), so a
# `make modules` running meanwhile cannot change them under the run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  CASES=${BENCH_CASES:-"1:200 100:20 1000:2"}
  STRACE_N=${BENCH_STRACE_N:-10}
  STRACE_M=${BENCH_STRACE_M:-20}
  PAYLOADS=${BENCH_PAYLOADS:-"65536:20 1048576:4"}
  OUTMD=${BENCH_OUT:-bench/out/RESULTS.quick.md}
  REPS=${BENCH_REPS:-1}
else
  CASES=${BENCH_CASES:-"1:10000 100:1000 1000:1000 10000:100"}
  STRACE_N=${BENCH_STRACE_N:-100}
  STRACE_M=${BENCH_STRACE_M:-200}
  PAYLOADS=${BENCH_PAYLOADS:-"65536:2000 1048576:200"}
  OUTMD=${BENCH_OUT:-bench/RESULTS.md}
  REPS=${BENCH_REPS:-3}
fi
CLIENTS=${BENCH_CLIENTS:-"floor coevent-luajit coevent-lua5.4 openresty cqueues luv copas"}
TMO=${BENCH_TIMEOUT:-300}
HOST=127.0.0.1

. bench/lib.sh

"$BT" payload-server "$W/payload.port" 3600 2>"$W/payload.log" &
PPID_=$!
PIDS+=("$PPID_")
for _ in $(seq 100); do [ -s "$W/payload.port" ] && break; sleep 0.1; done
PPORT=$(cat "$W/payload.port")

# ---- versions and machine ----------------------------------------------------------
dpkgv() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "coevent: git $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src ffi Cargo.toml 2>/dev/null || echo ' + uncommitted changes in src/ffi'), modules built $(date -u -r build/luajit/coevent.so '+%Y-%m-%d %H:%M UTC') (luajit, sha256 $(sha256sum build/luajit/coevent.so | cut -c1-12)) / $(date -u -r build/lua5.4/coevent.so '+%Y-%m-%d %H:%M UTC') (lua5.4, sha256 $(sha256sum build/lua5.4/coevent.so | cut -c1-12))"
  echo "luajit: $(luajit -v 2>&1 | head -1) (Debian luajit $(dpkgv luajit))"
  echo "lua5.4: $(lua5.4 -v 2>&1 | head -1) (Debian $(dpkgv lua5.4))"
  echo "lua5.1: $(lua5.1 -v 2>&1 | head -1) (Debian $(dpkgv lua5.1))"
  echo "cqueues: Debian lua-cqueues $(dpkgv lua-cqueues) (cqueues.VERSION $(lua5.4 -e "print(require('cqueues').VERSION)")), on Lua 5.4"
  echo "luv: Debian lua-luv $(dpkgv lua-luv) (libuv $(lua5.4 -e "print(require('luv').version_string())")), on Lua 5.4"
  echo "copas: Debian lua-copas $(dpkgv lua-copas) ($(lua5.1 -e "print(require('copas')._VERSION)")), LuaSocket $(dpkgv lua-socket) ($(lua5.1 -e "print(require('socket')._VERSION)")), on Lua 5.1"
  echo "openresty: nginx $(dpkgv nginx), libnginx-mod-http-lua $(dpkg-deb -f bench/.deps/debs/libnginx-mod-http-lua_*.deb Version 2>/dev/null), lua-resty-core $(dpkg-deb -f bench/.deps/debs/lua-resty-core_*.deb Version 2>/dev/null), OpenResty LuaJIT libluajit2-5.1-2 $(dpkg-deb -f bench/.deps/debs/libluajit2-5.1-2_*.deb Version 2>/dev/null) (unpacked in bench/.deps, not installed)"
  echo "redis-server: $(redis-server --version | sed 's/Redis server //')"
  echo "floor: $(rustc --version 2>/dev/null), bench/floor (std + libc)"
  echo "strace: $(strace -V | head -1)"
  echo "fd limit: $NOFILE"
} >"$W/meta.txt"
cat "$W/meta.txt"

# ---- 0. startup cost (N=0) -----------------------------------------------------------
# Three runs each; report.lua subtracts the mean from every other run of that client.
echo "== startup (N=0: interpreter, modules, empty loop)"
for c in $CLIENTS; do for _ in 1 2 3; do run_one "$c" ping "$RPORT" 0 0; done; done

# ---- 1. PING round trips -------------------------------------------------------------
# Cases of at most 200000 round trips run BENCH_REPS times (clients interleaved);
# the report keeps the median run by CPU per round trip.
for nm in $CASES; do
  n=${nm%%:*}
  m=${nm##*:}
  reps=1
  [ $((n * m)) -le 200000 ] && reps=$REPS
  for rep in $(seq "$reps"); do
    echo "== PING: N=$n x M=$m (run $rep of $reps)"
    for c in $CLIENTS; do
      if [ "$c" = copas ] && [ "$n" -gt 1000 ]; then
        # copas 1.x waits in select(): run it anyway, briefly, to record its error.
        [ "$rep" = 1 ] && run_one "$c" ping "$RPORT" "$n" 1
        continue
      fi
      run_one "$c" ping "$RPORT" "$n" "$m"
    done
  done
done

# ---- 2. syscalls ---------------------------------------------------------------------
# Each client twice: M round trips, and M=0 (same start-up and connections, no
# round trip): the difference divided by N*M is the steady-state cost per round trip.
echo "== syscalls: strace -c -f, N=$STRACE_N x M=$STRACE_M, and N=$STRACE_N x M=0"
: >"$W/strace.tsv"
for c in $CLIENTS; do
  strace_one "$c" "$STRACE_N" "$STRACE_M"
  s1=$STRACE_STATUS
  strace_one "$c" "$STRACE_N" 0
  printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$STRACE_N" "$STRACE_M" "$s1" "$STRACE_STATUS" >>"$W/strace.tsv"
  echo "  $c: strace exit $s1 / $STRACE_STATUS"
done

# ---- 3. payloads -----------------------------------------------------------------------
for sk in $PAYLOADS; do
  size=${sk%%:*}
  k=${sk##*:}
  for mode in count all; do
    echo "== payload: $mode, $size bytes x $k"
    for c in $CLIENTS; do run_one "$c" "$mode" "$PPORT" "$size" "$k"; done
  done
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$W/meta.txt"
mkdir -p "$(dirname "$OUTMD")"
lua5.4 bench/report.lua "$W" "$CASES" "$STRACE_N" "$STRACE_M" >"$OUTMD"
echo
cat "$OUTMD"
echo "bench: wrote $OUTMD (raw data in $W)"
