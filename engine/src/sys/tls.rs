//! The calls into libssl that the openssl crate leaves `unsafe` or unwrapped.

use std::ffi::CString;
use std::net::IpAddr;
use std::os::raw::c_int;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::ssl::{SslContextBuilder, SslContextRef, SslRef, SslSession, SslSessionRef};
use openssl::x509::X509Ref;

/// What takes the new sessions libssl hands out (TLS 1.3 servers send them
/// after the handshake). Called from C: it must not panic.
pub trait NewSession {
    fn new_session(ssl: &SslRef, sess: SslSession);
}

/// Hands each new session of a connection of `b`'s context to `N`. Set
/// through libssl itself: the openssl crate's closure callbacks keep a
/// process-wide cache that valgrind reports lost once the module is unloaded.
/// A type rather than a function pointer: the C callback has no place to
/// carry one. sys names nothing above it.
pub fn set_new_session_callback<N: NewSession>(b: &mut SslContextBuilder) {
    // SAFETY: `b` holds a live context; `new_session` has the signature libssl calls.
    unsafe { openssl_sys::SSL_CTX_sess_set_new_cb(b.as_ptr(), Some(new_session::<N>)) }
}

unsafe extern "C" fn new_session<N: NewSession>(
    ssl: *mut openssl_sys::SSL,
    sess: *mut openssl_sys::SSL_SESSION,
) -> c_int {
    // SAFETY: libssl passes a live SSL, and a reference to the session that
    // becomes ours when we return 1 (SslSession frees it).
    let (ssl, sess) = unsafe { (SslRef::from_ptr(ssl), SslSession::from_ptr(sess)) };
    N::new_session(ssl, sess);
    1
}

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
