-- Light threads: newthread, coroutine_wait, swop, sleep, and L itself.
local T = require('harness')
local L, eq, same, pack = T.L, T.eq, T.same, T.pack

T.case('the module and its globals', function()
  eq(type(L), 'table', 'require returns a table')
  eq(getmetatable(L) ~= nil and type(getmetatable(L).__call), 'function', 'L is callable')
  eq(newthread, L.spawn, 'newthread')
  eq(coroutine_wait, L.wait, 'coroutine_wait')
  eq(swop, L.swop, 'swop')
  eq(type(L.sleep), 'function', 'L.sleep')
end, { loop = false })

T.case('newthread runs f at once, up to its first yield', function()
  local ev = {}
  ev[#ev + 1] = 'main before'
  local t = newthread(function(a, b)
    ev[#ev + 1] = 'child ' .. a .. b
    swop()
    ev[#ev + 1] = 'child after swop'
  end, 'x', 'y')
  ev[#ev + 1] = 'main after newthread'
  eq(type(t), 'thread', 'newthread returns a thread')
  eq(coroutine_wait(t), true, 'no results: true')
  ev[#ev + 1] = 'main after wait'
  eq(table.concat(ev, ', '), 'main before, child xy, main after newthread, child after swop, main after wait', 'order')
end)

T.case('coroutine_wait returns every result, nils included', function()
  local t = newthread(function() swop() return 1, nil, 'three', nil end)
  local r = pack(coroutine_wait(t))
  eq(r.n, 4, 'count')
  same(r, pack(1, nil, 'three', nil), 'results')
end)

T.case('coroutine_wait on a thread that raised: nil, err', function()
  local t = newthread(function() swop() error('thread failed') end)
  local ok, err = coroutine_wait(t)
  eq(ok, nil, 'first value')
  eq(type(err), 'string', 'err type')
  T.ok(err:find('thread failed', 1, true), 'err has the message: ' .. err)
  eq(err:find('stack traceback', 1, true), nil, 'err is the message alone')
end)

T.case('coroutine_wait passes a non-string error value through', function()
  if _VERSION == 'Lua 5.1' and not jit then
    T.skip('PUC 5.1 cannot yield across xpcall: an error arrives as a string there')
  end
  local obj = { code = 42 }
  local t = newthread(function() swop() error(obj) end)
  local ok, err = coroutine_wait(t)
  eq(ok, nil, 'first value')
  eq(err, obj, 'the error value itself')
end, { ci_may_skip = 'PUC Lua 5.1 cannot yield across xpcall' })

T.case('coroutine_wait on a thread that has already ended', function()
  local t = newthread(function(a) return a * 2 end, 21)
  eq(coroutine.status(t), 'dead', 'the thread ended inside newthread')
  eq(coroutine_wait(t), 42, 'results kept')
  local e = newthread(function() error('early') end)
  local ok, err = coroutine_wait(e)
  eq(ok, nil, 'an early error')
  T.ok(err:find('early', 1, true), 'its message: ' .. err)
end)

T.case('two waiters on one thread both get the results', function()
  local t = newthread(function() swop() swop() return 'r1', 'r2' end)
  local w1 = newthread(function() return coroutine_wait(t) end)
  local w2 = newthread(function() return coroutine_wait(t) end)
  same(pack(coroutine_wait(t)), pack('r1', 'r2'), 'main')
  same(pack(coroutine_wait(w1)), pack('r1', 'r2'), 'waiter 1')
  same(pack(coroutine_wait(w2)), pack('r1', 'r2'), 'waiter 2')
end)

T.case('two waiters on a thread that raises both get nil, err', function()
  local t = newthread(function() swop() error('shared failure') end)
  local w1 = newthread(function() return coroutine_wait(t) end)
  local w2 = newthread(function() return coroutine_wait(t) end)
  for i, w in ipairs({ w1, w2 }) do
    local r = pack(coroutine_wait(w))
    eq(r[1], nil, 'waiter ' .. i)
    T.ok(tostring(r[2]):find('shared failure', 1, true), 'waiter ' .. i .. ' err: ' .. tostring(r[2]))
  end
end)

T.case('coroutine_wait on itself raises, directly or round a cycle', function()
  local me = coroutine.running()
  T.raises(function() coroutine_wait(me) end, 'coroutine_wait: deadlock: a light thread would wait on itself')
  local a
  local b = newthread(function()
    swop()
    return pcall(coroutine_wait, a)
  end)
  a = newthread(function() return coroutine_wait(b) end)
  local ok, err = coroutine_wait(b)
  eq(ok, false, 'b waiting on a (which waits on b) raises')
  T.ok(tostring(err):find('coroutine_wait: deadlock: a light thread would wait on itself', 1, true), tostring(err))
  same(pack(coroutine_wait(a)), pack(false, err), 'a gets b results')
end)

T.case('coroutine_wait with bad arguments raises', function()
  T.raises(function() coroutine_wait(nil) end, "bad argument #1 to 'coroutine_wait'")
  T.raises(function() coroutine_wait(42) end, "bad argument #1 to 'coroutine_wait'")
  local co = coroutine.create(function() end)
  T.raises(function() coroutine_wait(co) end, "bad argument #1 to 'coroutine_wait'")
  T.raises(function() newthread(42) end, "bad argument #1 to 'newthread'")
end)

T.case('L returns only when every thread has ended', function()
  local flag = false
  local r = L(function()
    newthread(function()
      L.sleep(0.05)
      flag = true
    end)
    newthread(function() for _ = 1, 10 do swop() end end)
    return 'main done'
  end)
  eq(r, 'main done', 'result')
  eq(flag, true, 'the sleeping child finished before L returned')
end, { loop = false })

T.case("L returns f's results", function()
  same(pack(L(function(...) return ... end, 1, nil, 'x', nil)), pack(1, nil, 'x', nil), 'args back')
  eq(select('#', L(function() end)), 0, 'no results')
  same(pack(L(function() swop() return 'after', 'swop' end)), pack('after', 'swop'), 'after a swop')
end, { loop = false })

T.case("L raises f's error, with a traceback", function()
  local ok, err = pcall(L, function()
    swop()
    error('main failed')
  end)
  eq(ok, false, 'pcall')
  T.ok(tostring(err):find('main failed', 1, true), 'message: ' .. tostring(err))
  T.ok(tostring(err):find('stack traceback', 1, true), 'traceback: ' .. tostring(err))
  ok, err = pcall(L, function() error('at once') end)
  eq(ok, false, 'pcall, error before any yield')
  T.ok(tostring(err):find('at once', 1, true), 'message: ' .. tostring(err))
  -- The loop is over: the next one runs.
  eq(L(function() return 'next' end), 'next', 'L after an error')
end, { loop = false })

T.case("L raises f's error object as it is", function()
  if _VERSION == 'Lua 5.1' and not jit then
    T.skip('PUC 5.1 cannot yield across xpcall: an error arrives as a string there')
  end
  local obj = { code = 7 }
  local ok, err = pcall(L, function()
    swop()
    error(obj)
  end)
  eq(ok, false, 'pcall')
  eq(err, obj, 'the error value itself')
end, { loop = false, ci_may_skip = 'PUC Lua 5.1 cannot yield across xpcall' })

T.case("L waits for the other threads even when f raises", function()
  local flag = false
  local ok = pcall(L, function()
    newthread(function()
      for _ = 1, 5 do swop() end
      flag = true
    end)
    error('main failed')
  end)
  eq(ok, false, 'pcall')
  eq(flag, true, 'the other thread ran to its end')
end, { loop = false })

T.case('an error in an un-waited thread does not stop the loop', function()
  local done = {}
  newthread(function()
    swop()
    error('nobody waits for this (expected on stderr)')
  end)
  local t = newthread(function()
    for i = 1, 5 do
      swop()
      done[#done + 1] = i
    end
    return 'survived'
  end)
  eq(coroutine_wait(t), 'survived', 'the other thread')
  eq(#done, 5, 'all its turns')
end)

T.case('L can be called again, many times', function()
  for i = 1, 50 do
    eq(L(function(x) swop() return x + 1 end, i), i + 1, 'loop ' .. i)
  end
end, { loop = false })

T.case('calling L inside a running loop raises', function()
  T.raises(function() L(function() end) end, 'L: a coevent loop is already running')
  -- and the running loop is not disturbed
  swop()
  local t = newthread(function() return 'fine' end)
  eq(coroutine_wait(t), 'fine', 'the loop goes on')
end)

T.case('L with a bad argument raises', function()
  T.raises(function() L(42) end, "bad argument #1 to 'L'")
  T.raises(function() L() end, "bad argument #1 to 'L'")
end, { loop = false })

T.case('thread calls outside a loop raise', function()
  local msg = 'not inside a coevent loop (run it in a function given to L(...))'
  T.raises(function() newthread(function() end) end, msg)
  T.raises(function() swop() end, msg)
  T.raises(function() L.sleep(0) end, msg)
  T.raises(function() coroutine_wait(coroutine.create(function() end)) end, msg)
end, { loop = false })

T.case('sleep: timers wake in deadline order', function()
  local order = {}
  local a = newthread(function() L.sleep(0.06) order[#order + 1] = 'a' end)
  local b = newthread(function() L.sleep(0.02) order[#order + 1] = 'b' end)
  local c = newthread(function() L.sleep(0) order[#order + 1] = 'c' end)
  coroutine_wait(a)
  coroutine_wait(b)
  coroutine_wait(c)
  eq(table.concat(order), 'cba', 'order')
  T.raises(function() L.sleep(-1) end, "bad argument #1 to 'sleep'")
  T.raises(function() L.sleep('x') end, "bad argument #1 to 'sleep'")
end)

T.case('swop lets every other ready thread run first', function()
  local ev = {}
  for i = 1, 3 do
    newthread(function()
      ev[#ev + 1] = 't' .. i .. 'a'
      swop()
      ev[#ev + 1] = 't' .. i .. 'b'
    end)
  end
  swop()
  ev[#ev + 1] = 'main'
  eq(table.concat(ev, ' '), 't1a t2a t3a t1b t2b t3b main', 'order')
end)

T.case('L.kill: a sleeping thread ends at once, its waiters get nil, killed', function()
  local reached = false
  local t = newthread(function()
    L.sleep(30)
    reached = true
  end)
  local w = newthread(function() return coroutine_wait(t) end)
  eq(L.kill(t), true, 'kill')
  same(pack(coroutine_wait(t)), pack(nil, 'killed'), 'main waiting after the kill')
  same(pack(coroutine_wait(w)), pack(nil, 'killed'), 'a waiter from before the kill')
  eq(reached, false, 'the killed thread never went on')
  same(pack(L.kill(t)), pack(nil, 'already ended'), 'kill again')
end)

T.case('L.kill: a thread in the run queue, or waiting on another thread', function()
  local ran = false
  local a = newthread(function()
    swop()
    ran = true
  end)
  eq(L.kill(a), true, 'kill a thread that swopped')
  local b = newthread(function() L.sleep(30) end)
  local c = newthread(function()
    coroutine_wait(b)
    ran = true
  end)
  eq(L.kill(c), true, 'kill a thread waiting on another')
  eq(L.kill(b), true, 'kill the other')
  swop()
  eq(ran, false, 'neither went on')
end)

-- Issue 23, defect 2: a close wakes R's receive with what its socket held,
-- then R is killed before that wake is delivered, and N starts in the same
-- run (in the slot R had). The wake was R's: it must reach nobody else.
T.case('a wake on its way to a killed thread reaches no thread started after it', function()
  local s1 = T.connect('closeafter 5000 one\\ntw')
  local first
  local r = L.spawn(function()
    first = s1:receive('*l')
    return s1:receive('*l')
  end)
  -- Until R waits in its second receive, with 'tw' buffered.
  for _ = 1, 1e6 do
    if first then break end
    L.swop()
  end
  T.eq(first, 'one')
  local s2 = T.connect('slow 10 one\\ntwo\\n')
  s1:close()
  T.eq(L.kill(r), true)
  local n = L.spawn(function() return s2:receive('*l') end)
  T.same(T.pack(L.wait(n)), { 'one' }, "N's receive, on its own socket")
  T.same(T.pack(L.wait(r)), { nil, 'killed' })
  T.same(T.pack(s2:receive('*l')), { 'two' }, 'the socket is not left busy reading')
  s2:close()
end)

T.case('L.kill: errors', function()
  local me = coroutine.running()
  T.raises(function() L.kill(me) end, 'kill: a light thread cannot kill itself')
  T.raises(function() L.kill(42) end, "bad argument #1 to 'kill'")
  local done = newthread(function() return 1 end)
  same(pack(L.kill(done)), pack(nil, 'already ended'), 'an ended thread')
end)

T.case('L.pcall and L.xpcall: f may wait inside them (every Lua, 5.1 included)', function()
  same(pack(L.pcall(function(a, b)
    swop()
    return a + b, 'x'
  end, 1, 2)), pack(true, 3, 'x'), 'L.pcall results')
  local ok, err = L.pcall(function()
    swop()
    error('inside L.pcall')
  end)
  eq(ok, false, 'L.pcall of an error')
  T.ok(tostring(err):find('inside L.pcall', 1, true), tostring(err))
  local r = pack(L.xpcall(function()
    L.sleep(0)
    error('inside L.xpcall')
  end, function(e) return 'handled: ' .. tostring(e) end))
  eq(r[1], false, 'L.xpcall of an error')
  T.ok(tostring(r[2]):find('^handled: .*inside L.xpcall'), tostring(r[2]))
  same(pack(L.xpcall(function() swop() return 'fine' end, print)), pack(true, 'fine'), 'L.xpcall results')
end)

T.case('L.pcall and L.xpcall behave as pcall and xpcall (bug 10)', function()
  local callable = setmetatable({}, {
    __call = function(self, a, b)
      L.sleep(0.001) -- a wait inside: what L.pcall is for
      return 'called', a, b
    end,
  })
  local function handler(e) return 'handled: ' .. tostring(e) end
  local function check(what, f)
    local r = pack(L.pcall(f))
    if not r[1] then T.fail(what .. ' raised ' .. T.show(r[2]), 2) end
    return { n = r.n - 1, T.unpack(r, 2, r.n) }
  end
  same(check('L.pcall(callable table)', function() return L.pcall(callable, 1, 2) end),
    pack(true, 'called', 1, 2), 'L.pcall(callable table, 1, 2)')
  same(check('L.xpcall(callable table)', function() return L.xpcall(callable, handler, 1, 2) end),
    pack(true, 'called', 1, 2), 'L.xpcall(callable table, handler, 1, 2)')
  same(check('L.pcall(nil)', function() return L.pcall(nil) end), pack(pcall(nil)), 'L.pcall(nil) as pcall(nil)')
  same(check('L.xpcall(nil, handler)', function() return L.xpcall(nil, handler) end), pack(xpcall(nil, handler)),
    'L.xpcall(nil, handler) as xpcall(nil, handler)')
  same(check("L.pcall(error, 'boom')", function() return L.pcall(error, 'boom') end), pack(false, 'boom'),
    "L.pcall(error, 'boom')")
  local obj = {}
  same(check('L.pcall(error, obj)', function() return L.pcall(error, obj) end), pack(false, obj),
    'L.pcall(error, obj): the error value itself')
  same(check("L.pcall(string.rep, 'ab', 3)", function() return L.pcall(string.rep, 'ab', 3) end),
    pack(true, 'ababab'), "L.pcall(string.rep, 'ab', 3)")
  same(check("L.xpcall(error, handler, 'boom')", function() return L.xpcall(error, handler, 'boom') end),
    pack(false, 'handled: boom'), "L.xpcall(error, handler, 'boom')")
end)

T.case('user coroutines inside a light thread still work', function()
  local got = {}
  for v in coroutine.wrap(function()
    for i = 1, 3 do coroutine.yield(i) end
  end) do
    got[#got + 1] = v
    swop()
  end
  eq(table.concat(got, ','), '1,2,3', 'values from coroutine.wrap')
  local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
  same(pack(coroutine.resume(co, 1)), pack(true, 2), 'first resume')
  same(pack(coroutine.resume(co, 5)), pack(true, 10), 'second resume')
end)

T.case('a bare coroutine.yield in a light thread counts as a swop', function()
  local ev = {}
  local t = newthread(function()
    ev[#ev + 1] = 'child'
    coroutine.yield()
    ev[#ev + 1] = 'child again'
    return 'done'
  end)
  ev[#ev + 1] = 'main'
  eq(coroutine_wait(t), 'done', 'the thread ended normally')
  eq(table.concat(ev, ', '), 'child, main, child again', 'order')
end)

T.case('results of threads nobody waits for are collectable', function()
  local weak = setmetatable({}, { __mode = 'k' })
  for _ = 1, 100 do
    weak[newthread(function() return string.rep('x', 1000) end)] = true
  end
  swop()
  collectgarbage()
  collectgarbage()
  eq(next(weak), nil, 'every ended thread was collected')
end)

T.case('L.wrap and L.resume: user coroutines that wait inside a light thread', function()
  local gen = L.wrap(function(n)
    for i = 1, n do
      L.sleep(0)
      coroutine.yield(i * 10)
    end
    swop()
    return 'end'
  end)
  same(pack(gen(3), gen(), gen(), gen()), pack(10, 20, 30, 'end'), 'generator values')
  T.raises(gen, 'cannot resume dead coroutine')
  local co = coroutine.create(function(a)
    swop()
    local b = coroutine.yield(a + 1)
    L.sleep(0)
    return b * 2
  end)
  same(pack(L.resume(co, 1)), pack(true, 2), 'first yield')
  same(pack(L.resume(co, 5)), pack(true, 10), 'return')
  same(pack(L.resume(co)), pack(false, 'cannot resume dead coroutine'), 'dead')
  local bad = L.wrap(function()
    swop()
    error('inside L.wrap')
  end)
  -- (L.pcall: PUC 5.1's pcall cannot take the wait inside.)
  local ok, err = L.pcall(bad)
  eq(ok, false, 'L.wrap raises its error')
  T.ok(tostring(err):find('inside L.wrap', 1, true), tostring(err))
  -- Plain coroutine.wrap sees the wait itself: no value of its own comes out.
  local plain = coroutine.wrap(function() swop() return 'never seen first' end)
  T.ok(plain() ~= 'never seen first', 'coroutine.wrap gets the wait marker')
end)

-- Finalizers run wherever an allocation runs the collector, the scheduler's
-- own (filing a thread's end, between threads) included: newthread there
-- queues its thread, which runs; another call (L.sleep here) raises. (On PUC
-- 5.1 a Lua value made there, such as an error string, would be made inside
-- mlua's own protected call, which is not re-entrant: the process would crash.)
T.case('newthread from finalizers the scheduler runs: every thread runs', function()
  local mode = _VERSION == 'Lua 5.4' and collectgarbage('incremental')
  local pause = collectgarbage('setpause', 0)
  local mul = collectgarbage('setstepmul', jit and 100 or 1)
  collectgarbage()
  local started, ran, refused = 0, 0, {}
  local slept = 0
  local function fin()
    if not pcall(L.sleep, 0) then slept = slept + 1 end
    local ok, e = pcall(newthread, function() ran = ran + 1 end)
    if ok then started = started + 1 else refused[#refused + 1] = e end
  end
  for _ = 1, 100 do
    for _ = 1, 40 do T.finalized(fin) end
    local ts = {}
    for i = 1, 40 do ts[i] = newthread(function() return i end) end
    for i = 1, 40 do eq(coroutine_wait(ts[i]), i, 'thread ' .. i) end
  end
  collectgarbage('setpause', pause)
  collectgarbage('setstepmul', mul)
  if mode then collectgarbage(mode) end
  -- The last finalizers run; the threads they queued run before the swop ends.
  collectgarbage()
  L.swop()
  eq(#refused, 0, 'refused: ' .. tostring(refused[1]))
  T.ok(started > 0, 'finalizers started threads')
  eq(ran, started, 'threads that ran')
  eq(slept, started, 'L.sleep raised in every finalizer')
end)

return T.run()
