-- Debian's lua-nginx-redis-connector and lua-resty-lrucache, unmodified.
local T = require('harness')
require('coevent.ngx')
local connector = require('nginx.redis.connector')
-- The connector's new() logs a nil error at ERR on every DSN (its `ok` is an
-- undefined global): as it does in OpenResty. Kept off the test's stderr.
T.L.config({ log_level = 'crit' })
local P = 'ngx:' .. T.pid() .. ':'

T.case('redis-connector parses DSNs through ngx.re', function()
  local p = connector.parse_dsn({ url = 'redis://secret@10.0.0.1:6380/3' })
  T.same({ p.password, p.host, p.port, p.db }, { 'secret', '10.0.0.1', '6380', '3' })
  p = connector.parse_dsn({ url = 'redis://127.0.0.1:6379/' })
  T.same({ p.password, p.host, p.port, p.db }, { false, '127.0.0.1', '6379', '' }, 'no password: an unmatched group')
  p = connector.parse_dsn({ url = 'sentinel://pw@mymaster:s/1' })
  T.same({ p.password, p.master_name, p.role, p.db }, { 'pw', 'mymaster', 'slave', '1' })
  T.same(T.pack(connector.parse_dsn({ url = 'http://x' })), { nil, 'could not parse DSN: nil' })
end, { loop = false })

T.case('redis-connector connects without sentinels, selects the db, keeps the connection alive', function()
  local rc = T.ok(connector.new({ url = 'redis://' .. T.host .. ':' .. T.redis .. '/2' }))
  local r, err = rc:connect()
  T.ok(r, err)
  T.eq(r:set(P .. 'db2', 'two'), 'OK')
  T.eq(r:select(0), 'OK')
  T.eq(r:get(P .. 'db2'), ngx.null, 'another db')
  T.eq(r:select(2), 'OK')
  T.eq(r:get(P .. 'db2'), 'two')
  T.eq(rc:set_keepalive(r), 1)
  local r2 = T.ok(rc:connect())
  T.eq(r2:get_reused_times(), 1)
  r2:close()
  -- An address nothing listens on: connect's error.
  local bad = connector.new({ host = T.host, port = T.refused })
  T.same(T.pack(bad:connect()), { nil, 'connection refused' })
end)

T.case('lua-resty-lrucache (LuaJIT: it needs ffi)', function()
  if not jit then T.skip('resty.lrucache requires LuaJIT\'s ffi') end
  local lrucache = require('resty.lrucache')
  local c = T.ok(lrucache.new(2))
  c:set('a', 1)
  c:set('b', 2, 0.01)
  T.eq(c:get('a'), 1)
  c:set('c', 3) -- evicts b, the least recently used
  T.eq(c:get('b'), nil)
  T.eq(c:count(), 2)
  c:set('d', 4, 0.001)
  ngx.sleep(0.01)
  local v, stale = c:get('d')
  T.same({ v, stale }, { nil, 4 })
end, { ci_may_skip = "needs LuaJIT's ffi" })

return T.run()
