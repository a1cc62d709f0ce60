-- coevent.ngx: the part of OpenResty's `ngx` API that client libraries use,
-- over coevent's loop (docs/ngx.md). Sockets, threads, timers and sleep are
-- coevent's own (an ngx.socket.tcp object is the cosocket itself); digests,
-- base64, ngx.re and the shared dictionaries' store are Rust (src/ngx.rs).
-- L: the coevent module; P: the prelude's part for ngx (sockets whose default
-- receive pattern is '*l', the threads' outcomes); N: the native functions.
local L, P, N = ...
local type, tostring, tonumber, select, error, pairs = type, tostring, tonumber, select, error, pairs
local concat, byte, char, fmt, sub, gsub = table.concat, string.byte, string.char, string.format, string.sub, string.gsub
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select('#', ...), ... } end
local done = P.done

-- The 5.1-era globals the libraries assume.
if unpack and _G.unpack == nil then _G.unpack = unpack end
if table.getn == nil then table.getn = function(t) return #t end end

-- LuaJIT's `bit` (nginx.dns.resolver requires it) on Lua 5.3+, over the
-- integer operators, with its 32-bit results. (PUC 5.1 has no operators:
-- there lua-bitop provides it.)
if not jit and not package.preload.bit and not package.loaded.bit and math.type then
  package.preload.bit = load([[
    local function tobit(x)
      x = x & 0xffffffff
      if x >= 0x80000000 then return x - 0x100000000 end
      return x
    end
    local function fold(op)
      return function(x, ...)
        x = tobit(x)
        for i = 1, select('#', ...) do x = op(x, tobit((select(i, ...)))) end
        return tobit(x)
      end
    end
    return {
      tobit = tobit,
      band = fold(function(a, b) return a & b end),
      bor = fold(function(a, b) return a | b end),
      bxor = fold(function(a, b) return a ~ b end),
      bnot = function(x) return tobit(~x) end,
      lshift = function(x, n) return tobit(x << (n & 31)) end,
      rshift = function(x, n) return tobit((x & 0xffffffff) >> (n & 31)) end,
      arshift = function(x, n) return tobit(tobit(x) >> (n & 31) | (tobit(x) < 0 and ~(0xffffffff >> (n & 31)) or 0)) end,
      rol = function(x, n) n = n & 31 x = x & 0xffffffff return tobit(x << n | x >> (32 - n)) end,
      ror = function(x, n) n = n & 31 x = x & 0xffffffff return tobit(x >> n | x << (32 - n)) end,
      bswap = function(x)
        x = x & 0xffffffff
        return tobit((x >> 24) | ((x >> 8) & 0xff00) | ((x & 0xff00) << 8) | ((x & 0xff) << 24))
      end,
      tohex = function(x, n)
        n = n or 8
        local s = string.format('%08x', x & 0xffffffff)
        if n < 0 then s, n = s:upper(), -n end
        return s:sub(-n)
      end,
    }
  ]], '=bit', 't')
end

-- A missing function raises, naming itself, instead of a nil call.
local function missing(name, why)
  return function()
    error(fmt('%s is not available in coevent.ngx (%s)', name, why or 'outside nginx'), 2)
  end
end
-- A table of functions that do not exist outside a request: any key raises.
local function absent(name, why)
  return setmetatable({}, {
    __index = function(_, k)
      error(fmt('%s.%s is not available in coevent.ngx (%s)', name, tostring(k), why), 2)
    end,
    __newindex = function(_, k)
      error(fmt('%s.%s is not available in coevent.ngx (%s)', name, tostring(k), why), 2)
    end,
  })
end

local ngx = {
  null = N.null,
  OK = 0, ERROR = -1, AGAIN = -2, DONE = -4, DECLINED = -5,
  HTTP_OK = 200, HTTP_NOT_FOUND = 404, HTTP_INTERNAL_SERVER_ERROR = 500,
  STDERR = 0, EMERG = 1, ALERT = 2, CRIT = 3, ERR = 4, WARN = 5, NOTICE = 6, INFO = 7, DEBUG = 8,
  ctx = {},
  config = {
    debug = false,
    ngx_lua_version = 10026,
    nginx_version = 1022001,
    subsystem = 'http',
    is_console = true,
    prefix = function() return '' end,
    nginx_configure = function() return '' end,
  },
}

-- Sockets, threads, sleep.

ngx.socket = {
  tcp = P.tcp,
  stream = P.tcp,
  connect = P.connect,
  udp = L.udp or missing('ngx.socket.udp', 'this build has no UDP sockets'),
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

-- Timers: light threads that sleep. Pending ones are kept so that the end
-- of the program (M.run) runs them at once with premature = true.
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

-- The program's end: pending timers run now, premature.
local function shutdown()
  exiting = true
  for t, rec in pairs(timers) do
    timers[t] = nil
    L.kill(t)
    L.spawn(rec[1], true, unpack(rec[2], 1, rec[2].n))
  end
end

ngx.worker = {
  pid = N.pid,
  exiting = function() return exiting end,
  id = function() return 0 end,
  count = function() return 1 end,
}

-- Time. ngx.now is not cached per loop turn as nginx's: it is read each call.
local now = N.now
ngx.now = now
ngx.time = function() return math.floor(now()) end
ngx.update_time = function() end
ngx.today = function() return os.date('%Y-%m-%d') end
ngx.localtime = function() return os.date('%Y-%m-%d %H:%M:%S') end
ngx.utctime = function() return os.date('!%Y-%m-%d %H:%M:%S') end
ngx.http_time = function(t) return os.date('!%a, %d %b %Y %H:%M:%S GMT', t) end
ngx.cookie_time = function(t) return os.date('!%a, %d-%b-%y %H:%M:%S GMT', t) end
ngx.get_phase = function() return 'timer' end

-- Output: ngx.say/print write to stdout, ngx.log to stderr above a threshold.
local LEVELS = { 'emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug' }
local LEVEL_BY_NAME = { stderr = 0 }
for i, name in ipairs(LEVELS) do LEVEL_BY_NAME[name] = i end
LEVEL_BY_NAME.err = 4
local threshold = 5 -- warn, as resty's --errlog-level

-- ngx.print's argument: strings, numbers, booleans, nil, ngx.null, and
-- arrays of those (flattened).
local function flatten(out, v, name)
  local tv = type(v)
  if tv == 'string' then
    out[#out + 1] = v
  elseif tv == 'number' then
    out[#out + 1] = fmt('%.14g', v)
  elseif tv == 'nil' then
    out[#out + 1] = 'nil'
  elseif tv == 'boolean' then
    out[#out + 1] = v and 'true' or 'false'
  elseif v == ngx.null then
    out[#out + 1] = 'null'
  elseif tv == 'table' then
    for i = 1, #v do flatten(out, v[i], name) end
  else
    error(fmt('bad argument to \'%s\' (%s value)', name, tv), 3)
  end
end

local function output(name, nl, ...)
  local out = {}
  for i = 1, select('#', ...) do
    flatten(out, (select(i, ...)), name)
  end
  if nl then out[#out + 1] = '\n' end
  io.stdout:write(concat(out))
  return 1
end

ngx.say = function(...) return output('say', true, ...) end
ngx.print = function(...) return output('print', false, ...) end
ngx.flush = function()
  io.stdout:flush()
  return 1
end
ngx.eof = ngx.flush

ngx.log = function(level, ...)
  if type(level) ~= 'number' then error(fmt("bad argument #1 to 'log' (number expected, got %s)", type(level)), 2) end
  if level > threshold then return end
  local parts = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    local tv = type(v)
    if tv == 'string' or tv == 'number' then
      parts[#parts + 1] = tostring(v)
    elseif tv == 'nil' or tv == 'boolean' then
      parts[#parts + 1] = tostring(v)
    elseif v == ngx.null then
      parts[#parts + 1] = 'null'
    elseif tv == 'table' and getmetatable(v) and getmetatable(v).__tostring then
      parts[#parts + 1] = tostring(v)
    else
      error(fmt("bad argument #%d to 'log' (expected table to have __tostring metamethod)", i + 1), 2)
    end
  end
  local where = N.where(2) or ''
  io.stderr:write(fmt('%s [%s] %d#%d: [lua] %s%s\n', os.date('%Y/%m/%d %H:%M:%S'), LEVELS[level] or 'stderr',
    N.pid(), N.pid(), where, concat(parts)))
end

-- Digests and encodings (src/ngx.rs), with OpenResty's argument checks.
local digest = N.digest

local function str_arg(name, i, v, nil_ok)
  local tv = type(v)
  if tv == 'string' then return v end
  if tv == 'number' then return tostring(v) end
  if tv == 'nil' and nil_ok then return '' end
  error(fmt("bad argument #%d to '%s' (string expected, got %s)", i, name, tv), 3)
end

ngx.md5 = function(s) return digest(0, str_arg('md5', 1, s, true)) end
ngx.md5_bin = function(s) return digest(1, str_arg('md5_bin', 1, s, true)) end
ngx.sha1_bin = function(s) return digest(2, str_arg('sha1_bin', 1, s, true)) end
ngx.hmac_sha1 = function(key, s)
  return digest(3, str_arg('hmac_sha1', 2, s), str_arg('hmac_sha1', 1, key))
end
ngx.crc32_short = function(s) return digest(4, str_arg('crc32_short', 1, s)) end
ngx.crc32_long = function(s) return digest(4, str_arg('crc32_long', 1, s)) end
ngx.encode_base64 = function(s, no_padding)
  if no_padding ~= nil and type(no_padding) ~= 'boolean' then
    error("bad no_padding: boolean expected, got " .. type(no_padding), 2)
  end
  return digest(5, str_arg('encode_base64', 1, s, true), no_padding)
end
ngx.decode_base64 = function(s)
  if type(s) ~= 'string' then error('string argument only', 2) end
  return digest(6, s)
end

-- URI escaping: the bytes nginx's ngx_escape_uri escapes for each type
-- (0: a URI, 1: arguments, 2: a component, the default), as the oracle
-- lists them (tests/oracle/ngx_encode.lua).
local ESCAPE = {}
for t, keep in pairs({ [0] = '[!-~]', [1] = '[!-~]', [2] = "[%w%-%._~!'()*]" }) do
  local e = {}
  for b = 0, 255 do
    local c = char(b)
    if not c:match(keep) or (t < 2 and c:match('[#%%?]')) or (t == 1 and c == '+') then e[c] = fmt('%%%02X', b) end
  end
  ESCAPE[t] = e
end
ngx.escape_uri = function(s, t)
  s = str_arg('escape_uri', 1, s, true)
  return (gsub(s, '.', ESCAPE[t] or ESCAPE[2]))
end
local function unhex(h) return char(tonumber(h, 16)) end
ngx.unescape_uri = function(s)
  s = str_arg('unescape_uri', 1, s, true)
  return (gsub(gsub(s, '+', ' '), '%%(%x%x)', unhex))
end

ngx.encode_args = function(args)
  if type(args) ~= 'table' then
    error(fmt("bad argument #1 to 'encode_args' (table expected, got %s)", type(args)), 2)
  end
  local out, esc = {}, ngx.escape_uri
  for k, v in pairs(args) do
    if type(k) ~= 'string' then error('attempt to use a non-string key in the "args" table', 2) end
    local ek = esc(k)
    local function one(x)
      if x == true then
        out[#out + 1] = ek
      elseif x ~= false then
        out[#out + 1] = ek .. '=' .. esc(type(x) == 'number' and tostring(x) or x)
      end
    end
    if type(v) == 'table' then
      for i = 1, #v do one(v[i]) end
    else
      one(v)
    end
  end
  return concat(out, '&')
end

ngx.decode_args = function(s, max)
  s = str_arg('decode_args', 1, s)
  max = max or 100
  local args, n = {}, 0
  for part in s:gmatch('[^&]+') do
    if max > 0 and n >= max then break end
    n = n + 1
    local k, v = part:match('^([^=]*)=(.*)$')
    if k then
      k, v = ngx.unescape_uri(k), ngx.unescape_uri(v)
    else
      k, v = ngx.unescape_uri(part), true
    end
    local old = args[k]
    if k == '' then -- an empty name: skipped, as OpenResty's
    elseif old == nil then
      args[k] = v
    elseif type(old) == 'table' then
      old[#old + 1] = v
    else
      args[k] = { old, v }
    end
  end
  return args
end

local SQL = { ['\0'] = '\\0', ['\b'] = '\\b', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\26'] = '\\Z',
  ['\\'] = '\\\\', ["'"] = "\\'", ['"'] = '\\"' }
ngx.quote_sql_str = function(s)
  s = str_arg('quote_sql_str', 1, s)
  return "'" .. gsub(s, '[%c\\\'"]', SQL) .. "'"
end

-- ngx.re: PCRE2 through src/ngx.rs. A pattern is compiled once per flags
-- (the cache 'o' asks for is always on: nothing observable differs).
local FLAG = { i = 1, m = 2, s = 4, x = 8, u = 16, U = 16, j = 32, a = 64, D = 128, d = 256, J = 512, o = 0 }
local compiled, opts_cache = {}, {}
local re_compile, re_info, re_exec = N.re_compile, N.re_info, N.re_exec

local function parse_opts(opts)
  local f = opts_cache[opts]
  if f then return f end
  f = 0
  for i = 1, #opts do
    local c = sub(opts, i, i)
    local bit = FLAG[c]
    if bit == nil then error(fmt('unknown flag "%s" (flags "%s")', c, opts), 4) end
    if bit > 0 and f % (bit * 2) < bit then f = f + bit end
  end
  opts_cache[opts] = f
  return f
end

-- The compiled regex: { index, ncaptures, names (index → name), dupnames }.
local function compile(regex, opts)
  if type(regex) ~= 'string' then regex = tostring(regex) end
  opts = opts or ''
  local key = regex .. '\0' .. opts
  local c = compiled[key]
  if c then return c end
  local f = parse_opts(opts)
  local idx, err = re_compile(regex, f)
  if idx == false then -- the native cache started over
    compiled = {}
    idx, err = re_compile(regex, f)
  end
  if not idx then return nil, err end
  local n, names = re_info(idx)
  c = { idx, n, names, f % 256 >= 128, {} }
  compiled[key] = c
  return c
end

local function captures(c, subj, caps, res)
  res = res or {}
  for i = 0, c[2] do
    local from = caps[2 * i + 1]
    res[i] = from and sub(subj, from, caps[2 * i + 2]) or false
  end
  for i, name in pairs(c[3]) do
    local cap = res[i]
    if c[4] then
      if cap then
        local old = res[name]
        if old then old[#old + 1] = cap else res[name] = { cap } end
      end
    else
      res[name] = cap
    end
  end
  return res
end

-- One search from byte `pos` (0-based): true with c[5] filled, or nil(, err).
local function exec(c, subj, pos)
  return re_exec(c[1], subj, pos, c[5])
end

local re = {}
ngx.re = re

local function match_helper(want_caps, subj, regex, opts, ctx, res_or_nth)
  subj = tostring(subj)
  local c, err = compile(regex, opts)
  if not c then
    if want_caps then return nil, err end
    return nil, nil, err
  end
  local pos = 0
  if ctx then
    pos = ctx.pos
    pos = (pos and pos > 0) and pos - 1 or 0
  end
  local ok
  ok, err = exec(c, subj, pos)
  if not ok then
    if not err then return nil end
    if want_caps then return nil, err end
    return nil, nil, err
  end
  local caps = c[5]
  if ctx then ctx.pos = caps[2] + 1 end
  if want_caps then return captures(c, subj, caps, res_or_nth) end
  local nth = res_or_nth
  if not nth or nth < 0 then nth = 0 end
  if nth > c[2] then return nil, nil, 'nth out of bound' end
  local from = caps[2 * nth + 1]
  if not from then return nil, nil end
  return from, caps[2 * nth + 2]
end

re.match = function(subj, regex, opts, ctx, res) return match_helper(true, subj, regex, opts, ctx, res) end
re.find = function(subj, regex, opts, ctx, nth) return match_helper(false, subj, regex, opts, ctx, nth) end

re.gmatch = function(subj, regex, opts)
  subj = tostring(subj)
  local c, err = compile(regex, opts)
  if not c then return nil, err end
  local pos, len = 0, #subj
  return function()
    if not pos then return nil end
    local ok, e = exec(c, subj, pos)
    if not ok then
      pos = nil
      return nil, e
    end
    local caps = c[5]
    local res = captures(c, subj, caps)
    local to = caps[2]
    if to == caps[1] - 1 then -- an empty match: step over a byte
      to = to + 1
      if to > len then pos = nil return res end
    end
    pos = to
    return res
  end
end

-- The replacement template: $0..$N, ${N}, $$. Parsed into a list of pieces
-- (strings and capture numbers).
local function template(s)
  local pieces, i, n = {}, 1, #s
  local lit = {}
  while i <= n do
    local c = sub(s, i, i)
    if c ~= '$' then
      lit[#lit + 1] = c
      i = i + 1
    else
      local nxt = sub(s, i + 1, i + 1)
      if nxt == '$' then
        lit[#lit + 1] = '$'
        i = i + 2
      else
        local d, e = s:match('^(%d+)()', i + 1)
        if not d then d, e = s:match('^{(%d+)}()', i + 1) end
        if not d then return nil end
        if #lit > 0 then pieces[#pieces + 1] = concat(lit) lit = {} end
        pieces[#pieces + 1] = tonumber(d)
        i = e
      end
    end
  end
  if #lit > 0 then pieces[#pieces + 1] = concat(lit) end
  return pieces
end

local function sub_helper(global, subj, regex, replace, opts)
  subj = tostring(subj)
  local c, err = compile(regex, opts)
  if not c then return nil, nil, err end
  local pieces
  if type(replace) ~= 'function' then
    pieces = template(tostring(replace))
    if not pieces then return nil, nil, 'failed to compile the replacement template' end
  end
  local out, count, pos, cp, len = {}, 0, 0, 0, #subj
  while true do
    local ok
    ok, err = exec(c, subj, pos)
    if not ok then
      if err then return nil, nil, err end
      break
    end
    count = count + 1
    local caps = c[5]
    out[#out + 1] = sub(subj, cp + 1, caps[1] - 1)
    if pieces then
      for _, p in ipairs(pieces) do
        if type(p) == 'number' then
          if p <= c[2] and caps[2 * p + 1] then out[#out + 1] = sub(subj, caps[2 * p + 1], caps[2 * p + 2]) end
        else
          out[#out + 1] = p
        end
      end
    else
      local from, to = caps[1], caps[2]
      out[#out + 1] = tostring(replace(captures(c, subj, caps)))
      caps[1], caps[2] = from, to -- the callback may have used this regex
    end
    cp = caps[2]
    pos = cp
    if pos == caps[1] - 1 then
      pos = pos + 1
      if pos > len then break end
    end
    if not global then break end
  end
  if count == 0 then return subj, 0 end
  out[#out + 1] = sub(subj, cp + 1)
  return concat(out), count
end

re.sub = function(subj, regex, replace, opts) return sub_helper(false, subj, regex, replace, opts) end
re.gsub = function(subj, regex, replace, opts) return sub_helper(true, subj, regex, replace, opts) end
re.split = missing('ngx.re.split', "it is lua-resty-core's ngx.re module")

-- ngx.shared.DICT: the store is Rust (coevent_ffi::shdict), per process.
local dict = N.dict
local D = {}
local DICT = { __index = D }
ngx.shared = {}

local function zone(self)
  if type(self) ~= 'table' or getmetatable(self) ~= DICT then error('bad "zone" argument', 3) end
  return self[1]
end

local function key_arg(k)
  if k == nil then return nil, 'nil key' end
  if type(k) ~= 'string' then k = tostring(k) end
  if #k == 0 then return nil, 'empty key' end
  if #k > 65535 then return nil, 'key too long' end
  return k
end

local function number_arg(v, what)
  if v == nil then return 0 end
  if type(v) ~= 'number' then error(fmt('bad "%s" argument', what), 3) end
  return v
end

-- A ttl: OpenResty refuses a negative one (NaN passes its `< 0` and, as a
-- huge one, never expires: coevent_ffi::shdict::deadline).
local function ttl_arg(v, what)
  if v == nil then return 0 end
  if type(v) ~= 'number' or v < 0 then error(fmt('bad "%s" argument', what), 3) end
  return v
end

-- get, get_stale: (op 0, 1)
for op, name in pairs({ [0] = 'get', [1] = 'get_stale' }) do
  D[name] = function(self, key)
    local z = zone(self)
    local k, err = key_arg(key)
    if not k then return nil, err end
    return dict(op, z, k)
  end
end

-- set, safe_set, add, safe_add, replace: (op 2..6)
for op, name in pairs({ [2] = 'set', [3] = 'safe_set', [4] = 'add', [5] = 'safe_add', [6] = 'replace' }) do
  D[name] = function(self, key, value, exptime, flags)
    local z = zone(self)
    exptime = ttl_arg(exptime, 'exptime')
    local k, err = key_arg(key)
    if not k then return nil, err, false end
    return dict(op, z, k, value, exptime, number_arg(flags, 'user_flags'))
  end
end

function D:delete(key)
  return self:set(key, nil)
end

function D:incr(key, value, init, init_ttl)
  local z = zone(self)
  local k, err = key_arg(key)
  if not k then return nil, err end
  if type(value) ~= 'number' then
    value = tonumber(value)
    if not value then return nil, 'not a number' end
  end
  if init ~= nil and type(init) ~= 'number' then error('bad "init" argument', 2) end
  return dict(7, z, k, value, init, ttl_arg(init_ttl, 'init_ttl'))
end

for op, name in pairs({ [8] = 'lpush', [9] = 'rpush', [10] = 'lpop', [11] = 'rpop', [12] = 'llen' }) do
  D[name] = function(self, key, value)
    local z = zone(self)
    local k, err = key_arg(key)
    if not k then return nil, err end
    return dict(op, z, k, value)
  end
end

function D:flush_all() dict(13, zone(self)) end
function D:flush_expired(max) return dict(14, zone(self), nil, number_arg(max, 'max_count')) end
function D:get_keys(max) return dict(15, zone(self), nil, max == nil and 1024 or number_arg(max, 'max_count')) end

function D:ttl(key)
  local z = zone(self)
  local k, err = key_arg(key)
  if not k then return nil, err end
  return dict(16, z, k)
end

function D:expire(key, exptime)
  local z = zone(self)
  local k, err = key_arg(key)
  if not k then return nil, err end
  if type(exptime) ~= 'number' then error('bad "exptime" argument', 2) end
  return dict(17, z, k, exptime)
end

function D:capacity() return dict(18, zone(self)) end
function D:free_space() return dict(19, zone(self)) end

local function declare(name, size)
  if type(name) ~= 'string' then error('shared_dict: the names must be strings', 4) end
  local bytes = type(size) == 'number' and size or type(size) == 'string' and N.size(size)
  if not bytes or bytes < 8192 then
    error(fmt('shared_dict: bad size for "%s": %s (at least 8k)', name, tostring(size)), 4)
  end
  if ngx.shared[name] then return end
  ngx.shared[name] = setmetatable({ N.dict_new(bytes), name = name }, DICT)
end

-- L.config learns log_level and shared_dict; the other options go to coevent's.
local config = L.config
L.config = function(options)
  if type(options) ~= 'table' then return config(options) end
  local rest, any = {}, false
  for k, v in pairs(options) do
    if k == 'log_level' then
      local level = LEVEL_BY_NAME[v] or (type(v) == 'number' and v)
      if not level then error(fmt("bad argument #1 to 'config' (log_level: unknown level '%s')", tostring(v)), 2) end
      threshold = level
    elseif k == 'shared_dict' then
      if type(v) ~= 'table' then error("bad argument #1 to 'config' (shared_dict: table expected)", 2) end
      for name, size in pairs(v) do declare(name, size) end
    else
      rest[k], any = v, true
    end
  end
  if any then return config(rest) end
end

-- What does not exist outside a request.
local WHY = 'no request outside nginx'
ngx.var = absent('ngx.var', WHY)
ngx.req = absent('ngx.req', WHY)
ngx.resp = absent('ngx.resp', WHY)
ngx.header = absent('ngx.header', WHY)
ngx.location = absent('ngx.location', WHY)
ngx.arg = absent('ngx.arg', WHY)
ngx.exit = missing('ngx.exit', 'no request to end; return from the script or call os.exit')
ngx.exec = missing('ngx.exec', WHY)
ngx.redirect = missing('ngx.redirect', WHY)
ngx.send_headers = missing('ngx.send_headers', WHY)
ngx.headers_sent = false
ngx.on_abort = missing('ngx.on_abort', WHY)

setmetatable(ngx, {
  __index = function(_, k)
    error(fmt('ngx.%s is not available in coevent.ngx', tostring(k)), 2)
  end,
})

_G.ngx = ngx

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
local M = { ngx = ngx }
function M.run(f, ...)
  local err, stopped
  local res = pack(pcall(L, function(...)
    exiting = false
    local watcher
    if N.signals() then
      local main = coroutine.running()
      watcher = L.spawn(function()
        while not N.stopping() do L.sleep(STOP_CHECK) end
        stopped = true
        shutdown()
        for t in pairs(uthreads) do
          if not done[t] then pcall(L.kill, t) end
        end
        L.kill(main)
      end)
    end
    local r, tb = protected(f, ...)
    if watcher then L.kill(watcher) end
    shutdown()
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

return M
