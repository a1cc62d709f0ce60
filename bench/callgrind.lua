-- The workload of bench/callgrind.sh: N light threads, each M PING round trips
-- over its own connection to the redis-server at unix socket PATH.
--   lua callgrind.lua SODIR PATH N M
local sodir, path, n, m = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
package.cpath = sodir .. '/?.so;' .. package.cpath
local L = require('coevent')
local done = 0
L(function()
  local ts = {}
  for i = 1, n do
    ts[i] = L.spawn(function()
      local s = L.tcp()
      assert(s:connect('unix:' .. path))
      for _ = 1, m do
        assert(s:send('PING\r\n'))
        assert(s:receive('*l') == '+PONG')
        done = done + 1
      end
      s:close()
    end)
  end
  for i = 1, n do L.wait(ts[i]) end
end)
assert(done == n * m, 'round trips: ' .. done)
