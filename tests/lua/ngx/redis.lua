-- Debian's lua-nginx-redis (nginx.redis), unmodified, against redis-server.
local T = require('harness')
require('coevent.ngx')
local redis = require('nginx.redis')

local function connect()
  local r = redis:new()
  r:set_timeout(5000)
  local ok, err = r:connect(T.host, T.redis)
  T.eq(ok, 1, err)
  return r
end

T.case('get, set, del, incr, a missing key is ngx.null', function()
  local r = connect()
  r:del('ngx:k', 'ngx:n', 'ngx:h') -- what an earlier run left
  T.eq(r:set('ngx:k', 'hello'), 'OK')
  T.eq(r:get('ngx:k'), 'hello')
  T.eq(r:get('ngx:missing'), ngx.null)
  T.eq(r:del('ngx:n'), 0)
  T.eq(r:incr('ngx:n'), 1)
  T.eq(r:incr('ngx:n'), 2)
  T.same(r:mget('ngx:k', 'ngx:missing', 'ngx:n'), { 'hello', ngx.null, '2' })
  local res, err = r:hmset('ngx:h', { a = '1', b = '2' })
  T.eq(res, 'OK', err)
  T.same(r:hmget('ngx:h', 'a', 'b', 'c'), { '1', '2', ngx.null })
  local _, e = r:lpush('ngx:k', 'x')
  T.eq(e, 'WRONGTYPE Operation against a key holding the wrong kind of value')
  r:close()
end)

T.case('pipelines and transactions', function()
  local r = connect()
  r:init_pipeline()
  r:set('ngx:p1', 'a')
  r:set('ngx:p2', 'b')
  r:get('ngx:p1')
  r:get('ngx:p2')
  r:get('ngx:missing')
  T.same(r:commit_pipeline(), { 'OK', 'OK', 'a', 'b', ngx.null })
  r:del('ngx:t')
  T.eq(r:multi(), 'OK')
  T.eq(r:set('ngx:t', '1'), 'QUEUED')
  T.eq(r:incr('ngx:t'), 'QUEUED')
  T.same(r:exec(), { 'OK', 2 })
  r:close()
end)

T.case('pub/sub: a subscriber reads what another connection publishes', function()
  local sub = connect()
  T.same(sub:subscribe('ngx:chan'), { 'subscribe', 'ngx:chan', 1 })
  local pub = connect()
  T.eq(pub:publish('ngx:chan', 'one'), 1)
  T.eq(pub:publish('ngx:chan', 'two'), 1)
  T.same(sub:read_reply(), { 'message', 'ngx:chan', 'one' })
  T.same(sub:read_reply(), { 'message', 'ngx:chan', 'two' })
  -- A read with nothing published times out and leaves the connection usable.
  sub:set_timeout(20)
  T.same(T.pack(sub:read_reply()), { nil, 'timeout' })
  sub:set_timeout(5000)
  T.eq(pub:publish('ngx:chan', 'three'), 1)
  T.same(sub:read_reply(), { 'message', 'ngx:chan', 'three' })
  T.same(sub:unsubscribe('ngx:chan'), { 'unsubscribe', 'ngx:chan', 0 })
  sub:close()
  pub:close()
end)

T.case('set_keepalive: the next connect reuses the connection, counted by get_reused_times', function()
  local r = connect()
  T.eq(r:get_reused_times(), 0)
  local id = r:client('id')
  T.eq(r:set_keepalive(10000, 10), 1)
  for i = 1, 3 do
    local r2 = connect()
    T.eq(r2:get_reused_times(), i)
    T.eq(r2:client('id'), id, 'the same connection')
    T.eq(r2:set_keepalive(10000, 10), 1)
  end
end)

T.case('200 concurrent light threads, 20 round trips each, over a pool of 50', function()
  local threads = {}
  for i = 1, 200 do
    threads[i] = ngx.thread.spawn(function()
      for j = 1, 20 do
        local r = redis:new()
        local ok, err = r:connect(T.host, T.redis, { pool_size = 50 })
        if not ok then error(err) end
        local key = 'ngx:c:' .. i
        T.eq(r:set(key, j), 'OK')
        T.eq(r:get(key), tostring(j))
        T.eq(r:set_keepalive(10000, 50), 1)
      end
      return i
    end)
  end
  local sum = 0
  for i = 1, 200 do
    local ok, n = ngx.thread.wait(threads[i])
    T.eq(ok, true, n)
    sum = sum + n
  end
  T.eq(sum, 200 * 201 / 2)
  local r = connect()
  local clients = r:info('clients')
  local n = tonumber(clients:match('connected_clients:(%d+)'))
  T.ok(n <= 52, 'at most the pool and this connection: ' .. n)
  r:close()
end)

return T.run()
