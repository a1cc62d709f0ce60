-- The ngx layer on the hot path: N threads x M PING round trips against
-- redis-server through cosocket.tcp or ngx.socket.tcp (both receive('*l')).
--   lua5.4 bench/ngx_hotpath.lua MODDIR PORT cosocket|ngx N M
local moddir, port, kind, n, m = ...
package.cpath = moddir .. '/?.so;' .. package.cpath
local L = require('coevent')
require('coevent.ngx')
local new = kind == 'ngx' and ngx.socket.tcp or cosocket.tcp
n, m = tonumber(n), tonumber(m)
L(function()
  local ts = {}
  for i = 1, n do
    ts[i] = newthread(function()
      local s = new()
      assert(s:connect('127.0.0.1', tonumber(port)))
      for _ = 1, m do
        s:send('PING\r\n')
        assert(s:receive('*l') == '+PONG')
      end
      s:close()
    end)
  end
  for i = 1, n do coroutine_wait(ts[i]) end
end)
