-- Digests and base64, computed by the Rust side (digest.rs), with
-- OpenResty's argument checks.
local ngx, L, P, N, U = ...
local type, error = type, error
local str_arg = U.str_arg
local digest = N.digest

ngx.md5 = function(s) return digest(0, str_arg('md5', 1, s, true)) end
ngx.md5_bin = function(s) return digest(1, str_arg('md5_bin', 1, s, true)) end
ngx.sha1_bin = function(s) return digest(2, str_arg('sha1_bin', 1, s, true)) end
ngx.hmac_sha1 = function(key, s)
  return digest(3, str_arg('hmac_sha1', 2, s), str_arg('hmac_sha1', 1, key))
end
ngx.crc32_short = function(s) return digest(4, str_arg('crc32_short', 1, s)) end
ngx.crc32_long = function(s) return digest(4, str_arg('crc32_long', 1, s)) end
ngx.encode_base64 = function(s, no_padding)
  if no_padding ~= nil and type(no_padding) ~= 'boolean' then
    error("bad no_padding: boolean expected, got " .. type(no_padding), 2)
  end
  return digest(5, str_arg('encode_base64', 1, s, true), no_padding)
end
ngx.decode_base64 = function(s)
  if type(s) ~= 'string' then error('string argument only', 2) end
  return digest(6, s)
end
