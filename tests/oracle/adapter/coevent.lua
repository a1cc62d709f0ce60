-- coevent's side of the oracle (tests/openresty.rs), run by the runner:
--   coevent tests/oracle/adapter/coevent.lua DIR NAME PORT UNIX REFUSED DNS_PORT
-- prints the case's output.
local L = require('coevent')
local dir, case, port, unix, refused, dns = ...
-- Names through the peer's nameserver only, as nginx's `resolver` directive has it.
L.config({ nameservers = { '127.0.0.1:' .. dns }, hosts = '/dev/null' })
local common = dofile(dir .. '/adapter/common.lua')
local function out(line) io.write(line, '\n') end
local env = common.env(out, {
  tcp = cosocket.tcp,
  sockconnect = cosocket.connect,
  sleep = L.sleep,
  spawn = newthread,
  wait = coroutine_wait,
  kill = L.kill,
  PEER = { host = '127.0.0.1', port = tonumber(port), unix = unix, refused = tonumber(refused) },
  COEVENT = true,
})
L(function() common.run(dir .. '/' .. case .. '.lua', env, out) end)
