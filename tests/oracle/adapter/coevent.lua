-- coevent's side of the oracle (tests/openresty.rs), run by the runner:
--   coevent tests/oracle/adapter/coevent.lua DIR NAME PORT UNIX REFUSED DNS_PORT UDP UDP_UNIX UDP_REFUSED TLS_BAD
-- prints the case's output.
local L = require('coevent')
local dir, case, port, unix, refused, dns, udp, udp_unix, udp_refused, tls_bad = ...
-- Names through the peer's nameserver only, as nginx's `resolver` directive has it.
L.config({ nameservers = { '127.0.0.1:' .. dns }, hosts = '/dev/null' })
local common = dofile(dir .. '/adapter/common.lua')
-- The cases of the ngx API (ngx_*.lua) run with coevent.ngx's global ngx.
-- Debian's client libraries (bench/.deps/ngx, tests/ngxdeps.sh) on their path.
if case:match('^ngx_') then
  require('coevent.ngx')
  L.config({ shared_dict = { oracle = '1m' } }) -- as openresty.rs's lua_shared_dict
  package.path = dir .. '/../../bench/.deps/ngx/usr/share/lua/5.1/?.lua;' .. package.path
end
local function out(line) io.write(line, '\n') end
local env = common.env(out, {
  tcp = cosocket.tcp,
  udp = cosocket.udp,
  sockconnect = cosocket.connect,
  sleep = L.sleep,
  spawn = newthread,
  wait = coroutine_wait,
  kill = L.kill,
  PEER = {
    host = '127.0.0.1', port = tonumber(port), unix = unix, refused = tonumber(refused),
    udp = tonumber(udp), udp_unix = udp_unix, udp_refused = tonumber(udp_refused),
    tls_bad = tonumber(tls_bad),
  },
  COEVENT = true,
})
L(function() common.run(dir .. '/' .. case .. '.lua', env, out) end)
