-- setkeepalive, getreusedtimes and connect's pools against redis-server.
local T = require('harness')
local R = require('resp')
local L = T.L

T.case('a pooled connection is reused by the next connect to the same key', function()
  local s = L.tcp()
  T.same(T.pack(s:getreusedtimes()), { nil, 'closed' })
  T.same(T.pack(s:setkeepalive()), { nil, 'closed' }, 'never connected')
  T.eq(s:connect(T.host, T.redis), 1)
  T.eq(s:getreusedtimes(), 0)
  local id = R.id(s)
  T.eq(s:setkeepalive(), 1)
  -- Afterwards the object reads as closed.
  T.same(T.pack(s:send('PING\r\n')), { nil, 'closed' })
  T.same(T.pack(s:receive()), { nil, 'closed' })
  T.same(T.pack(s:getreusedtimes()), { nil, 'closed' })
  T.same(T.pack(s:setkeepalive()), { nil, 'closed' })
  T.same(T.pack(s:close()), { nil, 'closed' })
  for i = 1, 3 do
    local s2 = R.connect()
    T.eq(s2:getreusedtimes(), i, 'reused times')
    T.eq(R.id(s2), id, 'the same connection')
    T.eq(s2:setkeepalive(), 1)
  end
  -- The same object connects again: from the pool too.
  T.eq(s:connect(T.host, T.redis), 1)
  T.eq(s:getreusedtimes(), 4)
  T.eq(R.id(s), id)
  -- Another key, another pool: a new connection.
  local o = R.connect({ pool = 'other' })
  T.eq(o:getreusedtimes(), 0)
  T.ok(R.id(o) ~= id, 'another connection')
  o:close()
  s:close()
  T.eq(R.connect():getreusedtimes(), 0, 'closed, not pooled')
end)

T.case('the seed form connect(host, port, pool_size, pool_key) names the pool', function()
  local s = L.tcp()
  T.eq(s:connect(T.host, T.redis, 5, 'seed'), 1)
  local id = R.id(s)
  T.eq(s:setkeepalive(), 1)
  local d = R.connect()
  T.eq(d:getreusedtimes(), 0, 'the host:port pool is another')
  T.ok(R.id(d) ~= id)
  d:close()
  T.eq(s:connect(T.host, T.redis, 5, 'seed'), 1)
  T.eq(s:getreusedtimes(), 1)
  T.eq(R.id(s), id)
  T.eq(s:connect(T.host, T.redis, { pool = 'seed' }), 1, 'the options table names it too')
  T.eq(s:getreusedtimes(), 0, 'its connection was closed by the reconnect')
  s:close()
end)

T.case('a full pool closes its least recently used; the most recent comes first', function()
  local socks, ids = {}, {}
  for i = 1, 3 do
    socks[i] = R.connect({ pool = 'lru' })
    ids[i] = R.id(socks[i])
  end
  -- The first setkeepalive makes the pool, with 2 places.
  for i = 1, 3 do T.eq(socks[i]:setkeepalive(0, 2), 1) end
  local a, b = R.connect({ pool = 'lru' }), R.connect({ pool = 'lru' })
  T.same({ R.id(a), a:getreusedtimes(), R.id(b), b:getreusedtimes() }, { ids[3], 1, ids[2], 1 })
  local c = R.connect({ pool = 'lru' })
  T.eq(c:getreusedtimes(), 0)
  T.ok(R.id(c) ~= ids[1], 'the evicted one is not reused')
  R.eventually(function() return not R.alive(ids[1]) end, 'the evicted connection closed')
  a:close(); b:close(); c:close()
end)

T.case('setkeepalive refuses a connection with unread data, busy or in dubious state', function()
  local s = R.connect()
  -- A line read leaves the rest of the reply (written whole) in the buffer.
  T.eq(s:send('ECHO hello\r\n'), 12)
  T.eq(s:receive('*l'), '$5')
  T.same(T.pack(s:setkeepalive()), { nil, 'unread data in buffer' })
  T.eq(s:receive('*l'), 'hello', 'the socket stays usable')
  -- A reader waits on it.
  local t = L.spawn(function() return s:receive('*l') end)
  T.same(T.pack(s:setkeepalive()), { nil, 'socket busy reading' })
  s:close()
  T.same(T.pack(L.wait(t)), { nil, 'closed', '' })
  -- All of the reply arrived and only part of it was read (the read was
  -- exactly as long as asked, so nothing says the socket is drained): the
  -- peer has sent more than this side read.
  s = R.connect()
  T.eq(s:send('PING\r\n'), 6)
  T.eq(s:receive(5), '+PONG')
  T.same(T.pack(s:setkeepalive()), { nil, 'connection in dubious state' })
  T.same(T.pack(s:send('PING\r\n')), { nil, 'closed' }, 'and closed')
  -- Bad arguments raise, before anything changes.
  s = R.connect()
  T.raises(function() s:setkeepalive('x') end, "bad argument #1 to 'setkeepalive' (number expected, got string)")
  T.raises(function() s:setkeepalive(0, 'x') end, "bad argument #2 to 'setkeepalive' (number expected, got string)")
  T.raises(function() s:setkeepalive(0, 0) end, "bad argument #2 to 'setkeepalive' (bad \"pool_size\" option value: 0)")
  T.raises(function() s:setkeepalive(0, 1, 2) end, 'expecting 1 to 3 arguments (including the object), but got 4')
  T.raises(function() s:getreusedtimes(1) end, 'expecting 1 argument (including the object), but got 2')
  T.eq(R.cmd(s, 'PING'), '+PONG', 'still connected')
  s:close()
end)

T.case("connect's options are checked as OpenResty checks them", function()
  local s = L.tcp()
  T.raises(function() s:connect(T.host, T.redis, { pool_size = 0 }) end,
    "bad argument #3 to 'connect' (bad \"pool_size\" option value: 0)")
  T.raises(function() s:connect(T.host, T.redis, { pool_size = 'x' }) end,
    "bad argument #3 to 'connect' (bad \"pool_size\" option type: string)")
  T.raises(function() s:connect(T.host, T.redis, { backlog = -1 }) end,
    "bad argument #3 to 'connect' (bad \"backlog\" option value: -1)")
  T.raises(function() s:connect(T.host, T.redis, { pool = {} }) end,
    "bad argument #3 to 'connect' (bad \"pool\" option type: table)")
  T.raises(function() s:connect('unix:/nowhere', { pool = true }) end,
    "bad argument #2 to 'connect' (bad \"pool\" option type: boolean)")
  T.same(T.pack(s:connect(T.host, nil, { pool = 'p' })), { nil, 'missing the port number' })
end)

T.case('an idle connection closes when the peer closes it, sends to it, or its timeout ends', function()
  local s = R.connect({ pool = 'watch' })
  local id = R.id(s)
  T.eq(s:setkeepalive(), 1)
  local k = R.connect()
  T.eq(R.cmd(k, 'CLIENT KILL ID ' .. id), ':1')
  L.swop()
  s = R.connect({ pool = 'watch' })
  T.eq(s:getreusedtimes(), 0, 'a new connection after the peer closed the idle one')
  -- A subscriber gets a message while idle in the pool.
  id = R.id(s)
  T.eq(s:send('SUBSCRIBE coevent-pool\r\n'), 24)
  for _, want in ipairs({ '*3', '$9', 'subscribe', '$12', 'coevent-pool', ':1' }) do T.eq(s:receive('*l'), want) end
  T.eq(s:setkeepalive(), 1)
  T.eq(R.cmd(k, 'PUBLISH coevent-pool hello'), ':1')
  R.eventually(function() return not R.alive(id) end, 'the pool closed the connection the peer sent to')
  s = R.connect({ pool = 'watch' })
  T.eq(s:getreusedtimes(), 0, 'a new connection after the peer sent to the idle one')
  id = R.id(s)
  T.eq(s:setkeepalive(20), 1)
  R.eventually(function() return not R.alive(id) end, 'the idle timeout closed it')
  s = R.connect({ pool = 'watch' })
  T.eq(s:getreusedtimes(), 0, 'a new connection after the idle timeout')
  s:close()
  k:close()
end)

T.case('a pool whose peers all close at once leaves no fd behind', function()
  local before = T.fds()
  local socks, ids = {}, {}
  for i = 1, 20 do
    socks[i] = R.connect({ pool = 'all' })
    ids[i] = R.id(socks[i])
  end
  for i = 1, 20 do T.eq(socks[i]:setkeepalive(0, 30), 1) end
  socks = nil
  T.eq(T.fds(), before + 20, 'the pool holds 20')
  local k = R.connect()
  local kill = {}
  for i = 1, 20 do kill[i] = 'CLIENT KILL ID ' .. ids[i] .. '\r\n' end
  T.eq(k:send(kill), #table.concat(kill))
  for _ = 1, 20 do T.eq(k:receive('*l'), ':1') end
  k:close()
  R.eventually(function() return T.fds() == before end, 'every pooled fd closed')
  T.eq(R.connect({ pool = 'all' }):getreusedtimes(), 0, 'the pool is empty')
end)

T.case('getfd, getpeername, shutdown and cosocket.connect', function()
  local s = L.tcp()
  T.same(T.pack(s:getfd()), { nil, 'closed' })
  T.same(T.pack(s:getpeername()), { nil, 'closed' })
  T.same(T.pack(s:shutdown('send')), { nil, 'closed' })
  T.eq(s:connect(T.host, T.port), 1)
  local fd = s:getfd()
  T.eq(type(fd), 'number')
  T.eq(fd, math.floor(fd), 'getfd is a whole number')
  if math.type then T.eq(math.type(fd), 'integer') end
  T.ok(fd > 2)
  T.same(T.pack(s:getpeername()), { '127.0.0.1', T.port })
  T.raises(function() s:shutdown('sideways') end, "bad argument #1 to 'shutdown' (invalid shutdown method)")
  -- Half-closed: the echo peer sees the end of the stream, this side reads on.
  T.eq(s:send('echo\nabc'), 8)
  T.eq(s:shutdown('send'), 1)
  T.eq(s:receive('*a'), 'abc')
  s:close()
  local u = cosocket.connect('unix:' .. T.unix)
  T.same(T.pack(u:getpeername()), { T.unix })
  u:close()
  local c = cosocket.connect(T.host, T.redis, { pool = 'shortcut' })
  T.eq(R.cmd(c, 'PING'), '+PONG')
  T.eq(c:setkeepalive(), 1)
  c = cosocket.connect(T.host, T.redis, { pool = 'shortcut' })
  T.eq(c:getreusedtimes(), 1)
  c:close()
  T.same(T.pack(cosocket.connect(T.host, T.refused)), { nil, 'connection refused' })
  T.same(T.pack(cosocket.connect(T.host)), { nil, 'missing the port number' })
end)

return T.run()
