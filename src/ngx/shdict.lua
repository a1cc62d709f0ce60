-- ngx.shared.DICT: the methods' argument checks; the store is Rust
-- (shdict.rs over coevent_engine::shdict), per process. Returns declare(name,
-- size), which L.config's shared_dict calls for each dictionary.
local ngx, L, P, N, U = ...
local type, tostring, tonumber, error, ipairs = type, tostring, tonumber, error, ipairs
local fmt = string.format

local dict, OP = N.dict, N.ops.dict
local INCR, TTL, EXPIRE, CAPACITY, FREE_SPACE = OP.incr, OP.ttl, OP.expire, OP.capacity, OP.free_space
local FLUSH_ALL, FLUSH_EXPIRED, GET_KEYS = OP.flush_all, OP.flush_expired, OP.get_keys
local D = {}
local DICT = { __index = D }
ngx.shared = {}

local function zone(self)
  if type(self) ~= 'table' or getmetatable(self) ~= DICT then error('bad "zone" argument', 3) end
  return self[1]
end

local function key_arg(k)
  if k == nil then return nil, 'nil key' end
  if type(k) ~= 'string' then k = tostring(k) end
  if #k == 0 then return nil, 'empty key' end
  if #k > 65535 then return nil, 'key too long' end
  return k
end

local function number_arg(v, what)
  if v == nil then return 0 end
  if type(v) ~= 'number' then error(fmt('bad "%s" argument', what), 3) end
  return v
end

-- A ttl: OpenResty refuses a negative one (NaN passes its `< 0` and, as a
-- huge one, never expires: coevent_engine::shdict::deadline).
local function ttl_arg(v, what)
  if v == nil then return 0 end
  if type(v) ~= 'number' or v < 0 then error(fmt('bad "%s" argument', what), 3) end
  return v
end

for _, name in ipairs({ 'get', 'get_stale' }) do
  local op = OP[name]
  D[name] = function(self, key)
    local z = zone(self)
    local k, err = key_arg(key)
    if not k then return nil, err end
    return dict(op, z, k)
  end
end

for _, name in ipairs({ 'set', 'safe_set', 'add', 'safe_add', 'replace' }) do
  local op = OP[name]
  D[name] = function(self, key, value, exptime, flags)
    local z = zone(self)
    exptime = ttl_arg(exptime, 'exptime')
    local k, err = key_arg(key)
    if not k then return nil, err, false end
    return dict(op, z, k, value, exptime, number_arg(flags, 'user_flags'))
  end
end

function D:delete(key)
  return self:set(key, nil)
end

function D:incr(key, value, init, init_ttl)
  local z = zone(self)
  local k, err = key_arg(key)
  if not k then return nil, err end
  if type(value) ~= 'number' then
    value = tonumber(value)
    if not value then return nil, 'not a number' end
  end
  if init ~= nil and type(init) ~= 'number' then error('bad "init" argument', 2) end
  return dict(INCR, z, k, value, init, ttl_arg(init_ttl, 'init_ttl'))
end

for _, name in ipairs({ 'lpush', 'rpush', 'lpop', 'rpop', 'llen' }) do
  local op = OP[name]
  D[name] = function(self, key, value)
    local z = zone(self)
    local k, err = key_arg(key)
    if not k then return nil, err end
    return dict(op, z, k, value)
  end
end

function D:flush_all() dict(FLUSH_ALL, zone(self)) end
function D:flush_expired(max) return dict(FLUSH_EXPIRED, zone(self), nil, number_arg(max, 'max_count')) end
function D:get_keys(max) return dict(GET_KEYS, zone(self), nil, max == nil and 1024 or number_arg(max, 'max_count')) end

function D:ttl(key)
  local z = zone(self)
  local k, err = key_arg(key)
  if not k then return nil, err end
  return dict(TTL, z, k)
end

function D:expire(key, exptime)
  local z = zone(self)
  local k, err = key_arg(key)
  if not k then return nil, err end
  if type(exptime) ~= 'number' then error('bad "exptime" argument', 2) end
  return dict(EXPIRE, z, k, exptime)
end

function D:capacity() return dict(CAPACITY, zone(self)) end
function D:free_space() return dict(FREE_SPACE, zone(self)) end

local function declare(name, size)
  if type(name) ~= 'string' then error('shared_dict: the names must be strings', 4) end
  local bytes = type(size) == 'number' and size or type(size) == 'string' and N.size(size)
  if not bytes or bytes < 8192 then
    error(fmt('shared_dict: bad size for "%s": %s (at least 8k)', name, tostring(size)), 4)
  end
  if ngx.shared[name] then return end
  ngx.shared[name] = setmetatable({ N.dict_new(bytes), name = name }, DICT)
end

return declare
