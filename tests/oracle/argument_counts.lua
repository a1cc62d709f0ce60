-- Differs, to fix: OpenResty checks how many arguments send and receive get;
-- coevent's prelude does not (a vararg function there would cost on the
-- round trip's hot path: to measure with bench/callgrind.sh first). connect,
-- close and settimeout check theirs (connect.lua, close.lua, timeout.lua).
local s = connect('echo')
s:settimeout(200)
try('send()', function(r) r(s:send()) end)
try('receive with two', function(r) r(s:receive('*l', 2)) end)
try('send with two', function(r) r(s:send('a\n', 'b')) end)
s:close()
