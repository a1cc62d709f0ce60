-- The benchmark's HTTP keep-alive "hello" server, on coevent: a light thread
-- per connection reads request lines up to the blank one, then answers.
-- usage: coevent coevent_http.lua PORT  |  luajit -e "package.cpath=..." coevent_http.lua PORT
local L = require('coevent')
local RESP = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n'

local function serve(c)
  while true do
    local line = c:receive('*l')
    if not line then break end
    if line == '' and not c:send(RESP) then break end
  end
  c:close()
end

L(function()
  local srv = L.tcp()
  srv:setoption('reuseport', true)
  assert(srv:bind('127.0.0.1', tonumber(arg[1]) or 0))
  assert(srv:listen(4096))
  print(('listening on %s:%d'):format(srv:getsockname()))
  io.stdout:flush()
  while true do
    local c = srv:accept()
    if not c then break end
    L.spawn(serve, c)
  end
end)
