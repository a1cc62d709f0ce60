#!/usr/bin/env bash
# Instructions per PING round trip, by callgrind, and what they are spent in.
#   bash bench/callgrind.sh [5.4|jit|5.1]
# Needs valgrind, redis-server, the interpreter and LuaSocket (bench/deps.sh).
# Runs the bench's coevent client (bench/clients/coevent.lua, 100 threads) with
# 200 and with 400 round trips per thread and divides the difference by the
# 20,000 extra round trips, so start-up, connects and closes cancel out.
set -euo pipefail
cd "$(dirname "$0")/.."
LUA=${1:-5.4}
case $LUA in
  5.4) feature=lua54 interp=lua5.4 ;;
  5.1) feature=lua51 interp=lua5.1 ;;
  jit) feature=luajit interp=luajit ;;
  *) echo "usage: bench/callgrind.sh [5.4|jit|5.1]" >&2; exit 2 ;;
esac
for b in valgrind callgrind_annotate redis-server "$interp"; do
  command -v "$b" >/dev/null || { echo "bench/callgrind.sh: $b is missing" >&2; exit 1; }
done
"$interp" -e "require('socket.core')" 2>/dev/null ||
  { echo "bench/callgrind.sh: LuaSocket is missing for $interp (bash bench/deps.sh)" >&2; exit 1; }
# The release module with symbols (DWARF 4, which valgrind 3.19 reads).
dir=target/callgrind-$feature
RUSTFLAGS="-Cdwarf-version=4" CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=1 \
  cargo rustc --quiet --release --lib --crate-type cdylib --no-default-features --features "$feature,module" --target-dir "$dir"
tmp=$(mktemp -d)
cp "$dir/release/libcoevent.so" "$tmp/coevent.so"
redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -S "$tmp/redis.sock" ] && break; sleep 0.05; done

# Self cost per round trip, by where the code lives.
split() {
  callgrind_annotate --inclusive=no --auto=no --threshold=100 "$1" 2>/dev/null | awk '
    /PROGRAM TOTALS/ { next }
    /^ *[0-9,]+ \(/ {
      n = $1; gsub(",", "", n)
      if ($0 ~ /\/usr\/bin\/lua|libluajit|\[\/usr\/bin\/luajit\]/) k = "interpreter (VM, lua_* API)"
      else if ($0 ~ /libc\.so|ld-linux/) k = "libc"
      else if ($0 ~ /mlua/) k = "mlua"
      else if ($0 ~ /coevent_ffi|\/ffi\/src/) k = "coevent engine (ffi/)"
      else if ($0 ~ /coevent::|\/src\//) k = "coevent Lua layer (src/)"
      else if ($0 ~ /core::|alloc::|std::|\/rustc\/|hashbrown/) k = "Rust core, alloc"
      else k = "other (LuaJIT traces, ...)"
      t[k] += n
    }
    END { for (k in t) print k "\t" t[k] }'
}
for m in 200 400; do
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$m" "$interp" bench/clients/coevent.lua \
    "$tmp" ping "unix:$tmp/redis.sock" 0 100 $m >/dev/null 2>"$tmp/log.$m"
  grep -o 'Collected : [0-9]*' "$tmp/log.$m" | awk '{print $3}' >"$tmp/total.$m"
  split "$tmp/cg.$m" >"$tmp/split.$m"
done
echo "coevent on $interp: $(( ($(cat "$tmp/total.400") - $(cat "$tmp/total.200")) / 20000 )) instructions per round trip"
join -t $'\t' -a 2 -e 0 -o 0,1.2,2.2 <(sort "$tmp/split.200") <(sort "$tmp/split.400") |
  awk -F'\t' '{ d = ($3 - $2) / 20000; if (d >= 5 || d <= -5) printf "%8.0f  %s\n", d, $1 }' | sort -rn
