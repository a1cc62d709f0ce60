-- ngx.re: captures and options, as OpenResty's PCRE gives them.
local function caps(m)
  if not m then return m end
  local t = {}
  for i = 0, 9 do
    if m[i] == nil then break end
    t[#t + 1] = tostring(i) .. '=' .. (m[i] == false and 'false' or m[i])
  end
  local names = {}
  for k, v in pairs(m) do
    if type(k) == 'string' then
      names[#names + 1] = k .. '=' .. (type(v) == 'table' and table.concat(v, '|') or tostring(v))
    end
  end
  table.sort(names)
  return table.concat(t, ' ') .. (#names > 0 and ' ' .. table.concat(names, ' ') or '')
end

local subjects = { 'hello 1234 world', 'HeLLo\nWorld', 'a1b22c333', '', 'ab', '中文abc', 'x=1&y=2' }
local patterns = {
  { [[(\d+)]], '' }, { [[(\w+) (\d+)]], 'jo' }, { [[(?<word>[a-z]+)]], 'i' }, { [[^world]], 'im' },
  { [[hello.world]], 's' }, { [[hello.world]], 'is' }, { [[ \d + # digits]], 'x' }, { [[(a)|(b)]], '' },
  { [[(?<n>a)|(?<n>b)]], 'D' }, { [[b]], 'a' }, { [[^.]], 'u' }, { [[(x)?(y)?]], '' }, { [[\d]], 'ajo' },
  { [[(?<k>\w+)=(?<v>\w+)]], '' },
}

for si, subj in ipairs(subjects) do
  for pi, p in ipairs(patterns) do
    local label = ('match s%d p%d'):format(si, pi)
    try(label, function(r)
      local m, err = ngx.re.match(subj, p[1], p[2])
      r(caps(m), err)
    end)
    try(('find s%d p%d'):format(si, pi), function(r) r(ngx.re.find(subj, p[1], p[2])) end)
    try(('find nth1 s%d p%d'):format(si, pi), function(r) r(ngx.re.find(subj, p[1], p[2], nil, 1)) end)
  end
end

try('ctx.pos', function(r)
  local ctx = { pos = 2 }
  local m = ngx.re.match('a1b2c3', [[\d]], '', ctx)
  r(m[0], ctx.pos)
end)
try('ctx.pos past the end', function(r)
  local ctx = { pos = 10 }
  r(ngx.re.match('a1', [[\d]], '', ctx), ctx.pos)
end)
try('gmatch', function(r)
  local out = {}
  for m in ngx.re.gmatch('a1b22c333', [[(\d)(\d)?]]) do out[#out + 1] = m[0] .. ':' .. tostring(m[2]) end
  r(table.concat(out, ','))
end)
try('gmatch empty', function(r)
  local out = {}
  for m in ngx.re.gmatch('abc', [[x*]]) do out[#out + 1] = '[' .. m[0] .. ']' end
  r(table.concat(out, ','))
end)
try('sub', function(r) r(ngx.re.sub('hello world', [[(o)]], '[$1$0${1}$$]')) end)
try('gsub', function(r) r(ngx.re.gsub('hello world', [[o]], '0')) end)
try('gsub empty', function(r) r(ngx.re.gsub('abc', [[x*]], '-')) end)
try('gsub function', function(r) r(ngx.re.gsub('a1b2', [[\d]], function(m) return '<' .. m[0] .. '>' end)) end)
try('gsub unset group', function(r) r(ngx.re.gsub('ab', [[(a)|(b)]], '[$1$2]')) end)
try('sub bad template', function(r) r(ngx.re.sub('ab', 'a', '${x}')) end)
try('sub trailing dollar', function(r) r(ngx.re.sub('ab', 'a', 'x$')) end)
try('bad flag', function(r) r(ngx.re.match('ab', 'a', 'q')) end)
try('nth out of bound', function(r) r(ngx.re.find('ab', 'a', '', nil, 2)) end)
try('number subject', function(r) r(ngx.re.find(12345, [[3]])) end)
