#!/usr/bin/env bash
# Instructions per PING round trip, counted by callgrind: the user-space work of
# every client, which bench/run.sh's CPU times (a tick-sampled user/system split
# on a shared machine) cannot resolve, and where coevent's instructions go.
#
#   bash bench/callgrind.sh     prints the tables and writes bench/CALLGRIND.md
#   CALLGRIND_FEATURES=unguarded  ... the modules built with that feature too
#
# Each client makes 100 connections x 200, then x 400 PING round trips against
# one redis-server on 127.0.0.1; the difference of the two counts over the
# 20,000 extra round trips is the cost of one (start-up, connects and closes
# cancel out; for OpenResty, whose nginx runs as one process under valgrind,
# so does its HTTP request). Instructions are not time (the kernel's share is
# not in them, and instructions per cycle differ), but they are exact and
# repeat to within about 1% (cqueues' do not: see REPS below).
# Needs valgrind, the peers (bash bench/deps.sh, as root) and cargo.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
HOST=127.0.0.1
OUTMD=${CALLGRIND_OUT:-bench/CALLGRIND.md}
CLIENTS=${CALLGRIND_CLIENTS:-"floor coevent-luajit coevent-lua5.4 openresty cqueues luv copas"}

. bench/common.sh
bench_tools valgrind callgrind_annotate redis-server nginx curl luajit lua5.4 lua5.1
NOFILE=$(ulimit -n)

tmp=$(mktemp -d)
stop_on_exit "$tmp"

# The release modules with symbols (DWARF 4, which valgrind 3.19 reads).
for f in luajit:luajit lua54:lua5.4; do
  feature=${f%%:*} dir=$tmp/mods/${f#*:}
  RUSTFLAGS="-Cdwarf-version=4" CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=1 \
    cargo rustc --quiet --release --lib --crate-type cdylib --no-default-features --features "$feature,module${CALLGRIND_FEATURES:+,$CALLGRIND_FEATURES}" \
    --target-dir "target/callgrind-$feature"
  mkdir -p "$dir"
  cp "target/callgrind-$feature/release/libcoevent.so" "$dir/coevent.so"
done

# bench/crossing: the Lua/Rust crossings of one round trip alone, per binding.
for f in luajit:luajit lua54:lua5.4; do
  feature=${f%%:*} dir=$tmp/crossing/${f#*:}
  cargo build --quiet --release --features "$feature" --manifest-path bench/crossing/Cargo.toml \
    --target-dir "bench/crossing/target/$feature"
  mkdir -p "$dir"
  cp "bench/crossing/target/$feature/release/libcrossing.so" "$dir/crossing.so"
done

RPORT=$($BT freeport)
redis-server --bind $HOST --port "$RPORT" --save '' --appendonly no --dir "$tmp" >/dev/null &
PIDS+=($!)
wait_port "$RPORT"

# count CLIENT M -> $tmp/CLIENT.M.out (callgrind's file) and prints the total
count() {
  local c=$1 m=$2 out=$tmp/$1.$2.out log=$tmp/$1.$2.log
  local vg=(valgrind --tool=callgrind --callgrind-out-file="$out")
  case $c in
    floor) "${vg[@]}" "$FLOOR" ping $HOST "$RPORT" 100 "$m" ;;
    coevent-luajit) "${vg[@]}" luajit bench/clients/coevent.lua "$tmp/mods/luajit" ping $HOST "$RPORT" 100 "$m" ;;
    coevent-lua5.4) "${vg[@]}" lua5.4 bench/clients/coevent.lua "$tmp/mods/lua5.4" ping $HOST "$RPORT" 100 "$m" ;;
    cqueues) "${vg[@]}" lua5.4 bench/clients/cqueues.lua ping $HOST "$RPORT" 100 "$m" ;;
    luv) "${vg[@]}" lua5.4 bench/clients/luv.lua ping $HOST "$RPORT" 100 "$m" ;;
    copas) "${vg[@]}" lua5.1 bench/clients/copas.lua ping $HOST "$RPORT" 100 "$m" ;;
    openresty)
      local d=$tmp/nginx.$m port pid
      port=$($BT freeport)
      nginx_conf "$d" "$port" off
      LD_LIBRARY_PATH=$OR/usr/lib/x86_64-linux-gnu "${vg[@]}" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" 2>"$log" &
      pid=$!
      PIDS+=("$pid")
      wait_port "$port" 60
      curl -sS "http://$HOST:$port/bench?mode=ping&host=$HOST&port=$RPORT&x=100&y=$m"
      kill -QUIT "$pid"
      wait "$pid" || true
      ;;
  esac >"$tmp/$c.$m.result" 2>>"$log"
  grep -q '^RESULT.* ok=[1-9]' "$tmp/$c.$m.result" ||
    { echo "bench/callgrind.sh: $c failed: $(cat "$tmp/$c.$m.result" "$log" | tail -3)" >&2; exit 1; }
  grep -o 'Collected : [0-9]*' "$log" | tail -1 | awk '{print $3}'
}

# Self cost by where the code lives.
split() {
  callgrind_annotate --inclusive=no --auto=no --threshold=100 "$1" 2>/dev/null | awk '
    /PROGRAM TOTALS/ { next }
    /^ *[0-9,]+ \(/ {
      n = $1; gsub(",", "", n)
      if ($0 ~ /:luaL?_[a-z]+ \[/) k = "Lua C API (the lua_* calls mlua makes, lua_resume)"
      else if ($0 ~ /\/usr\/bin\/lua|libluajit|\[\/usr\/bin\/luajit\]/) k = "interpreter (VM: the Lua code, resume and yield)"
      else if ($0 ~ /libc\.so|ld-linux/) k = "libc"
      else if ($0 ~ /mlua/) k = "mlua"
      else if ($0 ~ /coevent_engine|\/ffi\/src/) k = "coevent engine (engine/)"
      else if ($0 ~ /coevent::|\/src\//) k = "coevent Lua layer (src/)"
      else if ($0 ~ /core::|alloc::|std::|\/rustc\/|hashbrown/) k = "Rust core, alloc"
      else k = "other (LuaJIT traces, ...)"
      t[k] += n
    }
    END { for (k in t) print k "\t" t[k] }' | sort
}

# Each client REPS times (clients interleaved); the median is kept. Most
# clients repeat to within 1%; cqueues' count moves by up to 30% with how many
# sockets one wake-up finds ready.
REPS=${CALLGRIND_REPS:-3}
declare -A RUNS PER
for _ in $(seq "$REPS"); do
  for c in $CLIENTS; do
    a=$(count "$c" 200)
    b=$(count "$c" 400)
    RUNS[$c]="${RUNS[$c]:-} $(((b - a) / 20000))"
    printf '  %-15s %6d instructions per round trip\n' "$c" $(((b - a) / 20000))
  done
done
for c in $CLIENTS; do
  PER[$c]=$(tr ' ' '\n' <<<"${RUNS[$c]}" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
done

# crossing INTERP BINDING: instructions per round trip's crossings (the count
# at 100,000 minus the count at 50,000, over 50,000).
crossing() {
  local n c=()
  for n in 50000 100000; do
    c+=("$(LUA_CPATH="$tmp/crossing/$1/?.so" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      "$1" bench/crossing/run.lua "$2" "$n" 2>&1 | grep -o 'Collected : [0-9]*' | awk '{print $3}')")
  done
  echo $(((c[1] - c[0]) / 50000))
}
BINDINGS="lua raw mlua-copied mlua-referenced"
declare -A CROSS
for b in $BINDINGS; do
  for interp in luajit lua5.4; do
    CROSS[$b.$interp]=$(crossing "$interp" "$b")
  done
  printf '  crossing %-15s %6d (luajit) %6d (lua5.4)\n' "$b" "${CROSS[$b.luajit]}" "${CROSS[$b.lua5.4]}"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
{
  echo "# Instructions per round trip (callgrind)"
  echo
  echo "Written by \`bench/callgrind.sh\`: user-space instructions of each client per PING"
  echo "round trip (100 connections, the count at 400 round trips each minus the count at"
  echo "200, over the 20,000 extra), against redis-server on 127.0.0.1. Exact, and for all"
  echo "but cqueues repeatable to about 1%, unlike the CPU times of \`bench/run.sh\`; not"
  echo "time: the kernel's share is not in them, and instructions per cycle differ."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); coevent: git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src ffi Cargo.toml Cargo.lock bench/clients 2>/dev/null || echo ' (modified)')"
  echo "- $(valgrind --version); luajit $(luajit -v | awk '{print $2}'), $(lua5.4 -v | awk '{print $1, $2}')"
  echo
  echo "| client | instructions per round trip (median of $REPS) | ÷ OpenResty | ÷ cqueues | runs |"
  echo "|---|---:|---:|---:|---|"
  for c in $CLIENTS; do
    echo "| $c | ${PER[$c]} | $(ratio "${PER[$c]}" "${PER[openresty]:-0}") | $(ratio "${PER[$c]}" "${PER[cqueues]:-0}") |${RUNS[$c]} |"
  done
  for interp in luajit lua5.4; do
    c=coevent-$interp
    [ -n "${PER[$c]:-}" ] || continue
    echo
    echo "Where coevent's instructions go on $interp (self cost per round trip, last run):"
    echo
    echo "| part | instructions |"
    echo "|---|---:|"
    join -t $'\t' -a 2 -e 0 -o 0,1.2,2.2 <(split "$tmp/$c.200.out") <(split "$tmp/$c.400.out") |
      awk -F'\t' '{ d = ($3 - $2) / 20000; if (d >= 5) printf "%d\t%s\n", d, $1 }' | sort -rn |
      awk -F'\t' '{ printf "| %s | %d |\n", $2, $1 }'
  done
  echo
  echo "The crossings of one round trip alone (\`bench/crossing\`, no I/O, no engine): a"
  echo "call into Rust with a socket id and the 6-byte request, and a resume with the"
  echo "reply into a thread that yields a receive request back (marker, id, pattern), as"
  echo "coevent's scheduler does; mlua at its cheapest (typed arguments and yields, no"
  echo "memory guards). Instructions per round trip (100,000 minus 50,000, over 50,000):"
  echo
  echo "| binding | luajit | lua5.4 |"
  echo "|---|---:|---:|"
  declare -A WHAT=(
    [lua]="no Rust: a Lua function for send, coroutine.resume from Lua"
    [raw]="the raw Lua C API (lua_CFunction, lua_resume)"
    [mlua-copied]="mlua, the request copied (BString)"
    [mlua-referenced]="mlua, the request referenced (LuaString)"
  )
  for b in $BINDINGS; do
    echo "| ${WHAT[$b]} | ${CROSS[$b.luajit]} | ${CROSS[$b.lua5.4]} |"
  done
  if [ -n "${PER[openresty]:-}" ] && [ -n "${PER[cqueues]:-}" ]; then
    echo
    echo "Issue 6's user-CPU aims as instructions in this run: at most 0.5 × OpenResty's"
    echo "on LuaJIT, $((PER[openresty] / 2)); at most 0.3 × cqueues' on Lua 5.4, $((PER[cqueues] * 3 / 10))."
  fi
} >"$OUTMD"
echo
cat "$OUTMD"
