-- The soak: a mixed workload for COEVENT_SOAK_SECONDS against a redis-server
-- (COEVENT_REDIS_PORT) and the scripted peer (tests/peer), run by the runner
-- from tests/faults.rs (`make soak SOAK_SECONDS=60`).
--
-- The run is cut into phases of a few seconds. In each phase, at once:
--   - 20 threads on long-lived redis connections: pipelines of INCR, SET and GET
--     whose every reply is checked exactly;
--   - churn: connect, one round trip, close (redis and the peer), and sockets
--     dropped unclosed for the GC;
--   - timeouts: a silent peer (read timeout), a full accept queue (connect timeout);
--   - errors: a refused port, a reset mid-line, a peer that closes;
--   - threads killed while they hold sockets, threads that raise;
--   - a keepalive pool with a backlog whose queued connects are killed or
--     have their sockets closed while places are handed on; a listener whose
--     waiting acceptor is killed while a client connects;
--   - a thread that only swops, and one that sleeps.
-- Between phases every worker has ended: the GC runs, then the fds
-- (/proc/self/fd), the RSS (/proc/self/statm) and the Lua heap are sampled.
-- The fds must be exactly equal at every sample; after the warm-up (the first
-- quarter of the samples, at least 2) the RSS must stay within 1 MiB + 2% of the
-- warm-up's largest, and the Lua heap within 64 KiB + 10% of it.
local T = require('harness')
local F = require('support')
local L, eq = T.L, T.eq
local floor = math.floor

local SECONDS = tonumber(os.getenv('COEVENT_SOAK_SECONDS')) or 60
local REDIS = tonumber(os.getenv('COEVENT_REDIS_PORT'))
assert(REDIS, 'soak.lua: COEVENT_REDIS_PORT must be set (run through tests/faults.rs)')
local PHASE = SECONDS >= 60 and 5 or 2
local PHASES = math.max(4, math.floor(SECONDS / PHASE + 0.5))
local KEEP = 20

local count = {}
local function add(what, n) count[what] = (count[what] or 0) + (n or 1) end

local function fail(what, ...)
  local t = {}
  for i = 1, select('#', ...) do t[i] = T.show((select(i, ...))) end
  error('soak: ' .. what .. ': ' .. table.concat(t, ', '), 0)
end

local function expect(what, want, ...)
  local got = ...
  if got ~= want then fail(what .. ' (want ' .. T.show(want) .. ')', ...) end
end

local function resp(...)
  local t = { '*', select('#', ...), '\r\n' }
  for i = 1, select('#', ...) do
    local a = tostring((select(i, ...)))
    t[#t + 1] = '$' .. #a .. '\r\n' .. a .. '\r\n'
  end
  return table.concat(t)
end

-- n bytes (n >= 5): a run of one random letter and a random number.
local function value(n)
  local c = string.char(97 + math.random(0, 25))
  return c:rep(n - 4) .. string.format('%04d', math.random(0, 9999))
end

-- A long-lived redis connection: pipelines of 10 commands, every reply checked.
local function keeper(i, s, state, over)
  return function()
    local key, vkey = 'soak:' .. F.pid() .. ':n' .. i, 'soak:' .. F.pid() .. ':v' .. i
    for _ = 1, 1e9 do
      if over.now then return end
      local req, want = {}, {}
      for k = 1, 10 do
        local r = math.random(3)
        if r == 1 then
          state.n = state.n + 1
          req[k], want[k] = resp('INCR', key), ':' .. state.n
        elseif r == 2 then
          local v = value(math.random(5, 2000))
          state.v = v
          req[k], want[k] = resp('SET', vkey, v), '+OK'
        else
          req[k], want[k] = resp('GET', vkey), state.v and ('$' .. #state.v) or '$-1'
          if state.v then want[k] = { want[k], state.v } end
        end
      end
      local data = table.concat(req)
      expect('keeper send', #data, s:send(data))
      add('requests', 10)
      for k = 1, 10 do
        local w = want[k]
        if type(w) == 'table' then
          expect('keeper GET length', w[1], s:receive('*l'))
          expect('keeper GET value', w[2] .. '\r\n', s:receive(#w[2] + 2))
        else
          expect('keeper reply', w, s:receive('*l'))
        end
        add('replies')
      end
    end
  end
end

local function connect(port, cmd)
  local s = L.tcp()
  s:settimeout(10000)
  expect('connect ' .. port, 1, s:connect(T.host, port))
  if cmd then expect('command ' .. cmd, #cmd + 1, s:send(cmd .. '\n')) end
  return s
end

local function churn(over)
  return function()
    for j = 1, 1e9 do
      if over.now then return end
      local s = connect(REDIS)
      expect('churn send', 14, s:send('*1\r\n$4\r\nPING\r\n'))
      add('requests')
      expect('churn reply', '+PONG', s:receive('*l'))
      add('replies')
      if j % 5 == 0 then
        add('dropped unclosed')
      else
        expect('churn close', 1, s:close())
      end
      local e = connect(T.port, 'echo')
      expect('echo send', 6, e:send('hello\n'))
      add('requests')
      expect('echo reply', 'hello', e:receive('*l'))
      add('replies')
      expect('echo close', 1, e:close())
      add('churned', 2)
    end
  end
end

local function timeouts(over)
  return function()
    for j = 1, 1e9 do
      if over.now then return end
      local s = connect(T.port, 'silent')
      s:settimeout(10 + j % 30)
      local r, e, p = s:receive('*l')
      expect('silent read', nil, r, e, p)
      expect('silent read error', 'timeout', e)
      expect('silent close', 1, s:close())
      add('read timeouts')
      if T.full and j % 4 == 0 then
        local c = L.tcp()
        c:settimeout(20)
        local ok, ce = c:connect(T.host, T.full)
        expect('full backlog connect', nil, ok, ce)
        expect('full backlog error', 'timeout', ce)
        add('connect timeouts')
      end
    end
  end
end

local function errors(over)
  return function()
    for j = 1, 1e9 do
      if over.now then return end
      local s = L.tcp()
      local ok, e = s:connect(T.host, T.refused)
      expect('refused connect', nil, ok, e)
      expect('refused error', 'connection refused', e)
      add('refused')
      s = connect(T.port)
      local cmd = 'closeafter 5 some\\nthing\nunread'
      expect('reset command', #cmd, s:send(cmd))
      expect('reset line', 'some', s:receive('*l'))
      local r, re, p = s:receive('*l')
      expect('reset read', nil, r, re, p)
      expect('reset error', 'connection reset by peer', re)
      expect('reset partial', 'thing', p)
      add('resets')
      s = connect(T.port, 'bytes ' .. (j % 100))
      local r2, ce, p2 = s:receive(200)
      expect('close read', nil, r2, ce, p2)
      expect('close error', 'closed', ce)
      expect('close partial', T.pattern(j % 100), p2)
      add('peer closes')
    end
  end
end

local function killer(over)
  return function()
    for j = 1, 1e9 do
      if over.now then return end
      local held = L.spawn(function(a, b)
        a:settimeout(60000)
        return a:receive('*l'), b
      end, connect(T.port, 'silent'), connect(REDIS))
      local raiser = L.spawn(function(a)
        L.sleep(0.001 * (j % 3))
        error('raised holding ' .. tostring(a ~= nil), 0)
      end, connect(T.port, 'silent'))
      local rr, re = L.wait(raiser)
      expect('raiser result', nil, rr, re)
      expect('raiser error', 'raised holding true', re)
      L.sleep(0.001 * (j % 3))
      expect('kill', true, L.kill(held))
      local kr, ke = L.wait(held)
      expect('killed result', nil, kr, ke)
      expect('killed error', 'killed', ke)
      add('killed')
      add('raised')
    end
  end
end

-- Five connects into a pool of 2 places with a backlog: the 2nd is killed
-- (while it connects, or waits for its reply over a pooled connection) and
-- the 3rd, queued, has its socket closed, so the place each frees is handed
-- on at once. The others must all get a connection.
local function pooler(over, n)
  return function()
    local o = { pool = 'soak:' .. F.pid() .. ':' .. n, pool_size = 2, backlog = 4 }
    for _ = 1, 1e9 do
      if over.now then return end
      local ss, ts = {}, {}
      for k = 1, 5 do
        ss[k] = L.tcp()
        ss[k]:settimeout(10000)
        ts[k] = L.spawn(function(s)
          local ok, e = s:connect(T.host, REDIS, o)
          if not ok then return nil, e end
          expect('pooled send', 14, s:send('*1\r\n$4\r\nPING\r\n'))
          expect('pooled reply', '+PONG', s:receive('*l'))
          -- Counted once answered: the 2nd may be killed in between (it
          -- took an idle connection and sent at once).
          add('requests')
          add('replies')
          L.sleep(0.001 * math.random(0, 2))
          return s:setkeepalive(0)
        end, ss[k])
      end
      expect('kill a connecting thread', true, L.kill(ts[2]))
      expect('close a queued socket', 1, ss[3]:close())
      for k = 1, 5 do
        local want = ({ [2] = 'killed', [3] = 'closed' })[k]
        local ok, e = L.wait(ts[k])
        if want then
          expect('pooled connect ' .. k, nil, ok, e)
          expect('pooled connect ' .. k .. ' error', want, e)
        else
          expect('pooled connect ' .. k, 1, ok, e)
        end
      end
      add('pool places handed on', 2)
    end
  end
end

-- A listener with two acceptors: the first is killed while it waits, the
-- client's connection must reach the second.
local function acceptor(over)
  return function()
    local srv = L.tcp()
    expect('bind', 1, srv:bind(T.host, 0))
    expect('listen', 1, srv:listen())
    local _, port = srv:getsockname()
    for j = 1, 1e9 do
      if over.now then break end
      local first = L.spawn(function() return srv:accept() end)
      local second = L.spawn(function()
        local c = srv:accept()
        local line = c:receive('*l')
        expect('acceptor echo', #line + 1, c:send(line .. '\n'))
        return c:close()
      end)
      expect('kill an acceptor', true, L.kill(first))
      local c = connect(port)
      expect('client send', #tostring(j) + 1, c:send(j .. '\n'))
      add('requests')
      expect('client reply', tostring(j), c:receive('*l'))
      add('replies')
      expect('client close', 1, c:close())
      expect('second acceptor', 1, L.wait(second))
      add('acceptors killed')
    end
    expect('listener close', 1, srv:close())
  end
end

local function ticker(over)
  return function()
    for _ = 1, 1e12 do
      if over.now then return end
      add('swops')
      L.swop()
    end
  end
end

local function sleeper(over)
  return function()
    for _ = 1, 1e9 do
      if over.now then return end
      L.sleep(0.001 * math.random(0, 5))
      add('sleeps')
    end
  end
end

T.case('soak for ' .. SECONDS .. ' s (' .. PHASES .. ' phases of ' .. PHASE .. ' s)', function()
  math.randomseed(tonumber(F.pid()))
  local keep, states = {}, {}
  for i = 1, KEEP do
    keep[i] = connect(REDIS)
    states[i] = { n = 0 }
  end
  -- Made in full before the first sample, so that keeping them does not grow the heap.
  local samples = {}
  for i = 1, PHASES do samples[i] = { t = 0.5, fds = 0, rss = 0, heap = 0.5 } end
  local t_start = F.now()
  for phase = 1, PHASES do
    local over = { now = false }
    local ws = {}
    for i = 1, KEEP do ws[#ws + 1] = L.spawn(keeper(i, keep[i], states[i], over)) end
    for _ = 1, 4 do ws[#ws + 1] = L.spawn(churn(over)) end
    for _ = 1, 3 do ws[#ws + 1] = L.spawn(timeouts(over)) end
    for _ = 1, 2 do ws[#ws + 1] = L.spawn(errors(over)) end
    for _ = 1, 2 do ws[#ws + 1] = L.spawn(killer(over)) end
    for n = 1, 2 do ws[#ws + 1] = L.spawn(pooler(over, n)) end
    ws[#ws + 1] = L.spawn(acceptor(over))
    ws[#ws + 1] = L.spawn(ticker(over))
    ws[#ws + 1] = L.spawn(sleeper(over))
    L.sleep(PHASE)
    over.now = true
    for i, w in ipairs(ws) do
      local ok, e = L.wait(w)
      if ok == nil then error('worker ' .. i .. ': ' .. tostring(e), 0) end
    end
    collectgarbage()
    collectgarbage()
    L.swop()
    local s = samples[phase]
    s.heap = collectgarbage('count')
    s.t, s.fds, s.rss = F.now() - t_start, T.fds(), F.rss()
    print(string.format('SOAK sample %d t=%.1fs fds=%d rss=%d KiB lua=%d KiB requests=%d replies=%d',
      phase, s.t, s.fds, floor(s.rss / 1024), floor(s.heap), count.requests or 0, count.replies or 0))
  end
  for i = 1, KEEP do eq(keep[i]:close(), 1, 'close keeper ' .. i) end

  local names = {}
  for k in pairs(count) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do print(string.format('SOAK count %s %d', k, count[k])) end
  eq(count.requests, count.replies, 'requests sent and replies checked')
  for _, k in ipairs({ 'requests', 'churned', 'read timeouts', 'refused', 'resets', 'peer closes', 'killed', 'swops', 'pool places handed on',
    'acceptors killed' }) do
    T.ok((count[k] or 0) > 0, k .. ' happened')
  end

  local warm = math.max(2, math.floor(#samples / 4))
  local base = samples[1].fds
  local ref, top, href, htop = 0, 0, 0, 0
  for i, x in ipairs(samples) do
    eq(x.fds, base, 'fds at sample ' .. i)
    if i <= warm then
      ref, href = math.max(ref, x.rss), math.max(href, x.heap)
    else
      top, htop = math.max(top, x.rss), math.max(htop, x.heap)
    end
  end
  print(string.format('SOAK warm-up %d samples: rss max %d KiB, lua max %d KiB; after it: rss max %d KiB (%+d KiB), lua max %d KiB (%+d KiB); fds %d at every sample',
    warm, floor(ref / 1024), floor(href), floor(top / 1024), floor((top - ref) / 1024), floor(htop), floor(htop - href), base))
  T.ok(top <= ref + 1024 * 1024 + ref * 0.02,
    string.format('rss after the warm-up (%d KiB) within 1 MiB + 2%% of the warm-up (%d KiB)', floor(top / 1024), floor(ref / 1024)))
  T.ok(htop <= href + 64 + href * 0.1,
    string.format('Lua heap after the warm-up (%d KiB) within 64 KiB + 10%% of the warm-up (%d KiB)', floor(htop), floor(href)))
end)

return T.run()
