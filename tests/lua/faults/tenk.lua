-- 10,000 concurrent connections to a local redis-server (COEVENT_REDIS_PORT),
-- each doing round trips, while a thread that only swops keeps ticking. Prints
-- the memory one idle connection costs. Needs RLIMIT_NOFILE above 10,000
-- (tests/faults.rs runs it under `ulimit -n 25000`).
local T = require('harness')
local F = require('support')
local L, eq = T.L, T.eq

local N = tonumber(os.getenv('COEVENT_TENK')) or 10000
local PORT = tonumber(os.getenv('COEVENT_REDIS_PORT'))
assert(PORT, 'tenk.lua: COEVENT_REDIS_PORT must be set (run through tests/faults.rs)')
assert(F.nofile() > N + 100, 'tenk.lua: RLIMIT_NOFILE is ' .. F.nofile() .. ', too low for ' .. N .. ' connections')
local WAVE = 1000
assert(N % WAVE == 0, "tenk.lua: COEVENT_TENK must be a multiple of " .. WAVE)

local function pong(s, what)
  local n, e = s:send('PING\r\n')
  if n ~= 6 then error(what .. ': send: ' .. tostring(e), 0) end
  local r, e2 = s:receive('*l')
  if r ~= '+PONG' then error(what .. ': reply ' .. T.show(r) .. ' ' .. tostring(e2), 0) end
end

T.case(N .. ' connections held open, each doing round trips, while a swop thread ticks', function()
  local start_fds = T.fds()
  local ticks, stop = 0, false
  local ticker = L.spawn(function()
    for _ = 1, 1e12 do
      if stop then return end
      ticks = ticks + 1
      L.swop()
    end
  end)
  collectgarbage()
  collectgarbage()
  local rss0, heap0 = F.rss(), collectgarbage('count')
  local t0 = F.now()

  -- Connect, in waves of WAVE threads at once (the accept queue holds 4096),
  -- each with a first round trip; every connection stays open.
  local socks = {}
  local ticks0 = ticks
  for w = 0, math.floor(N / WAVE) - 1 do
    local ts = {}
    for i = 1, WAVE do
      ts[i] = L.spawn(function()
        local s = L.tcp()
        s:settimeout(30000)
        local r, e = s:connect('127.0.0.1', PORT)
        if r ~= 1 then error('connect ' .. (w * WAVE + i) .. ': ' .. tostring(e), 0) end
        pong(s, 'connection ' .. (w * WAVE + i))
        return s
      end)
    end
    for i = 1, WAVE do
      local s, e = L.wait(ts[i])
      if not s then error(e, 0) end
      socks[#socks + 1] = s
    end
  end
  eq(#socks, N, 'connections open')
  local connect_ticks = ticks - ticks0
  local t1 = F.now()

  -- Idle: what each connection costs.
  collectgarbage()
  collectgarbage()
  local rss1, heap1 = F.rss(), collectgarbage('count')
  eq(T.fds(), start_fds + N, 'fds with every connection open')

  -- All of them at once: a thread per connection, 3 round trips each.
  ticks0 = ticks
  local ts = {}
  for i = 1, N do
    ts[i] = L.spawn(function()
      for k = 1, 3 do pong(socks[i], 'connection ' .. i .. ' round ' .. k) end
      return true
    end)
  end
  for i = 1, N do
    local ok, e = L.wait(ts[i])
    if not ok then error(e, 0) end
  end
  ts = nil
  local rt_ticks = ticks - ticks0
  local t2 = F.now()

  for i = 1, N do eq(socks[i]:close(), 1, 'close ' .. i) end
  socks = nil
  stop = true
  L.wait(ticker)
  collectgarbage()
  collectgarbage()
  eq(T.fds(), start_fds, 'fds after closing them all')

  print(string.format('TENK connections %d', N))
  print(string.format('TENK rss_before_bytes %d', rss0))
  print(string.format('TENK rss_idle_bytes %d', rss1))
  print(string.format('TENK per_connection_bytes %.0f', (rss1 - rss0) / N))
  print(string.format('TENK lua_heap_per_connection_bytes %.0f', (heap1 - heap0) * 1024 / N))
  print(string.format('TENK connect_seconds %.2f', t1 - t0))
  print(string.format('TENK round_trip_phase_seconds %.2f', t2 - t1))
  print(string.format('TENK round_trips %d', N * 4))
  print(string.format('TENK ticks connect=%d round_trips=%d', connect_ticks, rt_ticks))
  T.ok(connect_ticks > 0, 'the swop thread ticked while connecting')
  T.ok(rt_ticks > 0, 'the swop thread ticked during the round trips')
end)

return T.run()
