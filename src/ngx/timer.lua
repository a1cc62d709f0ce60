-- ngx.timer and ngx.worker. A timer is a light thread that sleeps. Pending
-- ones are kept so that the end of the program (run.lua) runs them at once
-- with premature = true. Returns that end's two calls: start() when a
-- program begins, shutdown() when it ends.
local ngx, L, P, N, U = ...
local type, error, pairs = type, error, pairs
local fmt = string.format
local pack, unpack = U.pack, U.unpack

local timers, exiting = {}, false

local function check_timer(name, delay, f)
  if type(delay) ~= 'number' then
    error(fmt("bad argument #1 to '%s' (number expected, got %s)", name, type(delay)), 3)
  end
  -- NaN too (OpenResty's C cast makes it a timer that never fires).
  if not (delay >= 0) then error(fmt("bad argument #1 to '%s' (delay must be >= 0)", name), 3) end
  if type(f) ~= 'function' then error(fmt("bad argument #2 to '%s' (function expected, got %s)", name, type(f)), 3) end
  if exiting then return nil, 'process exiting' end
  return true
end

ngx.timer = {
  at = function(delay, f, ...)
    local ok, err = check_timer('at', delay, f)
    if not ok then return nil, err end
    local args, t = pack(...)
    t = L.spawn(function()
      L.sleep(delay)
      timers[t] = nil
      f(false, unpack(args, 1, args.n))
    end)
    timers[t] = { f, args }
    return true
  end,
  every = function(delay, f, ...)
    local ok, err = check_timer('every', delay, f)
    if not ok then return nil, err end
    if delay == 0 then error("bad argument #1 to 'every' (delay must be > 0)", 2) end
    local args, t = pack(...)
    t = L.spawn(function()
      while true do
        L.sleep(delay)
        L.spawn(f, false, unpack(args, 1, args.n))
      end
    end)
    timers[t] = { f, args }
    return true
  end,
  running_count = function() return 0 end,
  pending_count = function()
    local n = 0
    for _ in pairs(timers) do n = n + 1 end
    return n
  end,
}

ngx.worker = {
  pid = N.pid,
  exiting = function() return exiting end,
  id = function() return 0 end,
  count = function() return 1 end,
}

return {
  start = function() exiting = false end,
  -- The program's end: pending timers run now, premature.
  shutdown = function()
    exiting = true
    for t, rec in pairs(timers) do
      timers[t] = nil
      L.kill(t)
      L.spawn(rec[1], true, unpack(rec[2], 1, rec[2].n))
    end
  end,
}
