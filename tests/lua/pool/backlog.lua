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

-- A connect whose socket it returns alongside, for a test to close.
local function queued(o, timeout)
  local s = L.tcp()
  if timeout then s:settimeout(timeout) end
  return L.spawn(function() return s:connect(T.host, T.redis, o) end), s
end

-- Issue 23, defect 3: the place setkeepalive or a close grants to the first
-- queued connect is handed on when that connect never takes it (killed, or
-- its socket closed, before it runs). Lost, every later connect would wait
-- out its timeout while no connection exists.
T.case('a place granted to a connect that is killed or closed before it runs goes to the next', function()
  for _, how in ipairs({ 'kill', 'close' }) do
    for _, free in ipairs({ 'setkeepalive', 'close' }) do
      local o = { pool = 'b5-' .. how .. '-' .. free, pool_size = 1, backlog = 5 }
      local s1 = R.connect(o)
      local id1 = R.id(s1)
      local t2, s2 = queued(o)
      local t3 = connecting(o, 2000)
      -- x frees the place, granted to t2 as x yields; k, queued before t2,
      -- runs next: t2 has its place and has not run when k ends it.
      local x = L.spawn(function()
        L.swop()
        T.eq(s1[free](s1), 1, free)
      end)
      local k = L.spawn(function()
        L.swop()
        if how == 'kill' then T.eq(L.kill(t2), true) else T.eq(s2:close(), 1) end
      end)
      L.wait(x)
      L.wait(k)
      local r, reused, id, s3 = L.wait(t3)
      local what = how .. ' after ' .. free
      if free == 'setkeepalive' then
        T.same({ r, reused, id }, { 1, 1, id1 }, what .. ': the next connect takes the connection')
      else
        T.same({ r, reused }, { 1, 0 }, what .. ': the next connect makes one in the place')
      end
      T.same(T.pack(L.wait(t2)), how == 'kill' and { nil, 'killed' } or { nil, 'closed' }, what)
      s3:close()
      local s4 = L.tcp()
      s4:settimeout(2000)
      T.eq(s4:connect(T.host, T.redis, o), 1, what .. ': the place is free again')
      s4:close()
    end
  end
end)

-- Issue 23, defect 1: a queued connect's timeout fires in the loop turn in
-- which another thread (woken by a timer of the same millisecond, so before
-- it) hands it the place or closes its socket. That canceled a timer that had
-- fired: an engine panic, or another thread's timer canceled. Repeated, as
-- the two timers share their millisecond most times, not always.
T.case('a queued connect whose timeout fires in the turn its place comes loses nothing', function()
  local got = {}
  for i = 1, 30 do
    local o = { pool = 'b6-' .. i, pool_size = 1, backlog = 1 }
    local s1 = R.connect(o)
    local t2, s2 = queued(o, 10)
    L.sleep(0.01)
    if i % 2 == 0 then
      T.eq(s1:setkeepalive(), 1)
    else
      s2:close() -- queued still, or timed out (closed) if its timer came first
      s1:close()
    end
    local r, e = L.wait(t2)
    local outcome = r == 1 and 'connected' or e
    T.ok(outcome == 'connected' or outcome == 'timeout' or (i % 2 == 1 and outcome == 'closed'),
      'outcome ' .. T.show(outcome))
    got[outcome] = (got[outcome] or 0) + 1
    s2:close()
    -- No place is lost: the pool lets a connect through at once.
    local s3 = L.tcp()
    s3:settimeout(2000)
    T.eq(s3:connect(T.host, T.redis, o), 1, 'round ' .. i)
    s3:close()
    -- Timers of other threads are untouched: a sleep sleeps.
    local slept = L.spawn(function() L.sleep(0.005) return 'woke' end)
    T.eq(L.wait(slept), 'woke')
  end
  T.ok(next(got), 'outcomes seen')
end)

-- Issue 23, defect 8: a connection shut down (LuaSocket's shutdown) can
-- never be reused: setkeepalive refuses it, as OpenResty refuses a closed
-- one, and the next connect makes a new connection.
T.case('setkeepalive refuses a connection after shutdown', function()
  for _, how in ipairs({ 'send', 'receive', 'both' }) do
    local o = { pool = 'b7-' .. how }
    local s = R.connect(o)
    local id = R.id(s)
    T.eq(s:shutdown(how), 1)
    T.same(T.pack(s:setkeepalive()), { nil, 'closed' }, how)
    T.same(T.pack(s:send('PING\r\n')), { nil, 'closed' }, how .. ': the socket is closed')
    local s2 = R.connect(o)
    T.eq(s2:getreusedtimes(), 0, how .. ': nothing was pooled')
    T.ok(R.id(s2) ~= id, how)
    s2:close()
  end
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
