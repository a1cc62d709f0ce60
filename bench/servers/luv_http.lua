-- The benchmark's HTTP keep-alive "hello" server on luv (libuv), callbacks:
-- each request ends at its blank line. usage: lua5.4 luv_http.lua PORT
local uv = require('luv')
local RESP = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n'
local srv = uv.new_tcp()
assert(srv:bind('127.0.0.1', tonumber(arg[1]) or 0))
assert(srv:listen(4096, function()
  local c = uv.new_tcp()
  srv:accept(c)
  c:nodelay(true)
  local buf = ''
  c:read_start(function(err, data)
    if err or not data then return c:close() end
    buf = buf .. data
    while true do
      local e = buf:find('\r\n\r\n', 1, true)
      if not e then break end
      buf = buf:sub(e + 4)
      c:write(RESP)
    end
  end)
end))
print('listening on 127.0.0.1:' .. srv:getsockname().port)
io.stdout:flush()
uv.run()
