//! A TLS server that misbehaves on purpose (tests/tls.rs, and the oracle of
//! tests/openresty.rs). A client sends one plaintext command line, then:
//!
//! | command | the server |
//! |---|---|
//! | `cut fin K` | answers the ClientHello with the first K bytes of a real first flight (K < 0: all but the last -K), then its FIN; corked, so the bytes and the FIN reach the client in one segment |
//! | `cut rst K` | the same, then a reset (the ClientHello is peeked, never read: the close resets) |
//! | `trunc fin` | a whole handshake; after the client's first line over TLS, the record `whole\n` and half of the record `cut short\n`, then its FIN (the half and the FIN corked together) |
//! | `trunc rst` | a whole handshake; once the client has sent something (left unread), half of the record `cut short\n`, then a reset |
//! | `inject` | `220 ready\r\nINJECTED\r\n` in plaintext (one write), then TLS: `over tls\r\n` |
//! | `plain` | `220 ready\r\n` in plaintext, then TLS |
//! | `stall` | reads and discards what comes (30 s at most) |
//! | `echo` | a well-behaved TLS server: each line back, until the client closes |
//!
//! Each connection is served by a thread of its own, which ends with it.

use std::io::{self, Cursor, ErrorKind::WouldBlock, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use coevent_engine::sys::{set_option, SockOpt};
use openssl::ssl::{HandshakeError, SslAcceptor, SslMethod};

use crate::common::accept_tcp;

/// A server's side with a self-signed certificate for localhost and
/// 127.0.0.1 (for the oracle, whose clients do not verify).
#[allow(dead_code)] // Not used by tests/tls.rs.
pub fn self_signed() -> Arc<SslAcceptor> {
    let k = super::key();
    let c = super::cert("localhost", &["localhost", "127.0.0.1"], &k, None, false, -1, 30);
    let mut acc = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acc.set_private_key(&k).unwrap();
    acc.set_certificate(&c).unwrap();
    Arc::new(acc.build())
}

/// Starts the server on a free port of 127.0.0.1; it serves until `stop`.
pub fn start(acc: Arc<SslAcceptor>, stop: Arc<AtomicBool>) -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    accept_tcp(l, stop, move |c| {
        let acc = acc.clone();
        thread::spawn(move || {
            let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = serve(c, &acc);
        });
    });
    port
}

fn serve(mut c: TcpStream, acc: &SslAcceptor) -> io::Result<()> {
    let line = command(&mut c)?;
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        ["cut", how, k] => cut(c, acc, how == "rst", k.parse().map_err(io::Error::other)?),
        ["trunc", how] => trunc(c, acc, how == "rst"),
        ["inject"] => over_tls(c, acc, b"220 ready\r\nINJECTED\r\n"),
        ["plain"] => over_tls(c, acc, b"220 ready\r\n"),
        ["stall"] => drain(c),
        ["echo"] => echo(c, acc),
        _ => Err(io::Error::other(format!("unknown command {line:?}"))),
    }
}

/// The command line, read a byte at a time: what follows it is TLS.
fn command(c: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while c.read(&mut b)? == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Reads and discards until the client closes.
fn drain(mut c: TcpStream) -> io::Result<()> {
    io::copy(&mut c, &mut io::sink()).map(drop)
}

/// Sends `bytes`, then the FIN in the same segment, or a reset (which needs
/// bytes of the client's left unread).
fn end_with(mut c: TcpStream, bytes: &[u8], reset: bool) -> io::Result<()> {
    if reset {
        c.write_all(bytes)?;
        return Ok(());
    }
    set_option(c.as_raw_fd(), SockOpt::Cork, 1)?;
    c.write_all(bytes)?;
    c.shutdown(Shutdown::Write)?;
    drain(c)
}

/// The ClientHello record, whole: read, or peeked (left in the socket).
fn client_hello(c: &mut TcpStream, peek: bool) -> io::Result<Vec<u8>> {
    if !peek {
        let mut head = [0u8; 5];
        c.read_exact(&mut head)?;
        let mut rec = head.to_vec();
        rec.resize(5 + (usize::from(head[3]) << 8 | usize::from(head[4])), 0);
        c.read_exact(&mut rec[5..])?;
        return Ok(rec);
    }
    let mut buf = vec![0u8; 5 + (1 << 16)];
    loop {
        // A peek waits for the first bytes only: the rest of a record sent
        // whole is there at once (a spin of microseconds, if any).
        let n = c.peek(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if n >= 5 && n >= 5 + (usize::from(buf[3]) << 8 | usize::from(buf[4])) {
            buf.truncate(n);
            return Ok(buf);
        }
        thread::yield_now();
    }
}

/// The server's side of a handshake in memory: reads `input`, keeps what it writes.
#[derive(Debug)]
struct Memory {
    input: Cursor<Vec<u8>>,
    out: Vec<u8>,
}

impl Read for Memory {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self.input.read(b)? {
            0 if !b.is_empty() => Err(WouldBlock.into()),
            n => Ok(n),
        }
    }
}

impl Write for Memory {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn cut(mut c: TcpStream, acc: &SslAcceptor, reset: bool, k: isize) -> io::Result<()> {
    let hello = client_hello(&mut c, reset)?;
    let flight = match acc.accept(Memory { input: Cursor::new(hello), out: Vec::new() }) {
        Err(HandshakeError::WouldBlock(mid)) => mid.get_ref().out.clone(),
        _ => return Err(io::Error::other("no first flight")),
    };
    let k = if k < 0 { flight.len().saturating_sub(k.unsigned_abs()) } else { (k as usize).min(flight.len()) };
    end_with(c, &flight[..k], reset)
}

/// The socket, with what TLS writes kept back while `capture` is on.
#[derive(Debug)]
struct Tap {
    s: TcpStream,
    capture: bool,
    out: Vec<u8>,
}

impl Read for Tap {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.s.read(b)
    }
}

impl Write for Tap {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.capture {
            self.out.extend_from_slice(b);
            return Ok(b.len());
        }
        self.s.write(b)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn trunc(c: TcpStream, acc: &SslAcceptor, reset: bool) -> io::Result<()> {
    let mut tls = acc.accept(Tap { s: c, capture: false, out: Vec::new() }).map_err(io::Error::other)?;
    if reset {
        // Whatever the client sends stays unread, so that the close resets.
        tls.get_ref().s.peek(&mut [0u8; 1])?;
    } else {
        let mut b = [0u8; 1];
        while tls.read(&mut b)? == 1 && b[0] != b'\n' {}
        tls.write_all(b"whole\n")?;
    }
    tls.get_mut().capture = true;
    tls.write_all(b"cut short\n")?;
    let record = std::mem::take(&mut tls.get_mut().out);
    let c = tls.get_ref().s.try_clone()?;
    // The session goes first: its fd must not outlive the reset's close.
    drop(tls);
    end_with(c, &record[..record.len() / 2], reset)
}

fn over_tls(mut c: TcpStream, acc: &SslAcceptor, plain: &[u8]) -> io::Result<()> {
    c.write_all(plain)?;
    let mut tls = acc.accept(c).map_err(io::Error::other)?;
    tls.write_all(b"over tls\r\n")?;
    io::copy(&mut tls, &mut io::sink()).map(drop)
}

fn echo(c: TcpStream, acc: &SslAcceptor) -> io::Result<()> {
    let mut tls = acc.accept(c).map_err(io::Error::other)?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while tls.read(&mut b)? == 1 {
        line.push(b[0]);
        if b[0] == b'\n' {
            tls.write_all(&line)?;
            line.clear();
        }
    }
    Ok(())
}
