-- Differs, to decide: 'l' and 'a' without the star. coevent takes them (the
-- contract in DESIGN.md, as LuaSocket 3 does); OpenResty raises `bad pattern
-- argument: l`.
local s = connect('lines')
try('l', function(r) r(s:receive('l')) end)
try('a', function(r) r(s:receive('a')) end)
try('a again', function(r) r(s:receive('a')) end)
