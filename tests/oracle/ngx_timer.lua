-- A NaN or negative delay. OpenResty casts it to an unsigned C integer (a
-- timer that is never due, or due at once); coevent refuses it.
local function f() end
try('at NaN', function(r) r(ngx.timer.at(0 / 0, f)) end)
try('every NaN', function(r) r(ngx.timer.every(0 / 0, f)) end)
try('at -1', function(r) r(ngx.timer.at(-1, f)) end)
try('sleep NaN', function(r) r(ngx.sleep(0 / 0)) end)
try('sleep -1', function(r) r(ngx.sleep(-1)) end)
