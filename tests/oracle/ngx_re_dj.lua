-- ngx.re's `d` (DFA: the longest match at the first position that matches,
-- no captures) and `J` (JavaScript compatibility), where OpenResty on PCRE 8
-- (the oracle's) and on PCRE2 (coevent's) agree. Where they do not:
-- ngx_re_dj_differences.lua.
local function caps(m)
  if not m then return m end
  local t = {}
  for k, v in pairs(m) do
    t[#t + 1] = tostring(k) .. '=' .. (type(v) == 'table' and table.concat(v, '|') or tostring(v))
  end
  table.sort(t)
  return table.concat(t, ' ')
end
local function match(label, subj, regex, opts, ctx)
  try(label, function(r)
    local m, err = ngx.re.match(subj, regex, opts, ctx)
    r(caps(m), err)
  end)
end

-- d: the longest match, where backtracking takes the first alternative that fits.
match('lazy', '<a><b>', [[<.*?>]], '')
match('lazy d', '<a><b>', [[<.*?>]], 'd')
match('alternatives', 'xabcd', [[ab|abc|abcd]], '')
match('alternatives d', 'xabcd', [[ab|abc|abcd]], 'd')
match('d no match', 'xyz', [[ab|abc]], 'd')
match('d empty match', 'baaa', [[a*]], 'd')
match('d empty subject', '', [[a*]], 'd')
-- Groups in a d pattern: m[0] alone, no numbered or named captures.
match('d groups', 'hello 1234', [[(\w+) (\d+)(x)?]], 'd')
match('d names', 'k=v', [[(?<k>\w+)=(?<v>\w+)]], 'd')
match('d dupnames', 'b', [[(?<n>a)|(?<n>b)]], 'dD')
match('d lookahead', 'ab! cd!', [[\w+(?=!)]], 'd')
match('d recursion', 'x((a)(b))', [[\((?:[^()]|(?R))*\)]], 'd')
-- With the other flags.
match('d anchored', 'x<a><b>', [[<.*?>]], 'da')
match('d anchored at 0', '<a><b>', [[<.*?>]], 'da')
match('d jit', '<a><b>', [[<.*?>]], 'dj')
match('d caseless', 'ABab', [[a|ab|aba|abab]], 'di')
match('d utf8', '中文abc', [[.|..]], 'du')
match('d multiline', 'a\nbc\nd', [[^\w+$]], 'dm')
match('d dotall', '<a\nb>', [[<.*>]], 'ds')
match('d extended', 'aaa', [[ a + # many ]], 'dx')
match('d once', '<a><b>', [[<.*?>]], 'do')
local ctx = { pos = 3 }
match('d ctx.pos', '<a>x<b><c>', [[<.*?>]], 'd', ctx)
try('d ctx.pos after', function(r) r(ctx.pos) end)
-- find: nth 0 is the match; any other is out of bound (no captures).
try('d find', function(r) r(ngx.re.find('xx<a><b>', [[(<).*?>]], 'd')) end)
try('d find nth 0', function(r) r(ngx.re.find('xx<a><b>', [[(<).*?>]], 'd', nil, 0)) end)
try('d find nth 1', function(r) r(ngx.re.find('xx<a><b>', [[(<).*?>]], 'd', nil, 1)) end)
try('d find ctx', function(r)
  local c = { pos = 4 }
  local from, to = ngx.re.find('a1b22c333', [[\d+?]], 'd', c)
  r(from, to, c.pos)
end)
try('d find none', function(r) r(ngx.re.find('abc', [[\d]], 'd')) end)
local function gmatch(label, subj, regex, opts)
  try(label, function(r)
    local out = {}
    for m in ngx.re.gmatch(subj, regex, opts) do out[#out + 1] = '[' .. caps(m) .. ']' end
    r(table.concat(out, ','))
  end)
end
gmatch('gmatch', 'a1b22c333', [[(\d)+?]], '')
gmatch('gmatch d', 'a1b22c333', [[(\d)+?]], 'd')
gmatch('gmatch d empty', 'abc', [[x*]], 'd')
gmatch('gmatch d mixed', 'aab', [[a*]], 'd')
-- sub and gsub: $0 is the longest match, $1 is empty.
try('sub d', function(r) r(ngx.re.sub('<a><b> <c>', [[<(.*?)>]], '[$0|$1]', 'd')) end)
try('gsub', function(r) r(ngx.re.gsub('a1b22c333', [[(\d)+?]], '[$0|$1]')) end)
try('gsub d', function(r) r(ngx.re.gsub('a1b22c333', [[(\d)+?]], '[$0|$1]', 'd')) end)
try('gsub d braces', function(r) r(ngx.re.gsub('a1b22', [[\d+?]], '${0}${1}$$', 'd')) end)
try('gsub d empty', function(r) r(ngx.re.gsub('abc', [[x*]], '-', 'd')) end)
try('gsub d function', function(r)
  r(ngx.re.gsub('a1b22c333', [[(\d)+?]], function(m) return '<' .. caps(m) .. '>' end, 'd'))
end)
try('gsub d none', function(r) r(ngx.re.gsub('abc', [[\d]], 'x', 'd')) end)

-- J: \u and \x as JavaScript reads them, \U a letter.
match('J \\u0041', 'xAy', [[\u0041]], 'J')
match('J \\u alone', 'xuy', [[\u]], 'J')
match('J \\u not hex', 'uzz', [[\uzz]], 'J')
match('J \\U', 'xUy', [[\U]], 'J')
match('J \\x41', 'xAy', [[\x41]], 'J')
match('J \\x one digit', 'x\4y x4', [[\x4]], 'J')
match('\\x one digit', 'x\4y x4', [[\x4]], '')
match('J \\x not hex', 'a\0z axz', [[a\xz]], 'J')
match('\\x not hex', 'a\0z axz', [[a\xz]], '')
match('J \\x{}', 'A' .. ('x'):rep(41), [[\x{41}]], 'J')
match('\\x{}', 'A' .. ('x'):rep(41), [[\x{41}]], '')
match('J \\u with i', 'XaY', [[\u0041]], 'Ji')
match('J \\u with u', '中文', [[\u6587]], 'Ju')
-- A back reference to a group that is unset matches the empty string.
match('J unset backref', 'b', [[(a)?\1b]], 'J')
match('unset backref', 'b', [[(a)?\1b]], '')
match('J forward ref', 'a', [[(\2)(a)]], 'J')
match('forward ref', 'a', [[(\2)(a)]], '')
-- [] matches nothing, [^] any byte, a newline too.
match('J []', 'ab', [[a[]|b]], 'J')
match('J [^]', '\n', [=[[^]]=], 'J')
match('[^]', 'a]', [=[[^]a]]=], '')
match('[]', 'a]', [=[[]a]]=], '')
-- With names, D, d and the template.
match('J names', 'k=v', [[(?<k>\w+)=(?<v>\w+)]], 'J')
match('J dupnames', 'b', [[(?<n>a)|(?<n>b)]], 'JD')
match('J d', 'AAA', [[\u0041+?]], 'dJ')
try('J gsub', function(r) r(ngx.re.gsub('A-B-C', [[\u002d]], '$0$0', 'J')) end)
try('J find', function(r) r(ngx.re.find('xxAB', [[\u0041(\u0042)]], 'J', nil, 1)) end)
