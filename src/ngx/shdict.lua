-- ngx.shared.DICT: the methods' argument checks; the store is Rust
-- (shdict.rs over coevent_ffi::shdict), per process. Returns declare(name,
-- size), which L.config's shared_dict calls for each dictionary.
local ngx, L, P, N, U = ...
local type, tostring, tonumber, error, pairs = type, tostring, tonumber, error, pairs
local fmt = string.format

local dict = N.dict
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
-- huge one, never expires: coevent_ffi::shdict::deadline).
local function ttl_arg(v, what)
  if v == nil then return 0 end
  if type(v) ~= 'number' or v < 0 then error(fmt('bad "%s" argument', what), 3) end
  return v
end

-- get, get_stale: (op 0, 1)
for op, name in pairs({ [0] = 'get', [1] = 'get_stale' }) do
  D[name] = function(self, key)
    local z = zone(self)
    local k, err = key_arg(key)
    if not k then return nil, err end
    return dict(op, z, k)
  end
end

-- set, safe_set, add, safe_add, replace: (op 2..6)
for op, name in pairs({ [2] = 'set', [3] = 'safe_set', [4] = 'add', [5] = 'safe_add', [6] = 'replace' }) do
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
  return dict(7, z, k, value, init, ttl_arg(init_ttl, 'init_ttl'))
end

for op, name in pairs({ [8] = 'lpush', [9] = 'rpush', [10] = 'lpop', [11] = 'rpop', [12] = 'llen' }) do
  D[name] = function(self, key, value)
    local z = zone(self)
    local k, err = key_arg(key)
    if not k then return nil, err end
    return dict(op, z, k, value)
  end
end

function D:flush_all() dict(13, zone(self)) end
function D:flush_expired(max) return dict(14, zone(self), nil, number_arg(max, 'max_count')) end
function D:get_keys(max) return dict(15, zone(self), nil, max == nil and 1024 or number_arg(max, 'max_count')) end

function D:ttl(key)
  local z = zone(self)
  local k, err = key_arg(key)
  if not k then return nil, err end
  return dict(16, z, k)
end

function D:expire(key, exptime)
  local z = zone(self)
  local k, err = key_arg(key)
  if not k then return nil, err end
  if type(exptime) ~= 'number' then error('bad "exptime" argument', 2) end
  return dict(17, z, k, exptime)
end

function D:capacity() return dict(18, zone(self)) end
function D:free_space() return dict(19, zone(self)) end

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
