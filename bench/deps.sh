#!/usr/bin/env bash
# Installs what bench/run.sh needs (Debian, as root). Safe to run again: it
# installs only what is missing. With `openresty`: only what tests/openresty.rs needs.
#
# OpenResty's cosocket: Debian's libnginx-mod-http-lua needs lua-resty-core, which
# needs OpenResty's LuaJIT (libluajit2-5.1-2), which conflicts with Debian's
# libluajit-5.1-2 and so removes the `luajit` package that coevent's tests use
# (and `make deps`, installing `luajit` again, removes the nginx Lua module in
# turn). So the nginx Lua module, lua-resty-core, lua-resty-lrucache and
# OpenResty's LuaJIT are NOT installed: their Debian packages are fetched with
# `apt-get download` and unpacked into bench/.deps/openresty/, and run.sh starts
# nginx with LD_LIBRARY_PATH and load_module pointing there. Debian's luajit stays.
set -euo pipefail
cd "$(dirname "$0")"

DEBS="lua5.1 lua5.4 luajit lua-cqueues lua-luv lua-copas lua-socket lua-coxpcall
      nginx libnginx-mod-http-ndk libpcre3 redis-server redis-tools strace curl valgrind wrk"
# `bash bench/deps.sh openresty`: only nginx and the private OpenResty tree, what
# the oracle test (tests/openresty.rs) needs; .ci/run does that before make test.
if [ "${1:-}" = openresty ]; then
  DEBS="nginx libnginx-mod-http-ndk libpcre3"
fi
PRIVATE="libnginx-mod-http-lua lua-resty-core lua-resty-lrucache libluajit2-5.1-2 libluajit2-5.1-common"
OR=.deps/openresty

missing=""
for p in $DEBS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
need_private=0
[ -f "$OR/usr/lib/nginx/modules/ngx_http_lua_module.so" ] || need_private=1

if [ -z "$missing" ] && [ $need_private = 0 ]; then
  echo "bench deps: all there"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "bench deps: missing:$missing (Debian: sudo apt-get install -y$missing)" >&2
  [ $need_private = 1 ] && echo "bench deps: and run bench/deps.sh as root to unpack $PRIVATE into bench/$OR" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing
fi
if [ $need_private = 1 ]; then
  rm -rf .deps/debs "$OR"
  mkdir -p .deps/debs "$OR"
  # shellcheck disable=SC2086
  (cd .deps/debs && apt-get download -qq $PRIVATE 2>&1 | grep -v 'unsandboxed' || true)
  for d in .deps/debs/*.deb; do dpkg-deb -x "$d" "$OR"; done
  test -f "$OR/usr/lib/nginx/modules/ngx_http_lua_module.so"
fi
# The packaged nginx service is never used: run.sh starts its own nginx.
if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
  kill "$(cat /run/nginx.pid)" || true
fi
echo "bench deps: ok"
