-- An HTTP/1.1 server: keep-alive, "hello" at /, files under /static/ from a
-- directory. Plain Lua on coevent: a light thread per connection.
-- usage: coevent serve_http.lua [PORT (0: a free one)] [DIR (default: .)] [HOST]
-- Prints "listening on HOST:PORT". SIGINT/SIGTERM close the listener; the
-- server ends when its connections do (each idles at most 10 s).
local port, root, host = tonumber(arg[1]) or 8080, arg[2] or '.', arg[3] or '127.0.0.1'
local L = require('coevent')

local REASON = { [200] = 'OK', [400] = 'Bad Request', [404] = 'Not Found', [405] = 'Method Not Allowed' }

local function respond(c, status, body, close, ctype)
  return c:send({
    'HTTP/1.1 ', status, ' ', REASON[status], '\r\n',
    'Content-Type: ', ctype or 'text/plain', '\r\n',
    'Content-Length: ', #body, '\r\n',
    close and 'Connection: close\r\n' or '', '\r\n',
    body,
  })
end

-- A file under root, by a path with no '..' in it.
local function file(path)
  if path:find('..', 1, true) then return nil end
  local f = io.open(root .. '/' .. path, 'rb')
  if not f then return nil end
  local body = f:read('*a')
  f:close()
  return body
end

local function serve(c)
  c:settimeout(10000)
  while true do
    local line, err = c:receive('*l')
    if not line then break end
    local method, target, version = line:match('^(%u+) (%S+) HTTP/(%d%.%d)$')
    -- Headers: only the two that matter here.
    local close, length = version ~= '1.1', 0
    while true do
      local h = c:receive('*l')
      if not h then return c:close() end
      if h == '' then break end
      local name, value = h:match('^([^:]+):%s*(.-)%s*$')
      name = name and name:lower()
      if name == 'connection' then close = value:lower() == 'close' or (close and value:lower() ~= 'keep-alive')
      elseif name == 'content-length' then length = tonumber(value) or 0 end
    end
    if length > 0 and not c:receive(length) then break end
    local ok
    if not method then
      ok, close = respond(c, 400, 'bad request\n', true), true
    elseif method ~= 'GET' and method ~= 'HEAD' then
      ok = respond(c, 405, 'method not allowed\n', close)
    elseif target == '/' then
      ok = respond(c, 200, 'hello\n', close)
    else
      local body = target:match('^/static/(.+)$') and file(target:sub(9))
      if body then
        ok = respond(c, 200, body, close, 'application/octet-stream')
      else
        ok = respond(c, 404, 'not found\n', close)
      end
    end
    if not ok or close then break end
  end
  c:close()
end

L(function()
  local srv = L.tcp()
  srv:setoption('reuseport', true)
  assert(srv:bind(host, port))
  assert(srv:listen())
  print(('listening on %s:%d'):format(srv:getsockname()))
  io.stdout:flush()
  while true do
    local c, err = srv:accept()
    if not c then
      if err == 'closed' then break end
      -- (A timeout only says that nobody came for a minute.)
      if err ~= 'timeout' then io.stderr:write('accept: ', err, '\n') end
    else
      L.spawn(serve, c)
    end
  end
end)
