-- ngx.now and the dates. ngx.now is not cached per loop turn as nginx's: it
-- is read each call (N.now, the system clock).
local ngx, L, P, N = ...

local now = N.now
ngx.now = now
ngx.time = function() return math.floor(now()) end
ngx.update_time = function() end
ngx.today = function() return os.date('%Y-%m-%d') end
ngx.localtime = function() return os.date('%Y-%m-%d %H:%M:%S') end
ngx.utctime = function() return os.date('!%Y-%m-%d %H:%M:%S') end
ngx.http_time = function(t) return os.date('!%a, %d %b %Y %H:%M:%S GMT', t) end
ngx.cookie_time = function(t) return os.date('!%a, %d-%b-%y %H:%M:%S GMT', t) end
ngx.get_phase = function() return 'timer' end
