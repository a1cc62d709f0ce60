-- What the fault scripts share: bystanders that keep doing round trips while a
-- fault hits another thread, a wall clock, unique keys, process figures.
--
--   local F = require('support')
--   local r = F.amid(function() ... return values end)   -- the victim's results, packed
--
-- Under valgrind (COEVENT_VALGRIND=1) F.valgrind is true: scripts lower counts.

local T = require('harness')
local L = T.L

local F = {}
F.valgrind = os.getenv('COEVENT_VALGRIND') == '1'
F.BYSTANDERS = 50
F.ROUNDS = 20
-- A bystander's round trips are paced, so that 50 of them leave the CPU to the
-- victim and the peer. The most a bystander may do (the victim never ending).
F.PACE = 0.01
F.MAX_ROUNDS = 20000

F.now = T.now

F.pid = T.pid

local serial = 0
-- A key no other run shares (the peer keeps verdicts by key).
function F.key()
  serial = serial + 1
  return 'k' .. F.pid() .. '-' .. os.time() .. '-' .. serial
end

-- Resident set size of this process, in bytes (/proc/self/statm, 4 KiB pages).
function F.rss()
  local f = assert(io.open('/proc/self/statm'))
  local s = f:read('*l')
  f:close()
  return tonumber(s:match('^%S+%s+(%S+)')) * 4096
end

-- The soft RLIMIT_NOFILE, from /proc/self/limits.
function F.nofile()
  local f = assert(io.open('/proc/self/limits'))
  local s = f:read('*a')
  f:close()
  return tonumber(s:match('Max open files%s+(%d+)'))
end

-- One PING round trip on s; nil on success, else what went wrong.
local function ping(s, what)
  local n, e = s:send('PING\r\n')
  if n ~= 6 then return what .. ': send: ' .. tostring(n) .. ' ' .. tostring(e) end
  local r, e2, p = s:receive('*l')
  if r ~= '+PONG' then
    return string.format('%s: reply %s %s %s', what, T.show(r), T.show(e2), T.show(p))
  end
end

-- Runs victim() in this thread while `n` (F.BYSTANDERS) other light threads each
-- do PING round trips on their own connection to the peer's `ping`: all of them
-- connected and through a first round trip before the victim starts, each with
-- its next PING sent when the victim starts, and going on until it has done
-- F.ROUNDS and the victim has ended. Raises (after every bystander has ended) if
-- the victim raised or if any round trip got anything but exactly '+PONG'; else
-- returns the victim's results, packed. The counts are in F.last and printed:
-- `during` counts the round trips completed before the victim returned (none
-- when the victim's only wait ends in the turn whose replies the bystanders
-- read after it, as can happen under valgrind).
function F.amid(victim, n)
  n = n or F.BYSTANDERS
  local socks, starters = {}, {}
  for i = 1, n do
    starters[i] = L.spawn(function()
      local s = L.tcp()
      s:settimeout(60000)
      local ok, e = s:connect(T.host, T.port)
      if ok ~= 1 then return nil, 'bystander ' .. i .. ': connect: ' .. tostring(e) end
      local sent, e2 = s:send('ping\n')
      if sent ~= 5 then return nil, 'bystander ' .. i .. ': command: ' .. tostring(e2) end
      local bad = ping(s, 'bystander ' .. i .. ' round 1')
      if bad then return nil, bad end
      return s
    end)
  end
  local problems = {}
  for i = 1, n do
    local s, e = L.wait(starters[i])
    if s then socks[i] = s else problems[#problems + 1] = tostring(e) end
  end
  local state = { running = true, during = 0 }
  local loopers = {}
  for i, s in pairs(socks) do
    loopers[#loopers + 1] = L.spawn(function()
      local rounds = 1
      for _ = 1, F.MAX_ROUNDS do
        if rounds >= F.ROUNDS and not state.running then break end
        local bad = ping(s, 'bystander ' .. i .. ' round ' .. (rounds + 1))
        if bad then
          s:close()
          return nil, bad
        end
        rounds = rounds + 1
        if state.running then state.during = state.during + 1 end
        L.sleep(F.PACE)
      end
      if state.running then return nil, 'bystander ' .. i .. ': the victim ran past ' .. F.MAX_ROUNDS .. ' rounds' end
      local c, e = s:close()
      if c ~= 1 then return nil, 'bystander ' .. i .. ': close: ' .. tostring(e) end
      return rounds
    end)
  end
  socks = nil
  local r = T.pack(L.pcall(victim))
  state.running = false
  local total = 0
  for _, t in ipairs(loopers) do
    local rounds, e = L.wait(t)
    if rounds then total = total + rounds else problems[#problems + 1] = tostring(e) end
  end
  F.last = { bystanders = #loopers, rounds = total, during = state.during }
  print(string.format('# %d bystanders: %d round trips, %d of them while the victim ran', #loopers, total, state.during))
  if not r[1] then error(r[2], 0) end
  if #problems > 0 then
    error(#problems .. ' bystanders failed; first: ' .. problems[1], 0)
  end
  T.eq(#loopers, n, 'bystanders that ran')
  T.ok(total >= n * F.ROUNDS, 'every bystander did ' .. F.ROUNDS .. ' round trips')
  return { n = r.n - 1, T.unpack(r, 2, r.n) }
end

return F
