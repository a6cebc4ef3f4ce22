//! A client connection: read a request head, route it, forward it, stream the response back,
//! and repeat while the connection is kept alive.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use ramp_route::Decision;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::forward::{Exchange, ForwardError, HeadError, Lease, read_head};
use crate::h2;
use crate::http1::body::{BodyReader, CopyError, forward_body};
use crate::http1::request::{Method, RequestHead, parse_request};
use crate::http1::response::{ClientPlan, ClientSide, ResponseHead};
use crate::mirror;
use crate::record::Recorder;
use crate::snapshot::{LocalSnapshot, RevisionRuntime, Snapshot};
use crate::worker::Worker;

/// Largest request head accepted.
const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// The HTTP/2 connection preface a prior-knowledge h2c client opens with.
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A client connection's buffers, reused across its requests.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
    upstream_head: Vec<u8>,
    out: Vec<u8>,
}

/// What came next on the connection.
enum Next {
    Request(RequestHead, Decision, LocalSnapshot),
    Http2,
    Close,
    Reject(u16, &'static str),
}

/// Whether the connection carries on after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepAlive,
    Close,
}

/// Serves one accepted connection until it closes.
pub(crate) async fn serve(worker: Rc<Worker>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut client = Client {
        stream,
        buf: BytesMut::with_capacity(8 * 1024),
        upstream_head: Vec::with_capacity(1024),
        out: Vec::with_capacity(4 * 1024),
    };
    let mut first = true;
    loop {
        match next_request(&worker, &mut client, first).await {
            Next::Close => return,
            Next::Http2 => return h2::serve(worker, client.stream, client.buf).await,
            Next::Reject(status, reason) => {
                worker.shared.counters.count_bad_request();
                error_response(&mut client.out, status, reason, None, true);
                let _ = client.stream.write_all(&client.out).await;
                return;
            }
            Next::Request(head, decision, snapshot) => {
                let after = proxy(&worker, &mut client, head, decision, &snapshot).await;
                if after == After::Close || worker.shutdown.is_started() {
                    return;
                }
            }
        }
        first = false;
    }
}

/// Reads until a whole request head is buffered, then routes it.
async fn next_request(worker: &Worker, client: &mut Client, first: bool) -> Next {
    let mut held_since: Option<Instant> = None;
    loop {
        let snapshot = worker.snapshot();
        if !client.buf.is_empty() {
            if first
                && H2_PREFACE.starts_with(&client.buf[..client.buf.len().min(H2_PREFACE.len())])
            {
                if client.buf.len() >= H2_PREFACE.len() {
                    return Next::Http2;
                }
            } else {
                let table = &snapshot.table;
                let parsed = parse_request(&client.buf, &mut client.upstream_head, |view| {
                    table.decide(view, || worker.random())
                });
                match parsed {
                    Ok(Some((head, decision))) => {
                        if !worker.should_hold(&snapshot, decision.revision, &mut held_since) {
                            return Next::Request(head, decision, snapshot);
                        }
                        // No instance can take it yet: wait, then decide again on the newest
                        // table.
                        drop(snapshot);
                        if !worker.hold_pause().await {
                            return Next::Close;
                        }
                        continue;
                    }
                    Ok(None) if client.buf.len() >= MAX_REQUEST_HEAD => {
                        return Next::Reject(431, "request head too large");
                    }
                    Ok(None) => {}
                    Err(e) => return Next::Reject(e.status(), e.reason()),
                }
            }
        }
        let timeouts = snapshot.settings.timeouts;
        drop(snapshot);
        client.buf.reserve(4096);
        let read = if client.buf.is_empty() {
            // Between requests: an idle keep-alive connection yields to shutdown at once.
            tokio::select! {
                biased;
                _ = worker.shutdown.wait() => return Next::Close,
                read = tokio::time::timeout(timeouts.client_idle, client.stream.read_buf(&mut client.buf)) => match read {
                    Err(_) => return Next::Close,
                    Ok(read) => read,
                },
            }
        } else {
            match tokio::time::timeout(
                timeouts.client_header,
                client.stream.read_buf(&mut client.buf),
            )
            .await
            {
                Err(_) => return Next::Reject(408, "request head not received in time"),
                Ok(read) => read,
            }
        };
        match read {
            Ok(0) | Err(_) => return Next::Close,
            Ok(_) => {}
        }
    }
}

/// How one exchange ended, for metrics and the connection.
struct Outcome {
    /// Status the client received, if a response was started.
    status: Option<u16>,
    upstream_failed: bool,
    after: After,
}

/// Forwards one request and its response; records the revision's metrics.
async fn proxy(
    worker: &Rc<Worker>,
    client: &mut Client,
    head: RequestHead,
    decision: Decision,
    snapshot: &LocalSnapshot,
) -> After {
    client.buf.advance(head.head_len);
    let recorder = Recorder::start(snapshot, decision.revision, worker);
    let body_len = BodyReader::new(head.framing, false).complete_in(&client.buf);

    if let Some(target) = decision.mirror {
        let body = body_len.filter(|_| !head.upgrade).map(|n| &client.buf[..n]);
        mirror::send(
            worker,
            snapshot,
            target,
            &client.upstream_head,
            body,
            head.method,
        );
    }

    let revision = &snapshot.revisions[decision.revision];
    let outcome = exchange(worker, client, &head, revision, snapshot, body_len).await;
    recorder.finish(outcome.status, outcome.upstream_failed);
    outcome.after
}

async fn exchange(
    worker: &Rc<Worker>,
    client: &mut Client,
    head: &RequestHead,
    revision: &RevisionRuntime,
    snapshot: &Snapshot,
    body_len: Option<usize>,
) -> Outcome {
    let settings = &snapshot.settings;
    let side = ClientSide {
        http10: head.http10,
        keep_alive: head.keep_alive && !worker.shutdown.is_started(),
        revision_line: revision.header_line.as_deref(),
    };
    let mut ex = Exchange::new(worker, revision, settings, head.method.is_idempotent());
    let head_request = head.method == Method::Head;
    let timeout = settings.timeouts.response;

    let sent = match body_len {
        Some(len) => {
            let sent = send_buffered(&mut ex, client, &side, head_request, timeout, len).await;
            // The request is consumed whatever happened: its body must never be read as the
            // next request on this connection.
            client.buf.advance(len);
            sent
        }
        None => {
            let body_timeout = settings.timeouts.client_idle;
            send_streaming(
                &mut ex,
                client,
                head,
                &side,
                head_request,
                timeout,
                body_timeout,
            )
            .await
        }
    };
    let (mut lease, response, plan) = match sent {
        Ok(sent) => sent,
        Err(failure) => return fail(client, failure, &side, body_len.is_some()).await,
    };

    let mut reader = BodyReader::new(response.framing, plan.decode_chunked);
    let copied = forward_body(
        &mut reader,
        &mut lease.conn.stream,
        &mut lease.conn.buf,
        &mut client.stream,
        &mut client.out,
        timeout,
    )
    .await;
    let status = Some(response.status);
    match copied {
        Ok(()) => {}
        Err(CopyError::SinkWrite(_)) => {
            return Outcome {
                status,
                upstream_failed: false,
                after: After::Close,
            };
        }
        Err(_) => {
            // The response is already under way: all we can do is end the connection.
            return Outcome {
                status,
                upstream_failed: true,
                after: After::Close,
            };
        }
    }
    if response.status == 101 {
        tunnel(client, lease).await;
        return Outcome {
            status,
            upstream_failed: false,
            after: After::Close,
        };
    }
    lease.release(worker, response.reusable);
    let after = if plan.close_after || !side.keep_alive {
        After::Close
    } else {
        After::KeepAlive
    };
    Outcome {
        status,
        upstream_failed: false,
        after,
    }
}

type Sent = (Lease, ResponseHead, ClientPlan);

/// Sends a request whose body is already buffered; failed attempts may be replayed.
async fn send_buffered(
    ex: &mut Exchange<'_>,
    client: &mut Client,
    side: &ClientSide<'_>,
    head_request: bool,
    timeout: Duration,
    body_len: usize,
) -> Result<Sent, ForwardError> {
    client
        .upstream_head
        .extend_from_slice(&client.buf[..body_len]);
    let (stream, out) = (&mut client.stream, &mut client.out);
    let (lease, (response, plan)) = ex
        .send_replayable(&client.upstream_head, async |lease: &mut Lease| {
            final_head(lease, stream, out, side, head_request, timeout).await
        })
        .await?;
    Ok((lease, response, plan))
}

/// Sends a request whose body is still arriving: connect, send the head, stream the body.
/// With `Expect: 100-continue` the instance's answer is awaited before the body is sent.
async fn send_streaming(
    ex: &mut Exchange<'_>,
    client: &mut Client,
    head: &RequestHead,
    side: &ClientSide<'_>,
    head_request: bool,
    timeout: Duration,
    body_timeout: Duration,
) -> Result<Sent, ForwardError> {
    let mut lease = ex.send(&client.upstream_head).await?;
    if head.expect_continue {
        client.out.clear();
        let (response, plan) = read_head(&mut lease.conn, head_request, timeout, |p| {
            p.write_for_client(side, &mut client.out)
        })
        .await
        .map_err(HeadError::into_forward_error)?;
        if response.status != 100 {
            // A final answer before the body: the client's body will not be read, so the
            // connection cannot carry another request.
            let plan = ClientPlan {
                close_after: true,
                ..plan
            };
            return Ok((
                lease,
                ResponseHead {
                    reusable: false,
                    ..response
                },
                plan,
            ));
        }
        if !side.http10 {
            client
                .stream
                .write_all(&client.out)
                .await
                .map_err(|e| ForwardError::ClientBody(CopyError::SourceRead(e)))?;
        }
    }
    let mut reader = BodyReader::new(head.framing, false);
    client.out.clear();
    forward_body(
        &mut reader,
        &mut client.stream,
        &mut client.buf,
        &mut lease.conn.stream,
        &mut client.out,
        body_timeout,
    )
    .await
    .map_err(|e| match e {
        CopyError::SinkWrite(e) => ForwardError::Upstream(format!("sending the request body: {e}")),
        client_side => ForwardError::ClientBody(client_side),
    })?;
    let (response, plan) = final_head(
        &mut lease,
        &mut client.stream,
        &mut client.out,
        side,
        head_request,
        timeout,
    )
    .await
    .map_err(HeadError::into_forward_error)?;
    Ok((lease, response, plan))
}

/// Reads the final response head; interim (1xx) responses are passed to the client as they
/// come. The client's head for the final response is left in `out`.
async fn final_head(
    lease: &mut Lease,
    client: &mut TcpStream,
    out: &mut Vec<u8>,
    side: &ClientSide<'_>,
    head_request: bool,
    timeout: Duration,
) -> Result<(ResponseHead, ClientPlan), HeadError> {
    let mut interim_seen = false;
    loop {
        out.clear();
        let read = read_head(&mut lease.conn, head_request, timeout, |p| {
            p.write_for_client(side, out)
        })
        .await;
        let (response, plan) = match read {
            Ok(r) => r,
            // After an interim response the request surely arrived: never replay it.
            Err(HeadError::NoResponse(why)) if interim_seen => return Err(HeadError::Broken(why)),
            Err(e) => return Err(e),
        };
        if !response.is_interim() {
            return Ok((response, plan));
        }
        interim_seen = true;
        if !side.http10 {
            client
                .write_all(out)
                .await
                .map_err(|e| HeadError::Broken(e.to_string()))?;
        }
    }
}

/// Answers the client after a failed exchange.
async fn fail(
    client: &mut Client,
    failure: ForwardError,
    side: &ClientSide<'_>,
    body_consumed: bool,
) -> Outcome {
    let upstream_failed = failure.is_upstream_failure();
    let Some(status) = failure.status() else {
        return Outcome {
            status: None,
            upstream_failed,
            after: After::Close,
        };
    };
    // If the request body was not read to its end, its rest would be taken for a new request.
    let close = !body_consumed || !side.keep_alive;
    error_response(
        &mut client.out,
        status,
        &failure.to_string(),
        side.revision_line,
        close,
    );
    let written = client.stream.write_all(&client.out).await.is_ok();
    Outcome {
        status: written.then_some(status),
        upstream_failed,
        after: if close || !written {
            After::Close
        } else {
            After::KeepAlive
        },
    }
}

/// After `101 Switching Protocols`: relay bytes both ways until either side closes.
async fn tunnel(client: &mut Client, mut lease: Lease) {
    if !client.buf.is_empty() && lease.conn.stream.write_all(&client.buf).await.is_err() {
        return;
    }
    client.buf.clear();
    if !lease.conn.buf.is_empty() && client.stream.write_all(&lease.conn.buf).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client.stream, &mut lease.conn.stream).await;
}

/// Writes a response the router makes itself (errors).
pub(crate) fn error_response(
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
    revision_line: Option<&[u8]>,
    close: bool,
) {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    out.clear();
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n", message.len() + 1).as_bytes());
    if let Some(line) = revision_line {
        out.extend_from_slice(line);
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(message.as_bytes());
    out.push(b'\n');
}
