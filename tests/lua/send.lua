-- send(data): strings, numbers, nested tables; big sends; errors.
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

local MiB8 = 8 * 1024 * 1024

T.case('a nested table is sent flat, returns the byte count', function()
  local s = T.connect('echo')
  eq(s:send({ 'a', { 'b', { 1, 2.5 } }, 'c' }), 7, 'bytes sent')
  eq(s:receive(7), 'ab12.5c', 'echoed')
  eq(s:close(), 1, 'close')
end)

T.case('numbers are sent as Lua writes them', function()
  local s = T.connect('echo')
  eq(s:send(42), 2, '42')
  eq(s:send(-7), 2, '-7')
  eq(s:send(2.5), 3, '2.5')
  eq(s:send({ 10, ':', 0 }), 4, 'a table of numbers')
  eq(s:receive(11), '42-72.510:0', 'echoed')
end)

T.case('empty data sends nothing and returns 0', function()
  local s = T.connect('echo')
  eq(s:send(''), 0, "''")
  eq(s:send({}), 0, '{}')
  eq(s:send({ {}, '', { {} } }), 0, 'nested empties')
  eq(s:send('x\n'), 2, 'then a line')
  eq(s:receive('*l'), 'x', 'echoed')
end)

T.case('8 MiB string: send waits until the peer has it all', function()
  local s = T.connect('drain ' .. MiB8)
  eq(s:send(T.pattern(MiB8)), MiB8, 'bytes sent')
  eq(s:receive('*l'), 'ok ' .. MiB8, 'the peer checked every byte')
end)

T.case('8 MiB in a table of pieces', function()
  local data, parts = T.pattern(MiB8), {}
  local step = 65536 + 7
  for at = 1, #data, step do parts[#parts + 1] = { data:sub(at, at + step - 1) } end
  local s = T.connect('drain ' .. MiB8)
  eq(s:send(parts), MiB8, 'bytes sent')
  eq(s:receive('*l'), 'ok ' .. MiB8, 'the peer checked every byte')
end)

T.case('8 MiB in strings of 4095-4097 bytes, many of which must wait', function()
  -- Either side of the length up to which LuaJIT's send copies a string
  -- (socket::SHORT): every piece, copied or not, must go out whole and in order.
  local data, at, n = T.pattern(MiB8), 1, 0
  local s = T.connect('drain ' .. MiB8)
  while at <= #data do
    local piece = data:sub(at, at + 4094 + n % 3)
    eq(s:send(piece), #piece, 'bytes sent of piece ' .. n)
    at, n = at + #piece, n + 1
  end
  eq(s:receive('*l'), 'ok ' .. MiB8, 'the peer checked every byte')
end)

T.case('8 MiB over a unix socket', function()
  local s = T.connect('drain ' .. MiB8, 'unix:' .. T.unix)
  eq(s:send(T.pattern(MiB8)), MiB8, 'bytes sent')
  eq(s:receive('*l'), 'ok ' .. MiB8, 'the peer checked every byte')
end)

T.case('the data is taken before send waits: the caller may change its table', function()
  local s = T.connect('drain ' .. MiB8)
  local data = { T.pattern(MiB8) }
  local sender = newthread(function() return s:send(data) end)
  -- The sender waits for the peer to read; spoil its table meanwhile.
  data[1], data[2] = 'spoiled', 'more junk'
  eq(coroutine_wait(sender), MiB8, 'bytes sent')
  eq(s:receive('*l'), 'ok ' .. MiB8, 'the peer got the original bytes')
end)

T.case('bad data raises, sends nothing, and leaves the socket working', function()
  local s = T.connect('echo')
  T.raises(function() s:send(print) end,
    "bad argument #1 to 'send' (string, number, boolean, nil, or array table expected, got function)")
  T.raises(function() s:send({ 'a', { 'b', true } }) end, "bad argument #1 to 'send' (bad data type boolean found)")
  T.raises(function() s:send({ 'a', { 'b', print } }) end, "bad argument #1 to 'send' (bad data type function found)")
  T.raises(function() s:send({ 'a', nil, 'c' }) end, "bad argument #1 to 'send' (bad data type nil found)")
  T.raises(function() s:send({ 'a', x = 'b' }) end, "bad argument #1 to 'send' (non-array table found)")
  local loop = {}
  loop[1] = loop
  T.raises(function() s:send(loop) end, "bad argument #1 to 'send'")
  local e = T.raises(function() s:send(print) end, 'got function')
  T.ok(e:find('send.lua:%d+: bad argument') ~= nil, "the error names the caller's line: " .. e)
  eq(s:send('c\n'), 2, 'send after the raises')
  eq(s:receive('*l'), 'c', 'nothing of the bad data went out')
end)

T.case('nil and booleans are sent as OpenResty sends them: "nil", "true", "false"', function()
  local s = T.connect('echo')
  same(pack(s:send(nil), s:send(true), s:send(false), s:send('\n')), pack(3, 4, 5, 1), 'sent')
  eq(s:receive('*l'), 'niltruefalse', 'echoed')
  eq(s:close(), 1, 'close')
end)

T.case('send on a bad self raises', function()
  local s = L.tcp()
  T.raises(function() s.send(nil, 'x') end, "calling 'send' on bad self (cosocket expected, got nil)")
  T.raises(function() s.send({}, 'x') end, "calling 'send' on bad self (cosocket expected, got table)")
end)

T.case('send on a socket never connected, and after close', function()
  local s = L.tcp()
  same(pack(s:send('x')), pack(nil, 'closed'), 'never connected')
  s = T.connect('echo')
  eq(s:close(), 1, 'close')
  same(pack(s:send('x')), pack(nil, 'closed'), 'after close')
  same(pack(s:send({ 'x', 'y' })), pack(nil, 'closed'), 'a table after close')
end)

T.case('send to a peer that closed: an error, then the socket is closed', function()
  local s = T.connect('close')
  eq(s:receive('*a'), '', 'the peer closed')
  local n, e
  for _ = 1, 1000 do
    n, e = s:send('data after the close\n')
    if not n then break end
    swop() -- let the peer's reset arrive
  end
  eq(n, nil, 'send fails at last')
  T.ok(e == 'broken pipe' or e == 'connection reset by peer', 'error: ' .. tostring(e))
  same(pack(s:close()), pack(nil, 'closed'), 'closed after the error')
end)

T.case('a second writer gets socket busy writing; close wakes the first', function()
  local s = T.connect('sink')
  local big = T.mib(64)
  local writer = newthread(function() return s:send(big) end)
  same(pack(s:send('y')), pack(nil, 'socket busy writing'), 'second writer')
  eq(s:close(), 1, 'close from another thread')
  same(pack(coroutine_wait(writer)), pack(nil, 'closed'), 'the waiting writer')
end)

return T.run()
