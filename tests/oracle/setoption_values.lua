-- Differs, to decide: a value that is not a number or a boolean. Both raise;
-- OpenResty's message is LuaJIT's FFI conversion error naming its internal
-- function, coevent names the argument as luaL_argerror does.
local s = connect('echo')
try('sndbuf "x"', function(r) r(s:setoption('sndbuf', 'x')) end)
try('sndbuf "1"', function(r) r(s:setoption('sndbuf', '1')) end)
s:close()
