-- Digests and base64, computed by the Rust side (digest.rs), with
-- OpenResty's argument checks.
local ngx, L, P, N, U = ...
local type, error = type, error
local str_arg = U.str_arg
local digest = N.digest
local OP = N.ops.digest
local MD5, MD5_BIN, SHA1_BIN, HMAC_SHA1 = OP.md5, OP.md5_bin, OP.sha1_bin, OP.hmac_sha1
local CRC32, ENCODE_BASE64, DECODE_BASE64 = OP.crc32, OP.encode_base64, OP.decode_base64

ngx.md5 = function(s) return digest(MD5, str_arg('md5', 1, s, true)) end
ngx.md5_bin = function(s) return digest(MD5_BIN, str_arg('md5_bin', 1, s, true)) end
ngx.sha1_bin = function(s) return digest(SHA1_BIN, str_arg('sha1_bin', 1, s, true)) end
ngx.hmac_sha1 = function(key, s)
  return digest(HMAC_SHA1, str_arg('hmac_sha1', 2, s), str_arg('hmac_sha1', 1, key))
end
ngx.crc32_short = function(s) return digest(CRC32, str_arg('crc32_short', 1, s)) end
ngx.crc32_long = function(s) return digest(CRC32, str_arg('crc32_long', 1, s)) end
ngx.encode_base64 = function(s, no_padding)
  if no_padding ~= nil and type(no_padding) ~= 'boolean' then
    error("bad no_padding: boolean expected, got " .. type(no_padding), 2)
  end
  return digest(ENCODE_BASE64, str_arg('encode_base64', 1, s, true), no_padding)
end
ngx.decode_base64 = function(s)
  if type(s) ~= 'string' then error('string argument only', 2) end
  return digest(DECODE_BASE64, s)
end
