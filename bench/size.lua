-- Memory figures for `make size`, run by the coevent runner:
--   coevent bench/size.lua [REDIS_SOCKET]
-- prints the RSS of an idle loop, the memory one parked light thread costs
-- and, given a redis-server's unix socket, what one idle connection costs
-- (after a PING round trip each, so every socket has read).
local L = require('coevent')
local N = 2000

local function rss()
  local f = assert(io.open('/proc/self/statm'))
  local pages = f:read('*l'):match('^%S+%s+(%S+)')
  f:close()
  return tonumber(pages) * 4096
end

-- RSS and Lua heap grown per unit as `hold(n)` makes n of them. They stay
-- until the end (`releases`): memory freed by one measurement would be
-- reused by the next, which would then seem to cost nothing.
local releases = {}
local function per(hold)
  collectgarbage()
  collectgarbage()
  local rss0, heap0 = rss(), collectgarbage('count')
  releases[#releases + 1] = hold(N)
  collectgarbage()
  collectgarbage()
  return (rss() - rss0) / N, (collectgarbage('count') - heap0) * 1024 / N
end

local function threads(n)
  local ts = {}
  for i = 1, n do ts[i] = L.spawn(L.sleep, 3600) end
  return function() for i = 1, n do L.kill(ts[i]) end end
end

local function connections(path)
  return function(n)
    local socks = {}
    for i = 1, n do
      local s = L.tcp()
      assert(s:connect('unix:' .. path))
      assert(s:send('PING\r\n'))
      assert(s:receive('*l') == '+PONG')
      socks[i] = s
    end
    return function() for i = 1, n do socks[i]:close() end end
  end
end

L(function()
  print(string.format('%8d bytes  RSS of an idle loop (runner)', rss()))
  print(string.format('%8.0f bytes  per parked light thread (RSS; %.0f of it Lua heap)', per(threads)))
  if arg[1] then
    print(string.format('%8.0f bytes  per idle connection (RSS; %.0f of it Lua heap)', per(connections(arg[1]))))
  else
    print('  (no redis-server: memory per idle connection not measured)')
  end
  for _, release in ipairs(releases) do release() end
end)
