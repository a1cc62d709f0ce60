-- coevent's client for bench/udp.sh: T threads, each with its own socket, N
-- memcached `get` round trips over UDP each (one datagram each way).
--   luajit|lua5.4|coevent bench/clients/udp-coevent.lua MODDIR|- PORT T N
local dir, port, T, N = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
if dir ~= '-' then package.cpath = dir .. '/?.so;' .. package.cpath end
local L = require('coevent')
-- memcached's UDP frame header (request 1, datagram 0 of 1), then the request.
local req = '\0\1\0\0\0\1\0\0get coevent-bench\r\n'
L(function()
  local ts = {}
  for t = 1, T do
    ts[t] = L.spawn(function()
      local u = L.udp()
      assert(u:setpeername('127.0.0.1', port))
      for _ = 1, N do
        assert(u:send(req))
        local d = assert(u:receive())
        assert(d:sub(9) == 'END\r\n', d)
      end
      u:close()
    end)
  end
  for t = 1, T do L.wait(ts[t]) end
end)
