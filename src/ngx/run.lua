-- The program's run as resty's: M.run(f, ...), which the runner's --ngx
-- calls. Takes the timers' start and shutdown (timer.lua) and the user
-- threads (thread.lua), which a stop signal kills.
local ngx, L, P, N, U, timer, uthreads = ...
local type, error, pairs, pcall = type, error, pairs, pcall
local pack, unpack = U.pack, U.unpack
local done = P.done

-- f(...) protected: pack(true, results...) or {false, err} and the
-- traceback of err taken where it was raised: by xpcall's handler where a
-- yield crosses xpcall, else (PUC 5.1) from the dead coroutine f ran in,
-- whose yields are passed out (L.pcall's way). `call` names f for ngx.log.
local function call(f, ...) return pack(true, f(...)) end
local protected
if jit or _VERSION ~= 'Lua 5.1' then
  local traceback = N.traceback
  protected = function(f, ...)
    local tb
    local ok, r = xpcall(call, function(e)
      if type(e) == 'string' then tb = e .. '\n' .. traceback(2) end
      return e
    end, f, ...)
    if ok then return r end
    return { false, r, n = 2 }, tb
  end
else
  local traceback = debug and debug.traceback
  local create, resume, status, yield = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
  protected = function(f, ...)
    local co = create(call)
    local r = pack(resume(co, f, ...))
    while r[1] and status(co) == 'suspended' do
      r = pack(resume(co, yield(unpack(r, 2, r.n))))
    end
    if r[1] then return r[2] end
    return r, type(r[2]) == 'string' and traceback and traceback(co, r[2]) or nil
  end
end

-- Under the runner, a stop signal (SIGINT, SIGTERM) ends the program as
-- nginx's worker exits: the pending timers run premature, the script and its
-- user threads are killed. Signals reach no Lua code, so a thread looks for
-- one; this often, which is all a stop waits for.
local STOP_CHECK = 0.1

-- run(f, ...): L(f, ...) as resty runs a script: when f returns or raises,
-- the pending timers run at once with premature = true (the worker exits),
-- then f's error is raised, with its traceback.
return function(f, ...)
  local err, stopped
  local res = pack(pcall(L, function(...)
    timer.start()
    local watcher
    if N.signals() then
      local main = coroutine.running()
      watcher = L.spawn(function()
        while not N.stopping() do L.sleep(STOP_CHECK) end
        stopped = true
        timer.shutdown()
        for t in pairs(uthreads) do
          if not done[t] then pcall(L.kill, t) end
        end
        L.kill(main)
      end)
    end
    local r, tb = protected(f, ...)
    if watcher then L.kill(watcher) end
    timer.shutdown()
    if not r[1] then
      err = { tb or r[2] }
      return
    end
    return unpack(r, 2, r.n)
  end, ...))
  if stopped then error('interrupted', 0) end
  if not res[1] then error(res[2], 0) end
  if err then error(err[1], 0) end
  return unpack(res, 2, res.n)
end

