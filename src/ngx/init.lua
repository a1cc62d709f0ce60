-- coevent.ngx: the part of OpenResty's `ngx` API that client libraries use,
-- over coevent's loop (docs/ngx.md). This file makes the `ngx` table and
-- runs the parts, one file per job, each adding its functions to it:
--   thread.lua  ngx.socket, ngx.sleep, ngx.thread (coevent's own)
--   timer.lua   ngx.timer, ngx.worker
--   time.lua    ngx.now and the dates
--   output.lua  ngx.say, ngx.print, ngx.log
--   digest.lua  md5, sha1, hmac, crc32, base64 (computed in digest.rs)
--   escape.lua  URI and SQL escaping, the args
--   re.lua      ngx.re (PCRE2 in re.rs)
--   shdict.lua  ngx.shared (the store in shdict.rs)
--   run.lua     M.run: a program's run as resty's, with its end
--   bit.lua     LuaJIT's `bit` for Lua 5.3+ (source, loaded here if needed)
-- L: the coevent module; P: the prelude's part for ngx (sockets whose default
-- receive pattern is '*l', the threads' outcomes); N: the native functions
-- and the names of the operations they take (mod.rs); parts: the files above,
-- compiled (bit.lua as its source).
local L, P, N, parts = ...
local type, tostring, select, error, pairs = type, tostring, select, error, pairs
local fmt = string.format
local unpack = table.unpack or unpack
local pack = table.pack or function(...) return { n = select('#', ...), ... } end

-- The 5.1-era globals the libraries assume.
if unpack and _G.unpack == nil then _G.unpack = unpack end
if table.getn == nil then table.getn = function(t) return #t end end

if not jit and not package.preload.bit and not package.loaded.bit and math.type then
  package.preload.bit = load(parts.bit, '=bit', 't')
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

-- A string argument as OpenResty's C functions take it: a number becomes
-- its string, nil an empty one where `nil_ok`; else it raises, naming the
-- caller's caller's argument.
local function str_arg(name, i, v, nil_ok)
  local tv = type(v)
  if tv == 'string' then return v end
  if tv == 'number' then return tostring(v) end
  if tv == 'nil' and nil_ok then return '' end
  error(fmt("bad argument #%d to '%s' (string expected, got %s)", i, name, tv), 3)
end

-- The operations the natives take (mod.rs's lists, N.op_names: a string of
-- names each): N.ops[kind][name] is the number the native takes for it, its
-- place in the list from 0. A name that names none raises as its part loads,
-- instead of passing nil.
N.ops = {}
for kind, list in pairs(N.op_names) do
  local names, n = {}, 0
  for name in list:gmatch('%S+') do
    names[name], n = n, n + 1
  end
  N.ops[kind] = setmetatable(names, {
    __index = function(_, k) error(fmt("coevent.ngx: no %s operation '%s'", kind, tostring(k)), 2) end,
  })
end

-- What every part gets after (ngx, L, P, N).
local U = { missing = missing, absent = absent, str_arg = str_arg, pack = pack, unpack = unpack }

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

local uthreads = parts.thread(ngx, L, P, N, U)
local timer = parts.timer(ngx, L, P, N, U)
parts.time(ngx, L, P, N, U)
local set_level = parts.output(ngx, L, P, N, U)
parts.digest(ngx, L, P, N, U)
parts.escape(ngx, L, P, N, U)
parts.re(ngx, L, P, N, U)
local declare = parts.shdict(ngx, L, P, N, U)

-- L.config learns log_level and shared_dict: src/config.rs hands them here
-- (P.config), in the table's order, and the other options back for coevent's.
local config, split = L.config, P.config
L.config = function(options)
  if type(options) ~= 'table' then return config(options) end
  local mine, rest = split(options)
  for i = 1, #mine, 2 do
    local k, v = mine[i], mine[i + 1]
    if k == 'log_level' then
      if not set_level(v) then
        error(fmt("bad argument #1 to 'config' (log_level: unknown level '%s')", tostring(v)), 2)
      end
    else -- shared_dict
      if type(v) ~= 'table' then error("bad argument #1 to 'config' (shared_dict: table expected)", 2) end
      for name, size in pairs(v) do declare(name, size) end
    end
  end
  if rest then return config(rest) end
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

return { ngx = ngx, run = parts.run(ngx, L, P, N, U, timer, uthreads) }
