#!/usr/bin/env bash
# Debian's OpenResty client libraries for tests/ngx.rs, unpacked privately into
# bench/.deps/ngx (as root; safe to run again). Their packages depend on
# nginx-extras, whose Lua module replaces Debian's luajit (see bench/deps.sh):
# so they are fetched with `apt-get download`, never installed. Also the
# servers they are tested against: memcached (redis-server and dnsmasq are in
# `make deps` already) and python3-websockets.
set -euo pipefail
cd "$(dirname "$0")/../bench"
LIBS="lua-nginx-redis lua-nginx-memcached lua-nginx-dns lua-nginx-websocket lua-nginx-redis-connector lua-resty-lrucache"
SERVERS="memcached python3-websockets"
OUT=.deps/ngx
have_all() {
  [ -f "$OUT/usr/share/lua/5.1/nginx/redis.lua" ] || return 1
  for p in $SERVERS; do dpkg -s "$p" >/dev/null 2>&1 || return 1; done
}
have_all && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ngx deps: run tests/ngxdeps.sh as root (apt-get download $LIBS; apt-get install $SERVERS)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
for p in $SERVERS; do dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq $SERVERS >/dev/null; break; }; done
rm -rf .deps/ngxdebs "$OUT"
mkdir -p .deps/ngxdebs "$OUT"
# shellcheck disable=SC2086
(cd .deps/ngxdebs && apt-get download -qq $LIBS 2>&1 | grep -v 'unsandboxed' || true)
for d in .deps/ngxdebs/*.deb; do dpkg-deb -x "$d" "$OUT"; done
test -f "$OUT/usr/share/lua/5.1/nginx/redis.lua"
echo "ngx deps: ok"
