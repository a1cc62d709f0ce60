-- Debian's lua-nginx-websocket client, unmodified, against python3-websockets
-- (tests/ngxpeer/ws_echo.py). LuaJIT only: the library needs ffi.
local T = require('harness')
require('coevent.ngx')
local port = tonumber(rawget(_G, 'WS_PORT') or os.getenv('COEVENT_WS_PORT'))

local wss_port = tonumber(rawget(_G, 'WSS_PORT') or os.getenv('COEVENT_WSS_PORT'))

local function connect(url)
  local client = require('nginx.websocket.client')
  local wb = T.ok(client:new({ timeout = 5000, max_payload_len = 1048576 }))
  local ok, err = wb:connect(url or 'ws://127.0.0.1:' .. port .. '/echo')
  T.eq(ok, 1, err)
  return wb
end

T.case('ws:// text, binary, ping/pong, fragmented frames, close', function()
  if not jit then T.skip("nginx.websocket needs LuaJIT's ffi") end
  local wb = connect()
  T.eq(wb:send_text('hello'), 11)
  T.same(T.pack(wb:recv_frame()), { 'hello', 'text', nil })
  local blob = string.rep('\0\1\255', 30000)
  T.eq(wb:send_binary(blob), #blob + 14)
  local data, typ = wb:recv_frame()
  T.eq(typ, 'binary')
  T.eq(data, blob)
  T.eq(wb:send_ping('p1'), 8)
  T.same(T.pack(wb:recv_frame()), { 'p1', 'pong', nil })
  wb:send_text('frag:ab,cd,ef')
  T.same(T.pack(wb:recv_frame()), { 'ab', 'text', 'again' })
  T.same(T.pack(wb:recv_frame()), { 'cd', 'continuation', 'again' })
  T.same(T.pack(wb:recv_frame()), { 'ef', 'continuation', 'again' })
  -- python3-websockets ends a message sent from an iterable with an empty final frame.
  T.same(T.pack(wb:recv_frame()), { '', 'continuation', nil })
  wb:send_text('close')
  T.same(T.pack(wb:recv_frame()), { 'bye', 'close', 1000 })
  T.eq(wb:send_close(), 6, 'a masked close frame without payload')
  T.eq(wb:close(), 1)
end, { ci_may_skip = "needs LuaJIT's ffi" })

T.case('wss:// (a self-signed certificate, not verified): text, binary, close', function()
  if not jit then T.skip("nginx.websocket needs LuaJIT's ffi") end
  local wb = connect('wss://127.0.0.1:' .. wss_port .. '/echo')
  T.eq(wb:send_text('over tls'), 14)
  T.same(T.pack(wb:recv_frame()), { 'over tls', 'text', nil })
  local blob = string.rep('x', 70000)
  wb:send_binary(blob)
  local data, typ = wb:recv_frame()
  T.same({ typ, data == blob }, { 'binary', true })
  wb:send_text('close')
  T.same(T.pack(wb:recv_frame()), { 'bye', 'close', 1000 })
  T.eq(wb:close(), 1)
  -- Verified, the self-signed certificate is refused.
  local client = require('nginx.websocket.client')
  local v = client:new({ timeout = 5000 })
  local ok, err = v:connect('wss://127.0.0.1:' .. wss_port .. '/echo', { ssl_verify = true })
  T.eq(ok, nil)
  T.ok(err:find('^ssl handshake failed: '), err)
end, { ci_may_skip = "needs LuaJIT's ffi" })

T.case('ws:// 50 concurrent clients', function()
  if not jit then T.skip("nginx.websocket needs LuaJIT's ffi") end
  local threads = {}
  for i = 1, 50 do
    threads[i] = ngx.thread.spawn(function()
      local wb = connect()
      for j = 1, 20 do
        local msg = i .. ':' .. j
        wb:send_text(msg)
        local data = wb:recv_frame()
        if data ~= msg then error('got ' .. tostring(data)) end
      end
      wb:close()
      return true
    end)
  end
  for i = 1, 50 do T.same(T.pack(ngx.thread.wait(threads[i])), { true, true }) end
end, { ci_may_skip = "needs LuaJIT's ffi" })

return T.run()
