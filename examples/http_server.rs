//! A tiny HTTP/1.0 server for the demo (std only, a thread per connection):
//! prints its port, then answers every request with a page of numbered lines
//! until it is killed. Not part of coevent; coevent has no listeners yet.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let body: String = (1..=100).map(|i| format!("line {i} of the coevent demo page\r\n")).collect();
    for conn in listener.incoming() {
        let mut conn = conn?;
        let body = body.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(conn.try_clone()?);
            let mut line = String::new();
            // The request: read up to the blank line that ends its headers.
            while r.read_line(&mut line)? > 0 && line != "\r\n" && line != "\n" {
                line.clear();
            }
            let head = format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", body.len());
            conn.write_all(head.as_bytes())?;
            conn.write_all(body.as_bytes())
        });
    }
    Ok(())
}
