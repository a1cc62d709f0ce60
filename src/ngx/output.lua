-- Output: ngx.say/print write to stdout, ngx.log to stderr above a threshold
-- (warn, as resty's --errlog-level; L.config's log_level sets it). Returns
-- set_level(v): the level v names (a name or a number), or nil if none.
local ngx, L, P, N = ...
local type, tostring, select, error = type, tostring, select, error
local concat, fmt = table.concat, string.format

local LEVELS = { 'emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug' }
local LEVEL_BY_NAME = { stderr = 0 }
for i, name in ipairs(LEVELS) do LEVEL_BY_NAME[name] = i end
LEVEL_BY_NAME.err = 4
local threshold = 5

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

return function(v)
  local level = LEVEL_BY_NAME[v] or (type(v) == 'number' and v)
  if level then threshold = level end
  return level
end
