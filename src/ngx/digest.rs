//! ngx.md5, sha1, hmac_sha1, crc32 and base64 (digest.lua checks the
//! arguments): from the RustCrypto, crc32fast and base64 crates.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use md5::Digest;
use mlua::{Lua, MultiValue, Result, Value};

use super::args::{arg, bytes, op, out, string};

/// ngx.decode_base64 takes input with or without its padding, as nginx's decoder.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_NOPAD: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_encode_padding(false));

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

ops! {
    /// What `digest` computes.
    enum DigestOp = "digest" {
        Md5 = "md5",
        Md5Bin = "md5_bin",
        Sha1Bin = "sha1_bin",
        HmacSha1 = "hmac_sha1",
        Crc32 = "crc32",
        EncodeBase64 = "encode_base64",
        DecodeBase64 = "decode_base64",
    }
}

/// Digests, base64 and crc32: (op, s, key or no_padding).
pub(super) fn digest(lua: &Lua, a: MultiValue) -> Result<MultiValue> {
    let s = bytes(&a, 1);
    let v = match op(&a, 0)? {
        DigestOp::Md5 => string(lua, hex(&md5::Md5::digest(&s)))?,
        DigestOp::Md5Bin => string(lua, md5::Md5::digest(&s))?,
        DigestOp::Sha1Bin => string(lua, sha1::Sha1::digest(&s))?,
        DigestOp::HmacSha1 => {
            let mut m = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&bytes(&a, 2)).expect("any key size");
            m.update(&s);
            string(lua, m.finalize().into_bytes())?
        }
        DigestOp::Crc32 => Value::Integer(crc32fast::hash(&s) as i64),
        DigestOp::EncodeBase64 if matches!(arg(&a, 2), Value::Boolean(true)) => string(lua, B64_NOPAD.encode(&s))?,
        DigestOp::EncodeBase64 => string(lua, B64.encode(&s))?,
        DigestOp::DecodeBase64 => match B64.decode(&s) {
            Ok(d) => string(lua, d)?,
            Err(_) => Value::Nil,
        },
    };
    out([v])
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_takes_missing_padding() {
        use base64::Engine as _;
        assert_eq!(super::B64.decode("aGk").unwrap(), b"hi");
        assert_eq!(super::B64.decode("aGk=").unwrap(), b"hi");
    }
}
