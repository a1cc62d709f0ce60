-- Debian's client libraries, unmodified, in OpenResty and in coevent: DSNs
-- parsed by lua-nginx-redis-connector, and lua-nginx-redis and
-- lua-nginx-memcached against the peer's echo (each reply is the request
-- itself) and its `lines`.
local redis = require('nginx.redis')
local connector = require('nginx.redis.connector')
local memcached = require('nginx.memcached')

local function flat(v)
  if type(v) ~= 'table' then return v end
  local t = {}
  for i = 1, #v do t[i] = tostring(flat(v[i])) end
  return '{' .. table.concat(t, ',') .. '}'
end

for _, url in ipairs({ 'redis://pw@10.0.0.1:6380/3', 'redis://127.0.0.1:6379', 'redis://h:1/', 'sentinel://m:a/2',
  'sentinel://pw@name:s', 'http://x', 'redis://:6379' }) do
  try('dsn ' .. url, function(r)
    local p, e = connector.parse_dsn({ url = url })
    if p then r(p.password, p.host, p.port, p.db, p.master_name, p.role) else r(p, e) end
  end)
end

local function peer(cmd)
  local c = redis:new()
  c:set_timeout(2000)
  assert(c:connect(PEER.host, PEER.port))
  assert(rawget(c, '_sock'):send(cmd .. '\n'))
  return c
end

local r = peer('echo')
try('redis get', function(res) local v, e = r:get('key') res(flat(v), e) end)
try('redis hmset', function(res) local v, e = r:hmset('h', 'a', '1') res(flat(v), e) end)
try('redis pipeline', function(res)
  r:init_pipeline()
  r:set('a', 'x y')
  r:lpush('l', 1, 2)
  local v, e = r:commit_pipeline()
  res(flat(v), e)
end)
try('redis reused', function(res) res(r:get_reused_times()) end)
try('redis close', function(res) res(r:close()) end)

local l = peer('lines')
try('redis on lines', function(res) res(l:get('x')) end)
try('redis read_reply unsubscribed', function(res) res(l:read_reply()) end)
l:close()

local m = memcached:new()
m:set_timeout(2000)
try('memcached connect', function(res) res(m:connect(PEER.host, PEER.port)) end)
try('peer command', function(res) res(rawget(m, 'sock'):send('echo\n')) end)
try('memcached set', function(res) res(m:set('k', 'v', 10, 3)) end)
try('memcached incr', function(res) res(m:incr('n', 2)) end)
try('memcached version', function(res) res(m:version()) end)
try('memcached close', function(res) res(m:close()) end)
