-- ngx.re's `d` and `J` where OpenResty's PCRE decides (docs/differences.md):
-- the oracle's OpenResty is built on PCRE 8, coevent.ngx on PCRE2 (as
-- current OpenResty is). A DFA search that fails gives `pcre_exec() failed:
-- <code>`, the library's code: PCRE 8's -16 (an item the DFA cannot do),
-- -17 (a condition on a group) and -19 (OpenResty's 100-int workspace used
-- up) are PCRE2's -42, -40 and -43. And PCRE2's J (ALT_BSUX,
-- ALLOW_EMPTY_CLASS, MATCH_UNSET_BACKREF) no longer makes a lone `]` an error.
local function show(m, err) return m and m[0], err end
try('d back reference', function(r) r(show(ngx.re.match('aa', [[(a)\1]], 'd'))) end)
try('d \\K', function(r) r(show(ngx.re.match('ab', [[a\Kb]], 'd'))) end)
try('d condition', function(r) r(show(ngx.re.match('ab', [[(a)(?(1)b|c)]], 'd'))) end)
try('d workspace', function(r) r(show(ngx.re.match(('a'):rep(60), ('a?'):rep(40), 'd'))) end)
try('d find error', function(r) r(ngx.re.find('aa', [[(a)\1]], 'd')) end)
try('d gmatch error', function(r) r(ngx.re.gmatch('aa', [[(a)\1]], 'd')()) end)
try('d gsub error', function(r) r(ngx.re.gsub('aa', [[(a)\1]], 'x', 'd')) end)
try('J lone ]', function(r) r(show(ngx.re.match('AB]CD', [[AB]CD]], 'J'))) end)
try('J []a]', function(r) r(show(ngx.re.match('a]', [=[[]a]]=], 'J'))) end)
try('\\u without J', function(r) r(show(ngx.re.match('A', [[\u0041]]))) end)
