-- A peer that resets (or closes) in the middle of a line or a body, while 50
-- other threads do round trips.
local T = require('harness')
local F = require('support')
local eq, same, pack = T.eq, T.same, T.pack

-- Connects and sends `cmd`, plus bytes the peer never reads when `unread`, so
-- that its close is a reset.
local function victim_socket(cmd, unread)
  local s = T.connect(nil)
  s:settimeout(10000)
  local data = cmd .. '\n' .. (unread or '')
  eq(s:send(data), #data, 'send the command')
  return s
end

T.case('reset mid-line: the lines before, then nil, "connection reset by peer", the partial line', function()
  F.amid(function()
    local s = victim_socket('closeafter 100 first line\\nsecond li', 'unread')
    eq(s:receive('*l'), 'first line', 'the whole line before the reset')
    same(pack(s:receive('*l')), pack(nil, 'connection reset by peer', 'second li'), 'the cut line')
    same(pack(s:receive('*l')), pack(nil, 'closed'), 'receive after the reset')
    same(pack(s:send('x')), pack(nil, 'closed'), 'send after the reset')
    same(pack(s:close()), pack(nil, 'closed'), 'close: the error closed it')
  end)
end)

T.case('reset mid-body: receive(n) gets nil, "connection reset by peer", the bytes that came', function()
  local body = string.rep('0123456789', 300)
  F.amid(function()
    local s = victim_socket('closeafter 100 ' .. body, 'unread')
    eq(s:receive(1000), body:sub(1, 1000), 'the first 1000 bytes')
    same(pack(s:receive(5000)), pack(nil, 'connection reset by peer', body:sub(1001)), 'the cut body')
    same(pack(s:close()), pack(nil, 'closed'), 'close')
  end)
end)

T.case("reset during '*a': nil, \"connection reset by peer\", everything that came", function()
  F.amid(function()
    local s = victim_socket('closeafter 100 all\\nof it', 'unread')
    same(pack(s:receive('*a')), pack(nil, 'connection reset by peer', 'all\nof it'), "'*a'")
    same(pack(s:close()), pack(nil, 'closed'), 'close')
  end)
end)

T.case('reset of 100 sockets at once, each waiting mid-line', function()
  local n = F.valgrind and 20 or 100
  F.amid(function()
    local readers = {}
    for i = 1, n do
      local s = victim_socket('closeafter 100 line ' .. i .. '\\npart ' .. i, 'x')
      readers[i] = T.L.spawn(function()
        eq(s:receive('*l'), 'line ' .. i, 'line ' .. i)
        return s:receive('*l')
      end)
    end
    for i = 1, n do
      same(pack(T.L.wait(readers[i])), pack(nil, 'connection reset by peer', 'part ' .. i), 'reader ' .. i)
    end
  end)
end)

T.case('reset while sending 64 MiB: nil, "connection reset by peer", the socket closed', function()
  local data = T.mib(64)
  F.amid(function()
    local s = victim_socket('closeafter 100 x', 'unread')
    same(pack(s:send(data)), pack(nil, 'connection reset by peer'), 'send')
    same(pack(s:send('x')), pack(nil, 'closed'), 'send after')
    same(pack(s:close()), pack(nil, 'closed'), 'close')
  end)
end)

T.case('reset mid-line over IPv6', function()
  if not T.port6 then T.skip('no IPv6 loopback') end
  F.amid(function()
    local s = T.connect(nil, '::1', T.port6)
    local cmd = 'closeafter 100 over six\\nhal\nunread'
    eq(s:send(cmd), #cmd, 'send')
    eq(s:receive('*l'), 'over six', 'the line')
    same(pack(s:receive('*l')), pack(nil, 'connection reset by peer', 'hal'), 'the cut line')
  end)
end)

T.case('a unix peer that closes with unread data: the line, then nil, "connection reset by peer", the partial', function()
  F.amid(function()
    local s = T.connect(nil, 'unix:' .. T.unix)
    local cmd = 'closeafter 100 by unix\\nhal\nunread'
    eq(s:send(cmd), #cmd, 'send')
    eq(s:receive('*l'), 'by unix', 'the line')
    same(pack(s:receive('*l')), pack(nil, 'connection reset by peer', 'hal'), 'the cut line')
    same(pack(s:close()), pack(nil, 'closed'), 'close')
  end)
end)

T.case('sending 64 MiB to a unix peer that goes away: nil, "broken pipe", the socket closed', function()
  local data = T.mib(64)
  F.amid(function()
    local s = T.connect(nil, 'unix:' .. T.unix)
    eq(s:send('closeafter 100 x\nunread'), 23, 'send the command')
    same(pack(s:send(data)), pack(nil, 'broken pipe'), 'send')
    same(pack(s:close()), pack(nil, 'closed'), 'close')
  end)
end)

T.case('a close (FIN) mid-body: nil, "closed", the bytes that came', function()
  F.amid(function()
    local s = victim_socket('closeafter 100 0123456789')
    same(pack(s:receive(11)), pack(nil, 'closed', '0123456789'), 'receive(11)')
    same(pack(s:close()), pack(nil, 'closed'), 'close')
  end)
end)

T.case('a refused connect, amid round trips', function()
  F.amid(function()
    local s = T.L.tcp()
    same(pack(s:connect(T.host, T.refused)), pack(nil, 'connection refused'), 'connect')
    same(pack(s:close()), pack(nil, 'closed'), 'close')
    eq(s:connect(T.host, T.port), 1, 'the same socket connects elsewhere')
    eq(s:send('ping\nPING\r\n'), 11, 'send')
    eq(s:receive('*l'), '+PONG', 'round trip')
    eq(s:close(), 1, 'close')
  end)
end)

return T.run()
