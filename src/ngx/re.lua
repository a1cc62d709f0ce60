-- ngx.re: match, find, gmatch, sub, gsub on PCRE2 (re.rs compiles and
-- searches; the captures and replacements are made here).
local ngx, L, P, N, U = ...
local type, tostring, tonumber, error, pairs, ipairs = type, tostring, tonumber, error, pairs, ipairs
local concat, fmt, sub = table.concat, string.format, string.sub

-- A pattern is compiled once per flags (the cache 'o' asks for is always
-- on: nothing observable differs). FLAG: each option letter's bit in the
-- flags re_compile takes (re.rs's list).
local FLAG = N.re_flags
local DUPNAMES = FLAG.D
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

-- The compiled regex: { index, ncaptures, names (index → name), dupnames,
-- the captures' offsets that each search fills }.
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
  c = { idx, n, names, f % (2 * DUPNAMES) >= DUPNAMES, {} }
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
re.split = U.missing('ngx.re.split', "it is lua-resty-core's ngx.re module")
