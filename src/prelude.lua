-- coevent's Lua side: the only place that yields. Each call into Rust either
-- finishes or answers WAIT (after noting what it waits for); the caller then
-- yields WAIT to the scheduler. A socket operation is finished by the
-- scheduler, which resumes the caller with the result (or WAIT again);
-- other waits are resumed with nothing, and the caller calls again. Inside a
-- loop, receive skips the first call: it yields its request to the scheduler.
-- RAISE in first place means: raise the message that follows, at the
-- caller's level, or at the level that comes third (0: an error Lua raised
-- inside the call, a finalizer's, raised again as it was).
local C, WAIT, RAISE = ...
local yield, error, setmetatable, type = coroutine.yield, error, setmetatable, type
local unpack = table.unpack or unpack
local done = C.done

local connect, receive, send = C.connect, C.receive, C.send
-- The common patterns cross into Rust as markers, not strings.
local PATTERN = { ['*l'] = C.LINE, l = C.LINE, ['*a'] = C.ALL, a = C.ALL }
local close, settimeout, setoption, join = C.close, C.settimeout, C.setoption, C.join

local S = {} -- cosocket methods
-- A cosocket is { id, guard? } with this metatable (see below); ID[cosocket]
-- is its id, the argument its operations take.
local MT = { __index = S }
local ID = setmetatable({}, { __mode = 'k' })
-- coevent.ngx's cosockets: the same methods but receive's default pattern.
local SN = {}
local MTN = { __index = SN }

-- Not in ID: a cosocket a finalizer resurrected (its id finds no socket, and
-- Rust says so), or no cosocket at all.
local function bad(self, name, mt)
  local m = getmetatable(self)
  if type(self) == 'table' and (m == (mt or MT) or not mt and m == MTN) then return rawget(self, 1) end
  error(("calling '%s' on bad self (cosocket expected, got %s)"):format(name, type(self)), 3)
end

-- LuaJIT only (see socket::Data): a short string crosses into Rust as a copy.
-- And there a flat array of strings and numbers (what client libraries
-- send) is joined by table.concat: a quarter of what Rust reading it costs
-- (about 850 instructions an element through mlua). Anything else goes to
-- Rust as it is, which checks it as OpenResty. (On PUC Lua the type() test
-- would cost a string send more.)
if C.send_bytes then
  local send_value, send_bytes, SHORT, type, next, concat = send, C.send_bytes, C.SHORT, type, next, table.concat
  local function flat(t)
    local n, k = 0, next(t)
    while k ~= nil do
      n, k = n + 1, next(t, k)
    end
    if n ~= #t then return t end
    local ok, s = pcall(concat, t)
    if ok then return s end
    return t
  end
  send = function(id, data)
    local t = type(data)
    if t == 'table' then
      data = flat(data)
      t = type(data)
    end
    if t == 'string' and #data <= SHORT then return send_bytes(id, data) end
    return send_value(id, data)
  end
end

-- The argument counts OpenResty checks (not on send and receive, the hot path).
local function nargs(prefix, n, ...)
  local s = n > 1 and 's' or ''
  error(('%sexpecting %d argument%s (including the object) but seen %d'):format(prefix, n, s, select('#', ...) + 1), 3)
end

-- connect's arguments: OpenResty's (host, port?, options?), or the seed's
-- (host, port, pool_size, pool_key).
local function dial(id, ...)
  local n = select('#', ...)
  if n < 1 or n > 4 then
    error(('ngx.socket connect: expecting 2, 3, or 4 arguments (including the object), but seen %d'):format(n + 1), 3)
  end
  local r, e, l = connect(id, ...)
  while r == WAIT do
    r, e, l = yield(WAIT)
  end
  if r == RAISE then error(e, l or 3) end
  return r, e
end

-- (Not tail calls: dial raises at the level of their caller.)
function S:connect(...)
  local r, e = dial(ID[self] or bad(self, 'connect'), ...)
  if e == nil then return r end
  return r, e
end

function S:send(data)
  local n, e, l = send(ID[self] or bad(self, 'send'), data)
  while n == WAIT do
    n, e, l = yield(WAIT)
  end
  if e == nil then return n end
  if n == RAISE then error(e, l or 2) end
  return n, e
end

-- LuaJIT: received data comes lent (src/lend.rs), its length and its offset
-- in the lending area, made into a string here.
local ffi_string, AREA
if C.lend then
  local ok, ffi = pcall(require, 'ffi')
  if ok then ffi_string, AREA = ffi.string, ffi.cast('const char *', C.lend()) end
end

-- receive's two versions for a default pattern: nil for cosocket.tcp (the
-- seed's '*a', chosen in Rust), '*l' for coevent.ngx's sockets (OpenResty's).
local function receivers(default)
  local function receive_now(self, pattern)
    local d, e, partial = receive(ID[self] or bad(self, 'receive'), PATTERN[pattern or default] or pattern)
    while d == WAIT do
      d, e, partial = yield(WAIT)
    end
    if e == nil then return d end
    if type(e) == 'number' then return ffi_string(AREA + e, d) end
    if d == RAISE then error(e, partial or 2) end
    -- A socket that was closed already gives no partial (OpenResty's count).
    if partial == nil then return d, e end
    return d, e, partial
  end

  -- Inside a loop (not on PUC 5.1, which cannot yield across pcall) receive
  -- yields its request to the scheduler, which reads (or waits) and resumes
  -- the thread with the result: a receive that must wait crosses into Rust
  -- once instead of twice. L installs it for the loop's duration. (It repeats
  -- receive_now's tail: a helper shared by both costs LuaJIT 2.5% per round trip.)
  if not C.YIELD_RECEIVE then return receive_now, receive_now end
  return receive_now, function(self, pattern)
    local d, e, partial = yield(WAIT, ID[self] or bad(self, 'receive'), PATTERN[pattern or default] or pattern)
    while d == WAIT do
      d, e, partial = yield(WAIT)
    end
    if e == nil then return d end
    if type(e) == 'number' then return ffi_string(AREA + e, d) end
    if d == RAISE then error(e, partial or 2) end
    if partial == nil then return d, e end
    return d, e, partial
  end
end
local receive_yielding
S.receive, receive_yielding = receivers(nil)

function S:close(...)
  if select('#', ...) > 0 then nargs('', 1, ...) end
  local r, e, l = close(ID[self] or bad(self, 'close'))
  if e == nil then return r end
  if r == RAISE then error(e, l or 2) end
  return r, e
end

-- Methods that neither wait nor take more than two arguments.
local function simple(f, name)
  return function(self, ...)
    local r, e, l = f(ID[self] or bad(self, name), ...)
    if e == nil then return r end
    if r == RAISE then error(e, l or 2) end
    return r, e
  end
end
S.getfd, S.getpeername, S.shutdown = simple(C.getfd, 'getfd'), simple(C.getpeername, 'getpeername'), simple(C.shutdown, 'shutdown')
local setkeepalive, getreusedtimes = simple(C.setkeepalive, 'setkeepalive'), simple(C.getreusedtimes, 'getreusedtimes')

function S:setkeepalive(...)
  local n = select('#', ...)
  if n > 2 then error(('expecting 1 to 3 arguments (including the object), but got %d'):format(n + 1), 2) end
  return setkeepalive(self, ...)
end

function S:getreusedtimes(...)
  local n = select('#', ...)
  if n > 0 then error(('expecting 1 argument (including the object), but got %d'):format(n + 1), 2) end
  return getreusedtimes(self)
end

function S:setoption(name, value)
  local r, e, l = setoption(ID[self] or bad(self, 'setoption'), name, value)
  if e == nil then return r end
  if r == RAISE then error(e, l or 2) end
  return r, e
end

-- receiveuntil's iterator holds the socket (as OpenResty's) and the guard of
-- its matcher in the engine. Arity errors are OpenResty's words.
local receiveuntil, read_until, select = C.receiveuntil, C['until'], select

function S:receiveuntil(...)
  local n = select('#', ...)
  if n ~= 1 and n ~= 2 then
    error(('expecting 2 or 3 arguments (including the object), but got %d'):format(n + 1), 2)
  end
  local pattern, options = ...
  if n == 2 and options == nil then error("bad argument #2 to 'receiveuntil' (table expected, got nil)", 2) end
  local sock = ID[self] and self or bad(self, 'receiveuntil') and self
  local m, e, l = receiveuntil(pattern, options)
  if e ~= nil then
    if m == RAISE then error(e, l or 2) end
    return m, e
  end
  return function(...)
    local size = ...
    if size == nil or select('#', ...) > 1 then
      local k = select('#', ...)
      if k > 1 then error(('expecting 0 or 1 argument, but seen %d'):format(k), 2) end
      if k == 1 then error("bad argument #1 to 'iterator' (number expected, got nil)", 2) end
    end
    local d, e, partial = read_until(sock[1], m, size)
    while d == WAIT do
      d, e, partial = yield(WAIT)
    end
    if e == nil then
      if d == nil then return nil, nil, nil end
      return d
    end
    if type(e) == 'number' then return ffi_string(AREA + e, d) end
    if d == RAISE then error(e, partial or 2) end
    if partial == nil then return d, e end
    return d, e, partial
  end
end

function S:receiveany(...)
  local n = select('#', ...)
  if n ~= 1 then error(('expecting 2 arguments (including the object), but got %d'):format(n + 1), 2) end
  local d, e, partial = C.receiveany(ID[self] or bad(self, 'receiveany'), ...)
  while d == WAIT do
    d, e, partial = yield(WAIT)
  end
  if e == nil then return d end
  if type(e) == 'number' then return ffi_string(AREA + e, d) end
  if d == RAISE then error(e, partial or 2) end
  if partial == nil then return d, e end
  return d, e, partial
end

function S:settimeouts(...)
  local n = select('#', ...)
  if n ~= 3 then
    error(('ngx.socket settimeout: expecting 4 arguments (including the object) but seen %d'):format(n + 1), 2)
  end
  local r, e, l = C.settimeouts(ID[self] or bad(self, 'settimeouts'), ...)
  if r == RAISE then error(e, l or 2) end
end

function S:settimeout(...)
  if select('#', ...) ~= 1 then nargs('ngx.socket settimeout: ', 2, ...) end
  local ms = ...
  local r, e, l = settimeout(ID[self] or bad(self, 'settimeout'), ms)
  if r == RAISE then error(e, l or 2) end
end

-- TLS (src/socket/tls.rs). A session crosses back as a number that
-- C.session wraps in its object.
function S:sslhandshake(...)
  local n = select('#', ...)
  if n > 4 then
    error(('ngx.socket sslhandshake: expecting 1 ~ 5 arguments (including the object), but seen %d'):format(n + 1), 2)
  end
  local reused = ...
  local r, e, l = C.sslhandshake(ID[self] or bad(self, 'sslhandshake'), ...)
  while r == WAIT do
    r, e, l = yield(WAIT)
  end
  if e == nil then
    if r == true then return reused == false or reused end
    return (C.session(r))
  end
  if r == RAISE then error(e, l or 2) end
  return r, e
end

function S:setclientcert(cert, key)
  local r, e, l = C.setclientcert(ID[self] or bad(self, 'setclientcert'), cert, key)
  if e == nil then return r end
  if r == RAISE then error(e, l or 2) end
  return r, e
end

-- The local side (src/socket/listener.rs): bind, listen, accept, getsockname.
local function plain(r, e, l)
  if e == nil then return r end
  -- (called in tail position: level 2 is the method's caller)
  if r == RAISE then error(e, l or 2) end
  return r, e
end

for _, name in ipairs({ 'bind', 'listen' }) do
  local f = C[name]
  S[name] = function(self, a, b)
    return plain(f(ID[self] or bad(self, name), a, b))
  end
end

function S:getsockname()
  local r, e, l = C.getsockname(ID[self] or bad(self, 'getsockname'))
  if r == RAISE then error(e, l or 2) end
  return r, e
end

for k, f in pairs(S) do
  SN[k] = f
end
local receive_yielding_ngx
SN.receive, receive_yielding_ngx = receivers('*l')

local L = {}

-- A collected cosocket is closed by a finalizer: its own on Lua 5.2 and
-- later; on 5.1 and LuaJIT, whose tables have none, that of a newproxy
-- userdata it holds, which finds the id in GID (weak keys stay until the
-- finalizer has run). Made here, not in Rust: a userdata made by mlua costs
-- a protected call on most builds (about 6,000 instructions on LuaJIT).
local release, guard = C.release, nil
if newproxy then
  local GID, proto = setmetatable({}, { __mode = 'k' }), newproxy(true)
  getmetatable(proto).__gc = function(p) release(GID[p]) end
  guard = function(id)
    local p = newproxy(proto)
    GID[p] = id
    return p
  end
else
  MT.__gc = function(s) release(rawget(s, 1)) end
end
MTN.__gc = MT.__gc

-- The cosocket of socket `id` (coevent.ngx's: with its metatable).
local function wrap(id, mt)
  local s = setmetatable({ id, guard and guard(id) }, mt or MT)
  ID[s] = id
  return s
end

local function tcp(level, mt)
  local id, e, l = C.tcp()
  if id == RAISE then error(e, l or level) end
  return wrap(id, mt)
end

local accept = C.accept
function S:accept()
  local id, e, l = accept(ID[self] or bad(self, 'accept'))
  while id == WAIT do
    id, e, l = yield(WAIT)
  end
  if id == RAISE then error(e, l or 2) end
  if e ~= nil then return nil, e end
  return wrap(id)
end

function L.tcp()
  return tcp(3)
end

-- ngx.socket.connect: a new socket, connected, or nil, err.
function L.connect(...)
  local s = tcp(3)
  local r, e = dial(s[1], ...)
  if r then return s end
  return nil, e
end

-- UDP sockets (src/socket/udp.rs): tables as tcp's, with OpenResty's
-- ngx.socket.udp methods and argument counts (min to max besides self).
local U = {}
local UMT = { __index = U, __gc = MT.__gc }
local UID = setmetatable({}, { __mode = 'k' })

local function method(name, f, min, max, arity)
  U[name] = function(self, ...)
    local n = select('#', ...)
    if n < min or n > max then error(arity:format(n + 1), 2) end
    local r, e, l = f(UID[self] or bad(self, name, UMT), ...)
    while r == WAIT do
      r, e, l = yield(WAIT)
    end
    if e == nil then
      if r == nil then return end -- settimeout: no results
      return r
    end
    if type(e) == 'number' then return ffi_string(AREA + e, r) end -- receive's data, lent
    if r == RAISE then error(e, l or 2) end
    return r, e
  end
end

method('setpeername', function(id, host, ...)
  local port = ...
  -- A port given as nil; nil alone is none given.
  if select('#', ...) == 1 and port == nil then port = WAIT end
  return C.setpeername(id, host, port)
end, 1, 2, 'ngx.socket.udp setpeername: expecting 2 or 3 arguments (including the object), but seen %d')
method('bind', C.udp_bind, 1, 2, 'expecting 2 or 3 arguments, but got %d')
method('send', C.udp_send, 1, 1, 'expecting 2 arguments (including the object), but got %d')
method('receive', C.udp_receive, 0, 1, 'expecting 1 or 2 arguments (including the object), but got %d')
method('settimeout', C.udp_settimeout, 1, 1,
  'ngx.socket settimeout: expecting at least 2 arguments (including the object) but seen %d')
method('close', C.udp_close, 0, 0, 'expecting 1 argument (including the object) but seen %d')

function L.udp(...)
  local n = select('#', ...)
  if n ~= 0 then error(('expecting zero arguments, but got %d'):format(n), 2) end
  local id, e, l = C.udp()
  if id == RAISE then error(e, l or 2) end
  local s = setmetatable({ id, guard and guard(id) }, UMT)
  UID[s] = id
  return s
end

-- A finished thread's results as coroutine_wait returns them.
local function results(r)
  if not r[1] then return nil, r[2] end
  if r.n == 1 then return true end
  return unpack(r, 2, r.n)
end

-- A light thread's coroutine is made here, not in Rust: so a finalizer that
-- calls newthread in the middle of a Rust call makes no Lua allocation there.
local BODY, create = C.body, coroutine.create

function L.spawn(f, ...)
  local t, e, l = C.spawn(type(f) == 'function' and create(BODY) or nil, f, ...)
  if t == RAISE then error(e, l or 2) end
  return t
end

function L.wait(t)
  while true do
    local r = done[t]
    if r ~= nil then return results(r) end
    local w, e, l = join(t)
    if w == RAISE then error(e, l or 2) end
    yield(WAIT)
  end
end

function L.resolve(name)
  local r, e, l = C.resolve(name)
  while r == WAIT do
    yield(WAIT)
    r, e, l = C.resolve(name)
  end
  if e == nil then return r end
  if r == RAISE then error(e, l or 2) end
  return r, e
end

function L.config(options)
  local r, e, l = C.config(options)
  if r == RAISE then error(e, l or 2) end
end

function L.kill(t)
  local r, e, l = C.kill(t)
  if e == nil then return r end
  if r == RAISE then error(e, l or 2) end
  return r, e
end

function L.sleep(seconds)
  local w, e, l = C.sleep(seconds)
  if w == RAISE then error(e, l or 2) end
  yield(WAIT)
end

function L.swop()
  local w, e, l = C.swop()
  if w == RAISE then error(e, l or 2) end
  yield(WAIT)
end

-- Coroutines inside a light thread: a wait made in them yields WAIT to their
-- resumer, which must pass it on to the scheduler (and the answer back in).
local resume, status = coroutine.resume, coroutine.status
local pack = table.pack or function(...) return { n = select('#', ...), ... } end

-- Resumes `co` from outcome `r` while it yields waits (every yield if `all`).
local function pass(co, r, all)
  while r[1] and status(co) == 'suspended' and (all or r[2] == WAIT) do
    r = pack(resume(co, yield(unpack(r, 2, r.n))))
  end
  return r
end

-- pcall and xpcall that let the function inside wait (PUC Lua 5.1's own cannot
-- yield across them): the function runs in a coroutine whose yields go out.
-- It is called from a Lua function, so callable tables and (on 5.1) C
-- functions work; what cannot be called fails as the built-ins fail.
local pcall, xpcall = pcall, xpcall
local function callable(f)
  if type(f) == 'function' then return true end
  local mt = getmetatable(f)
  return type(mt) == 'table' and mt.__call ~= nil
end

local function protected(f, ...)
  local co
  if type(f) == 'function' then
    local made
    made, co = pcall(create, f)
    -- PUC 5.1 makes no coroutine of a C function, which cannot yield there anyway.
    if not made then return pack(pcall(f, ...)) end
  else
    co = create(function(...) return f(...) end)
  end
  return pass(co, pack(resume(co, ...)), true)
end

function L.pcall(f, ...)
  if not callable(f) then return pcall(f, ...) end
  local r = protected(f, ...)
  return unpack(r, 1, r.n)
end

function L.xpcall(f, handler, ...)
  if not callable(f) then return xpcall(f, handler) end
  local r = protected(f, ...)
  if r[1] then return unpack(r, 1, r.n) end
  return false, handler(r[2])
end

-- coroutine.resume and coroutine.wrap for user coroutines (generators,
-- iterators) that may wait: their waits go to the scheduler, their own
-- yields to the caller.
function L.resume(co, ...)
  local r = pass(co, pack(resume(co, ...)), false)
  return unpack(r, 1, r.n)
end

function L.wrap(f)
  local co = create(f)
  return function(...)
    local r = pass(co, pack(resume(co, ...)), false)
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end

setmetatable(L, {
  __call = function(_, f, ...)
    local outer, outer_ngx = S.receive, SN.receive
    S.receive, SN.receive = receive_yielding, receive_yielding_ngx
    local ok, co, err = pcall(C.run, nil, f, ...)
    S.receive, SN.receive = outer, outer_ngx
    if not ok then error(co, 0) end
    if co == RAISE then error(err, 2) end
    if err then error(err, 0) end
    local r = done[co]
    return unpack(r, 2, r.n)
  end,
})

-- For coevent.ngx (src/ngx/): its sockets, and the threads' outcomes.
C.NGX = {
  tcp = function()
    return tcp(3, MTN)
  end,
  connect = function(...)
    local s = tcp(3, MTN)
    local r, e = dial(s[1], ...)
    if r then return s end
    return nil, e
  end,
  done = done,
}

-- The seed's globals.
cosocket = { tcp = L.tcp, connect = L.connect, udp = L.udp }
newthread, coroutine_wait, swop = L.spawn, L.wait, L.swop

return L
