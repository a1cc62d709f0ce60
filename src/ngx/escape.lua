-- Escaping for URIs and SQL: ngx.escape_uri, ngx.unescape_uri,
-- ngx.encode_args, ngx.decode_args, ngx.quote_sql_str. Plain Lua.
local ngx, L, P, N, U = ...
local type, tostring, tonumber, error, pairs = type, tostring, tonumber, error, pairs
local concat, char, fmt, gsub = table.concat, string.char, string.format, string.gsub
local str_arg = U.str_arg

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
