-- ngx.thread.wait and kill on coroutines that are not user threads (made by
-- coroutine.create, not ngx.thread.spawn): they raise, never wait.
local co1, co2 = coroutine.create(function() end), coroutine.create(function() end)
try('wait a plain coroutine', function(r) r(ngx.thread.wait(co1)) end)
try('wait two plain coroutines', function(r) r(ngx.thread.wait(co1, co2)) end)
local t = ngx.thread.spawn(function() sleep(0.01) return 'done' end)
try('wait a user thread and a plain coroutine', function(r) r(ngx.thread.wait(t, co1)) end)
try('kill a plain coroutine', function(r) r(ngx.thread.kill(co1)) end)
try('wait the user thread', function(r) r(ngx.thread.wait(t)) end)
