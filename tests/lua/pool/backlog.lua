-- connect's backlog: a pool with a backlog lets at most pool_size
-- connections live; connects beyond wait in a queue of at most backlog.
local T = require('harness')
local R = require('resp')
local L = T.L

-- (L.spawn runs a thread until it first waits: a spawned connect that must
-- queue is in the queue when L.spawn returns.)
-- A thread that connects through `options` (with `timeout` if given) and
-- returns what connect returned, and the connection's reuse count and id.
local function connecting(options, timeout)
  return L.spawn(function()
    local s = L.tcp()
    if timeout then s:settimeout(timeout) end
    local r, e = s:connect(T.host, T.redis, options)
    if not r then return r, e end
    return r, s:getreusedtimes(), R.id(s), s
  end)
end

T.case('a connect waits for a place; setkeepalive hands it the connection', function()
  local o = { pool = 'b1', pool_size = 1, backlog = 1 }
  local s1 = R.connect(o)
  local id1 = R.id(s1)
  local t2 = connecting(o)
  T.same(T.pack(L.tcp():connect(T.host, T.redis, o)), { nil, 'too many waiting connect operations' })
  T.eq(s1:setkeepalive(), 1)
  local r, reused, id, s2 = L.wait(t2)
  T.same({ r, reused, id }, { 1, 1, id1 }, 'the connection s1 gave back')
  s2:close()
  -- Nothing lives in the pool now: a connect goes through at once.
  local s3 = L.tcp()
  s3:settimeout(500)
  T.eq(s3:connect(T.host, T.redis, o), 1)
  s3:close()
end)

T.case('a close gives its place to the queue; a queued connect times out; a killed one leaves', function()
  local o = { pool = 'b2', pool_size = 1, backlog = 2 }
  local s1 = R.connect(o)
  local id1 = R.id(s1)
  T.same(T.pack(L.wait(connecting(o, 30))), { nil, 'timeout' })
  local t3, t4 = connecting(o), connecting(o)
  T.same(T.pack(L.tcp():connect(T.host, T.redis, o)), { nil, 'too many waiting connect operations' })
  T.eq(L.kill(t4), true)
  local t5 = connecting(o)
  T.same(T.pack(L.tcp():connect(T.host, T.redis, o)), { nil, 'too many waiting connect operations' },
    'the killed one left its place in the queue')
  s1:close()
  local r, reused, id, s3 = L.wait(t3)
  T.same({ r, reused }, { 1, 0 }, 'a new connection in the place of the closed one')
  T.ok(id ~= id1)
  T.eq(s3:setkeepalive(), 1)
  local r5, reused5, id5, s5 = L.wait(t5)
  T.same({ r5, reused5, id5 }, { 1, 1, id })
  s5:close()
end)

T.case('closing a socket that waits in the queue wakes its connect', function()
  local o = { pool = 'b3', pool_size = 1, backlog = 1 }
  local s1 = R.connect(o)
  local s2 = L.tcp()
  local t = L.spawn(function() return s2:connect(T.host, T.redis, o) end)
  T.same(T.pack(s2:setkeepalive()), { nil, 'socket busy connecting' })
  T.eq(s2:close(), 1)
  T.same(T.pack(L.wait(t)), { nil, 'closed' })
  -- The place it held is free again.
  local t3 = connecting(o)
  s1:close()
  local r, reused, _, s3 = L.wait(t3)
  T.same({ r, reused }, { 1, 0 })
  s3:close()
end)

T.case('no backlog: a pool limits idle connections only', function()
  local o = { pool = 'b4', pool_size = 1 }
  local a, b, c = R.connect(o), R.connect(o), R.connect(o)
  T.eq(a:setkeepalive(), 1)
  T.eq(b:setkeepalive(), 1)
  T.eq(c:setkeepalive(), 1)
  local d = R.connect(o)
  T.eq(d:getreusedtimes(), 1)
  T.eq(R.connect(o):getreusedtimes(), 0, 'one place: the others were closed')
  d:close()
end)

return T.run()
