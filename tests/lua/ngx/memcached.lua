-- Debian's lua-nginx-memcached (nginx.memcached), unmodified, against memcached.
local T = require('harness')
require('coevent.ngx')
local memcached = require('nginx.memcached')
-- Keys of this process only: the suites run side by side against one server.
local P = T.pid() .. ':'
local port = tonumber(rawget(_G, 'MEMCACHED_PORT') or os.getenv('COEVENT_MEMCACHED_PORT'))

local function connect()
  local m = memcached:new()
  m:set_timeout(5000)
  local ok, err = m:connect(T.host, port)
  T.eq(ok, 1, err)
  return m
end

T.case('set, get, add, incr, delete', function()
  local m = connect()
  m:delete(P .. 'k')
  T.eq(m:set(P .. 'k', 'hello', 0, 7), 1)
  T.same(T.pack(m:get(P .. 'k')), { 'hello', '7', nil })
  T.same(T.pack(m:get(P .. 'missing')), { nil, nil, nil })
  T.same(T.pack(m:add(P .. 'k', 'x')), { nil, 'NOT_STORED' })
  T.eq(m:set(P .. 'n', '10'), 1)
  T.same(T.pack(m:incr(P .. 'n', 5)), { '15' })
  T.eq(tonumber((m:decr(P .. 'n', 20))), 0)
  T.same(T.pack(m:incr(P .. 'k', 1)), { nil, 'CLIENT_ERROR cannot increment or decrement non-numeric value' })
  T.eq(m:delete(P .. 'k'), 1)
  T.same(T.pack(m:get(P .. 'k')), { nil, nil, nil })
  local res = m:get({ P .. 'n', P .. 'missing' })
  -- memcached's decr pads the value in place: '15' became '0 '.
  T.same(res[P .. 'n'], { '0 ', '0' })
  T.eq(res[P .. 'missing'], nil)
  m:close()
end)

T.case('gets and cas', function()
  local m = connect()
  T.eq(m:set(P .. 'c', 'v1'), 1)
  local v, flags, cas = m:gets(P .. 'c')
  T.eq(v, 'v1')
  T.eq(flags, '0')
  T.ok(tonumber(cas), 'a cas id')
  T.eq(m:cas(P .. 'c', 'v2', cas), 1)
  T.same(T.pack(m:cas(P .. 'c', 'v3', cas)), { nil, 'EXISTS' })
  T.eq(m:get(P .. 'c'), 'v2')
  m:close()
end)

T.case('100 concurrent light threads over a pool, reuse counted', function()
  local threads = {}
  for i = 1, 100 do
    threads[i] = ngx.thread.spawn(function()
      local reused = 0
      for j = 1, 10 do
        local m = memcached:new()
        local ok, err = m:connect(T.host, port)
        if not ok then error(err) end
        reused = reused + (m:get_reused_times() > 0 and 1 or 0)
        T.eq(m:set(P .. 't' .. i, j), 1)
        T.eq(m:get(P .. 't' .. i), tostring(j))
        T.eq(m:set_keepalive(10000, 100), 1)
      end
      return reused
    end)
  end
  local reused = 0
  for i = 1, 100 do
    local ok, n = ngx.thread.wait(threads[i])
    T.eq(ok, true, n)
    reused = reused + n
  end
  T.ok(reused >= 900, 'reused connections: ' .. reused)
end)

return T.run()
