-- A pattern that does not compile: nil and the library's message. OpenResty
-- (Debian's, on PCRE 8) and coevent (PCRE2) word it apart: a known difference.
try('bad regex', function(r) r(ngx.re.match('ab', '(a')) end)
try('bad regex mid', function(r) r(ngx.re.match('ab', 'a[b')) end)
try('bad regex gsub', function(r) r(ngx.re.gsub('ab', '(a', 'x')) end)
-- Stopped before the end: OpenResty adds where, ` at "<the rest>"`.
try('bad regex at', function(r) r(ngx.re.match('ab', 'a)b')) end)
