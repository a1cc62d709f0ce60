-- Debian's lua-nginx-redis (nginx.redis), unmodified, against redis-server.
local T = require('harness')
require('coevent.ngx')
local redis = require('nginx.redis')
-- Keys of this process only: the suites run side by side against one server.
local P = 'ngx:' .. T.pid() .. ':'

local function connect()
  local r = redis:new()
  r:set_timeout(5000)
  local ok, err = r:connect(T.host, T.redis)
  T.eq(ok, 1, err)
  return r
end

T.case('get, set, del, incr, a missing key is ngx.null', function()
  local r = connect()
  r:del(P .. 'k', P .. 'n', P .. 'h') -- what an earlier run left
  T.eq(r:set(P .. 'k', 'hello'), 'OK')
  T.eq(r:get(P .. 'k'), 'hello')
  T.eq(r:get(P .. 'missing'), ngx.null)
  T.eq(r:del(P .. 'n'), 0)
  T.eq(r:incr(P .. 'n'), 1)
  T.eq(r:incr(P .. 'n'), 2)
  T.same(r:mget(P .. 'k', P .. 'missing', P .. 'n'), { 'hello', ngx.null, '2' })
  local res, err = r:hmset(P .. 'h', { a = '1', b = '2' })
  T.eq(res, 'OK', err)
  T.same(r:hmget(P .. 'h', 'a', 'b', 'c'), { '1', '2', ngx.null })
  local _, e = r:lpush(P .. 'k', 'x')
  T.eq(e, 'WRONGTYPE Operation against a key holding the wrong kind of value')
  r:close()
end)

T.case('pipelines and transactions', function()
  local r = connect()
  r:init_pipeline()
  r:set(P .. 'p1', 'a')
  r:set(P .. 'p2', 'b')
  r:get(P .. 'p1')
  r:get(P .. 'p2')
  r:get(P .. 'missing')
  T.same(r:commit_pipeline(), { 'OK', 'OK', 'a', 'b', ngx.null })
  r:del(P .. 't')
  T.eq(r:multi(), 'OK')
  T.eq(r:set(P .. 't', '1'), 'QUEUED')
  T.eq(r:incr(P .. 't'), 'QUEUED')
  T.same(r:exec(), { 'OK', 2 })
  r:close()
end)

T.case('pub/sub: a subscriber reads what another connection publishes', function()
  local sub = connect()
  T.same(sub:subscribe(P .. 'chan'), { 'subscribe', P .. 'chan', 1 })
  local pub = connect()
  T.eq(pub:publish(P .. 'chan', 'one'), 1)
  T.eq(pub:publish(P .. 'chan', 'two'), 1)
  T.same(sub:read_reply(), { 'message', P .. 'chan', 'one' })
  T.same(sub:read_reply(), { 'message', P .. 'chan', 'two' })
  -- A read with nothing published times out and leaves the connection usable.
  sub:set_timeout(20)
  T.same(T.pack(sub:read_reply()), { nil, 'timeout' })
  sub:set_timeout(5000)
  T.eq(pub:publish(P .. 'chan', 'three'), 1)
  T.same(sub:read_reply(), { 'message', P .. 'chan', 'three' })
  T.same(sub:unsubscribe(P .. 'chan'), { 'unsubscribe', P .. 'chan', 0 })
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

T.case("over TLS (redis-server's tls-port): the library's socket, handshaken", function()
  local tls_port = tonumber(rawget(_G, 'REDIS_TLS_PORT') or os.getenv('COEVENT_REDIS_TLS_PORT'))
  for i = 1, 2 do
    local r = redis:new()
    r:set_timeout(5000)
    T.eq(r:connect(T.host, tls_port, { pool = 'redis-tls' }), 1)
    if r:get_reused_times() == 0 then
      local sess, err = rawget(r, '_sock'):sslhandshake(nil, 'localhost', false)
      T.ok(sess, err)
    end
    T.eq(r:get_reused_times(), i - 1)
    T.eq(r:set(P .. 'tls', 'secret ' .. i), 'OK')
    T.eq(r:get(P .. 'tls'), 'secret ' .. i)
    T.eq(r:set_keepalive(10000, 10), 1)
  end
end)

T.case('200 concurrent light threads, 20 round trips each, over one pool', function()
  local threads = {}
  for i = 1, 200 do
    threads[i] = ngx.thread.spawn(function()
      local fresh = 0
      for j = 1, 20 do
        local r = redis:new()
        local ok, err = r:connect(T.host, T.redis, { pool_size = 200 })
        if not ok then error(err) end
        if r:get_reused_times() == 0 then fresh = fresh + 1 end
        local key = P .. 'c:' .. i
        T.eq(r:set(key, j), 'OK')
        T.eq(r:get(key), tostring(j))
        T.eq(r:set_keepalive(10000, 200), 1)
      end
      return fresh
    end)
  end
  local fresh = 0
  for i = 1, 200 do
    local ok, n = ngx.thread.wait(threads[i])
    T.eq(ok, true, n)
    fresh = fresh + n
  end
  -- A thread holds one connection at a time and the pool keeps every one:
  -- at most 200 were ever opened, the other connects reused them.
  T.ok(fresh >= 1 and fresh <= 200, 'new connections: ' .. fresh)
end)

return T.run()
