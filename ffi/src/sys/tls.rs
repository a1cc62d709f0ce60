//! The calls into libssl that the openssl crate leaves `unsafe` or unwrapped.

use std::ffi::CString;
use std::net::IpAddr;

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ssl::{SslContextRef, SslRef, SslSessionRef};
use openssl::x509::X509Ref;

/// Offers `sess` for resumption on `ssl`, if it was made under `ssl`'s
/// context (`ctx`, the context the session came from); else does nothing.
pub fn offer_session(ssl: &mut SslRef, ctx: &SslContextRef, sess: &SslSessionRef) -> Result<(), ErrorStack> {
    if !std::ptr::eq(ssl.ssl_context(), ctx) {
        return Ok(());
    }
    // SAFETY: the crate asks that the session belong to the Ssl's context;
    // checked just above.
    unsafe { ssl.set_session(sess) }
}

/// Whether `cert` is for `name`: a host name (wildcards as RFC 6125) or an
/// IP address literal (OpenSSL's X509_check_host / X509_check_ip_asc).
pub fn cert_matches(cert: &X509Ref, name: &str) -> bool {
    let Ok(c) = CString::new(name) else { return false };
    let r = if name.parse::<IpAddr>().is_ok() {
        // SAFETY: `cert` is a live X509; `c` is NUL-terminated and outlives the call.
        unsafe { openssl_sys::X509_check_ip_asc(cert.as_ptr(), c.as_ptr(), 0) }
    } else {
        // SAFETY: as above; the length excludes the NUL; no peer name is asked for.
        unsafe { openssl_sys::X509_check_host(cert.as_ptr(), c.as_ptr(), name.len(), 0, std::ptr::null_mut()) }
    };
    r == 1
}
