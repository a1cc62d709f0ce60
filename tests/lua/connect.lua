-- connect, close, the socket's life, and calls outside a loop.
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local function roundtrip(s, what)
  eq(s:send('hello ' .. what .. '\n'), 7 + #what, what .. ': send')
  eq(s:receive('*l'), 'hello ' .. what, what .. ': echo')
end

T.case('cosocket.tcp and L.tcp make sockets; connect returns 1', function()
  eq(cosocket.tcp, L.tcp, 'cosocket.tcp')
  local s = cosocket.tcp()
  eq(type(s), 'userdata', 'type')
  eq(s:connect('127.0.0.1', T.port), 1, 'connect')
  eq(s:send('echo\n'), 5, 'command')
  roundtrip(s, 'ipv4')
  eq(s:close(), 1, 'close')
end)

T.case('connect to localhost (the hosts file)', function()
  local s = L.tcp()
  eq(s:connect('localhost', T.port), 1, 'connect')
  s:send('echo\n')
  roundtrip(s, 'localhost')
  eq(s:close(), 1, 'close')
end)

T.case('connect to a unix socket', function()
  local s = L.tcp()
  eq(s:connect('unix:' .. T.unix), 1, 'connect without a port')
  s:send('echo\n')
  roundtrip(s, 'unix')
  eq(s:close(), 1, 'close')
  eq(s:connect('unix:' .. T.unix, 0), 1, 'connect with a port, ignored')
  eq(s:close(), 1, 'close')
end)

T.case('connect to ::1 and [::1]', function()
  if not T.port6 then T.skip('no IPv6 loopback') end
  local s = L.tcp()
  eq(s:connect('::1', T.port6), 1, 'connect ::1')
  s:send('echo\n')
  roundtrip(s, 'ipv6')
  eq(s:close(), 1, 'close')
  eq(s:connect('[::1]', T.port6), 1, 'connect [::1]')
  eq(s:close(), 1, 'close')
end)

T.case('connection refused', function()
  local s = L.tcp()
  same(pack(s:connect('127.0.0.1', T.refused)), pack(nil, 'connection refused'), 'connect')
  same(pack(s:close()), pack(nil, 'closed'), 'close after the failure')
  same(pack(s:receive('*l')), pack(nil, 'closed', ''), 'receive after the failure')
end)

T.case('a refused socket can connect again', function()
  local s = L.tcp()
  same(pack(s:connect('127.0.0.1', T.refused)), pack(nil, 'connection refused'), 'connect')
  eq(s:connect('127.0.0.1', T.port), 1, 'connect again')
  s:send('echo\n')
  roundtrip(s, 'again')
  eq(s:close(), 1, 'close')
end)

-- Names not in the hosts file go to the peer's nameserver.
local function use_peer_dns()
  L.config({ nameservers = { '127.0.0.1:' .. T.dns } })
end

T.case('no such host', function()
  use_peer_dns()
  local s = L.tcp()
  same(pack(s:connect('no-such-host.invalid', 80)), pack(nil, 'no such host'), 'unknown name')
  same(pack(s:close()), pack(nil, 'closed'), 'close after the failure')
  same(pack(s:connect('no-such-host.invalid', 80)), pack(nil, 'no such host'), 'again (cached)')
  L.config({})
end)

T.case('connect to a name the nameserver knows', function()
  use_peer_dns()
  local s = L.tcp()
  eq(s:connect('peer.test', T.port), 1, 'connect')
  s:send('echo\n')
  roundtrip(s, 'dns')
  eq(s:close(), 1, 'close')
  eq(s:connect('PEER.test.', T.port), 1, 'connect again: any case, a final dot')
  eq(s:close(), 1, 'close')
  L.config({})
end)

T.case('a unix path that does not exist', function()
  local s = L.tcp()
  same(pack(s:connect('unix:/nonexistent/coevent-test.sock')), pack(nil, 'no such file or directory'), 'connect')
end)

T.case('connect timeout (a listener whose accept queue is full)', function()
  if not T.full then T.skip('could not fill an accept queue') end
  local s = L.tcp()
  s:settimeout(50)
  same(pack(s:connect('127.0.0.1', T.full)), pack(nil, 'timeout'), 'connect')
  same(pack(s:close()), pack(nil, 'closed'), 'closed after the timeout')
  s:settimeout(5000)
  eq(s:connect('127.0.0.1', T.port), 1, 'the same socket connects elsewhere')
  eq(s:close(), 1, 'close')
end)

T.case('connect on a connected socket closes the old connection first', function()
  local s = T.connect('echo')
  eq(s:connect('127.0.0.1', T.port), 1, 'reconnect')
  s:send('lines\n')
  eq(s:receive('*l'), 'one', 'the new connection answers')
  eq(s:close(), 1, 'close')
end)

T.case('close twice, and every call after close', function()
  local s = T.connect('echo')
  eq(s:close(), 1, 'close')
  same(pack(s:close()), pack(nil, 'closed'), 'close again')
  same(pack(s:receive('*l')), pack(nil, 'closed', ''), 'receive')
  same(pack(s:receive(10)), pack(nil, 'closed', ''), 'receive n')
  same(pack(s:send('x')), pack(nil, 'closed'), 'send')
end)

T.case('close on a socket never connected', function()
  same(pack(L.tcp():close()), pack(nil, 'closed'), 'close')
end)

T.case('bad connect arguments raise', function()
  local s = L.tcp()
  T.raises(function() s:connect(nil, 80) end, "bad argument #1 to 'connect' (string expected, got nil)")
  T.raises(function() s:connect(true, 80) end, "bad argument #1 to 'connect' (string expected, got boolean)")
  T.raises(function() s:connect('127.0.0.1', 65536) end, "bad argument #2 to 'connect' (port out of range)")
  T.raises(function() s:connect('127.0.0.1', -1) end, "bad argument #2 to 'connect' (port out of range)")
  T.raises(function() s:connect('127.0.0.1', 80.5) end, "bad argument #2 to 'connect' (port out of range)")
  T.raises(function() s:connect('127.0.0.1') end, "bad argument #2 to 'connect' (number expected, got nil)")
  T.raises(function() s:connect('127.0.0.1', {}) end, "bad argument #2 to 'connect' (number expected, got table)")
  local e = T.raises(function() s:connect('127.0.0.1', 65536) end, 'port out of range')
  T.ok(e:find('connect.lua:%d+: bad argument') ~= nil, "the error names the caller's line: " .. e)
  T.raises(function() s.connect(nil, '127.0.0.1', 80) end, "calling 'connect' on bad self (cosocket expected, got nil)")
  eq(s:connect('127.0.0.1', T.port), 1, 'the socket still connects')
  eq(s:close(), 1, 'close')
end)

T.case("messages name a number's type 'number', as Lua does (not 'integer')", function()
  local s = L.tcp()
  T.raises(function() s:connect(127, 80) end, "bad argument #1 to 'connect' (string expected, got number)")
  T.raises(function() s:connect(127.5, 80) end, "bad argument #1 to 'connect' (string expected, got number)")
  T.raises(function() s.send(1, 'x') end, "calling 'send' on bad self (cosocket expected, got number)")
  T.raises(function() s.receive(1) end, "calling 'receive' on bad self (cosocket expected, got number)")
  T.raises(function() coroutine_wait(42) end, "bad argument #1 to 'coroutine_wait' (light thread expected, got number)")
end)

T.case('a port given as a numeric string', function()
  local s = L.tcp()
  eq(s:connect('127.0.0.1', tostring(T.port)), 1, 'connect')
  eq(s:close(), 1, 'close')
end)

T.case('bad settimeout arguments raise', function()
  local s = L.tcp()
  T.raises(function() s:settimeout('x') end, "bad argument #1 to 'settimeout' (number expected, got string)")
  T.raises(function() s:settimeout(nil) end, "bad argument #1 to 'settimeout' (number expected, got nil)")
  T.raises(function() s:settimeout(-1) end, "bad argument #1 to 'settimeout'")
  T.raises(function() s.settimeout(nil, 10) end, "calling 'settimeout' on bad self (cosocket expected, got nil)")
  eq(s:settimeout(10), nil, 'settimeout returns nothing')
end)

T.case('an unclosed socket dropped by the GC is closed', function()
  local before = T.fds()
  do
    local socks = {}
    for i = 1, 20 do socks[i] = T.connect('echo') end
    eq(T.fds(), before + 20, 'fds while connected')
    socks = nil
  end
  collectgarbage()
  collectgarbage()
  swop() -- a socket collected during an engine call is closed on the next turn
  eq(T.fds(), before, 'fds after the GC')
end)

T.case('sockets left open are closed when the loop ends', function()
  local kept = {}
  L(function()
    for i = 1, 5 do kept[i] = T.connect('echo') end
  end)
  -- The harness checks the fd count after this case; the sockets are still referenced.
  L(function()
    for i = 1, 5 do same(pack(kept[i]:receive(1)), pack(nil, 'closed', ''), 'receive ' .. i) end
    same(pack(kept[1]:close()), pack(nil, 'closed'), 'close')
  end)
  T.G_KEPT = kept
end, { loop = false })

T.case('socket calls outside a loop raise; settimeout works', function()
  local s = L.tcp()
  s:settimeout(10)
  local msg = 'not inside a coevent loop (run it in a function given to L(...))'
  T.raises(function() s:connect('127.0.0.1', T.port) end, msg)
  T.raises(function() s:send('x') end, msg)
  T.raises(function() s:receive('*l') end, msg)
  T.raises(function() s:close() end, msg)
  local kept = T.G_KEPT[1]
  T.raises(function() kept:receive('*l') end, msg)
  T.G_KEPT = nil
end, { loop = false })

T.case('a socket made outside a loop works inside one', function()
  local s = L.tcp()
  s:settimeout(5000)
  L(function()
    eq(s:connect('127.0.0.1', T.port), 1, 'connect')
    s:send('echo\n')
    roundtrip(s, 'made outside')
    eq(s:close(), 1, 'close')
  end)
end, { loop = false })

return T.run()
