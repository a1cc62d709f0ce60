-- ngx.socket, ngx.sleep, ngx.thread: coevent's own sockets and light threads
-- (an ngx.socket.tcp object is the cosocket itself, its default receive
-- pattern '*l'). Returns the set of user threads, which the program's end
-- (run.lua) kills.
local ngx, L, P, N, U = ...
local type, select, error = type, select, error
local fmt = string.format
local unpack = U.unpack
local done = P.done

ngx.socket = {
  tcp = P.tcp,
  stream = P.tcp,
  connect = P.connect,
  udp = L.udp or U.missing('ngx.socket.udp', 'this build has no UDP sockets'),
}

ngx.sleep = L.sleep

local function outcome(r)
  if r[1] then return true, unpack(r, 2, r.n) end
  return false, r[2]
end

local function forever()
  while true do L.sleep(86400) end
end

-- The light threads ngx.thread.spawn made: OpenResty's user threads, the
-- only ones its wait and kill take (a plain coroutine would never end).
local uthreads = setmetatable({}, { __mode = 'k' })

ngx.thread = {
  spawn = function(...)
    local t = L.spawn(...)
    uthreads[t] = true
    return t
  end,
  -- wait(t1, t2, ...): the outcome of the first to end. Several: a watcher
  -- per thread kills a gate the caller waits on.
  wait = function(...)
    local n = select('#', ...)
    if n == 0 then error('at least one coroutine should be specified', 2) end
    for i = 1, n do
      local t = select(i, ...)
      if type(t) ~= 'thread' then
        error(fmt("bad argument #%d to 'wait' (coroutine expected, got %s)", i, type(t)), 2)
      end
      if not uthreads[t] then error('attempt to wait on a coroutine that is not a user thread', 2) end
      if done[t] then return outcome(done[t]) end
    end
    if n == 1 then
      L.wait((...))
      return outcome(done[(...)])
    end
    local gate, watchers = L.spawn(forever), {}
    for i = 1, n do
      local t = select(i, ...)
      watchers[i] = L.spawn(function()
        L.wait(t)
        L.kill(gate)
      end)
    end
    L.wait(gate)
    for i = 1, n do
      if not done[watchers[i]] then L.kill(watchers[i]) end
    end
    for i = 1, n do
      local r = done[(select(i, ...))]
      if r then return outcome(r) end
    end
  end,
  kill = function(t)
    if type(t) ~= 'thread' then error(fmt("bad argument #1 to 'kill' (coroutine expected, got %s)", type(t)), 2) end
    if not uthreads[t] then return nil, 'not user thread' end
    if done[t] then return nil, 'already terminated' end
    return L.kill(t)
  end,
}

return uthreads
