//! What a supervisor of node processes (the recovery benchmark, the cluster tests) asks of the
//! machine and of the nodes: a free local port to give a node, and a node's `/metrics` text.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Returns a free port on 127.0.0.1 (bound, then released for a node or a broker to take).
///
/// # Errors
/// The I/O error when no port can be bound.
pub fn free_local_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Returns the HTTP response (headers and Prometheus text) of the node answering `/metrics` on
/// `http_port` of 127.0.0.1, or `None` when it does not answer within 5 s.
pub fn scrape_metrics(http_port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", http_port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: node\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_nobody_listens_on_gives_no_metrics() {
        let port = free_local_port().expect("a free port");
        assert_ne!(port, 0);
        assert_eq!(scrape_metrics(port), None);
    }
}
