//! Tiny HTTP servers on 127.0.0.1 for the providers' tests: canned answers, silence, and a
//! closed port.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Answers every connection with the same bytes, then closes it; keeps each request's head.
#[derive(Debug)]
pub(crate) struct Canned {
    pub(crate) addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<String>,
}

impl Canned {
    /// A server answering `raw` (a whole HTTP response) to every request.
    pub(crate) async fn start(raw: Vec<u8>) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (heads, requests) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (raw, heads) = (raw.clone(), heads.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                    let _ = stream.write_all(&raw).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Canned { addr, requests }
    }

    /// A complete response with a `Content-Length`.
    pub(crate) fn response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status} Canned\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// A JSON response with status 200.
    pub(crate) fn json(body: &str) -> Vec<u8> {
        Canned::response(200, "application/json", body)
    }

    /// The head of the next request received.
    pub(crate) async fn request(&mut self) -> String {
        self.requests.recv().await.expect("a request arrived")
    }
}

/// A server that accepts connections and never answers.
pub(crate) async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// An address on 127.0.0.1 that nothing listens on (it was bound, then released).
pub(crate) fn refused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}
