-- An echo server: every byte a client sends comes back, until it closes (or
-- half-closes) its side, or idles past the timeout.
-- usage: coevent serve_echo.lua [PORT (0: a free one)] [IDLE_MS (default 60000)] [HOST]
-- Prints "listening on HOST:PORT"; at the end "served N connections".
local port, idle, host = tonumber(arg[1]) or 7000, tonumber(arg[2]) or 60000, arg[3] or '127.0.0.1'
local L = require('coevent')

local served = 0

local function echo(c)
  c:settimeout(idle)
  while true do
    local data = c:receiveany(65536)
    if not data or not c:send(data) then break end
  end
  c:close()
end

L(function()
  local srv = L.tcp()
  srv:setoption('reuseport', true)
  assert(srv:bind(host, port))
  assert(srv:listen(4096))
  print(('listening on %s:%d'):format(srv:getsockname()))
  io.stdout:flush()
  while true do
    local c, err = srv:accept()
    if c then
      served = served + 1
      L.spawn(echo, c)
    elseif err == 'closed' then
      break
    else
      -- (A timeout only says that nobody came for a minute.)
      if err ~= 'timeout' then io.stderr:write('accept: ', err, '\n') end
    end
  end
end)
print(('served %d connections'):format(served))
