//! h2c (HTTP/2 over cleartext, prior knowledge) on the same listener as HTTP/1.1.
//!
//! hyper runs the HTTP/2 connection; each stream is routed like an HTTP/1 request and
//! forwarded to the instance over the same pooled HTTP/1.1 connections.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ramp_route::{RequestView, find_cookie};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::forward::{Exchange, ForwardError, HeadError, Lease, read_head};
use crate::http1::Framing;
use crate::http1::body::{BodyReader, CopyError};
use crate::http1::request::write_upstream_head_from_h2;
use crate::http1::response::ResponseHead;
use crate::mirror;
use crate::record::Recorder;
use crate::worker::Worker;

/// Serves an HTTP/2 connection whose first bytes are already in `buffered`.
pub(crate) async fn serve(worker: Rc<Worker>, stream: TcpStream, buffered: BytesMut) {
    let io = TokioIo::new(Rewind {
        prefix: buffered,
        stream,
    });
    let shutdown_worker = Rc::clone(&worker);
    let service = hyper::service::service_fn(move |req| handle(Rc::clone(&worker), req));
    let conn = hyper::server::conn::http2::Builder::new(LocalExec)
        .timer(TokioTimer::new())
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown_worker.shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Runs hyper's per-stream tasks on the worker's own thread.
#[derive(Debug, Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

/// A stream that first replays bytes already read from it (the sniffed preface).
struct Rewind {
    prefix: BytesMut,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Lets the routing decision read HTTP/2 headers.
struct HeaderMapView<'a>(&'a http::HeaderMap);

impl RequestView for HeaderMapView<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(|v| v.as_bytes())
    }
    fn cookie(&self, name: &str) -> Option<&[u8]> {
        // HTTP/2 clients may split cookies over several headers (RFC 9113 §8.2.3).
        self.0
            .get_all(http::header::COOKIE)
            .iter()
            .find_map(|v| find_cookie(v.as_bytes(), name))
    }
}

async fn handle(
    worker: Rc<Worker>,
    req: Request<Incoming>,
) -> Result<Response<H2Body>, Infallible> {
    // With a hold set, a request whose revision has no usable instance waits, decided again
    // on the newest table each time; shutdown ends the wait, and the request is then answered
    // as the table in place allows.
    let mut held_since = None;
    let mut may_hold = true;
    let (snapshot, decision) = loop {
        let snapshot = worker.snapshot();
        let decision = snapshot
            .table
            .decide(&HeaderMapView(req.headers()), || worker.random());
        if !(may_hold && worker.should_hold(&snapshot, decision.revision, &mut held_since)) {
            break (snapshot, decision);
        }
        drop(snapshot);
        may_hold = worker.hold_pause().await;
    };
    let revision = &snapshot.revisions[decision.revision];
    let recorder = Recorder::start(&snapshot, decision.revision, &worker);

    let (parts, body) = req.into_parts();
    let method = crate::http1::request::Method::classify(parts.method.as_str());
    let framing = if body.is_end_stream() {
        Framing::Empty
    } else {
        match body.size_hint().exact() {
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        }
    };
    let mut head = Vec::with_capacity(512);
    write_upstream_head_from_h2(&parts, framing, &mut head);
    if let Some(target) = decision.mirror {
        let body = (framing == Framing::Empty).then_some(&[][..]);
        mirror::send(&worker, &snapshot, target, &head, body, method);
    }

    let header = revision.h2_header(worker.id);
    let head_request = method == crate::http1::request::Method::Head;
    let timeout = snapshot.settings.timeouts.response;
    let mut ex = Exchange::new(
        &worker,
        revision,
        &snapshot.settings,
        method.is_idempotent(),
    );
    let sent = if framing == Framing::Empty {
        send_buffered(&mut ex, &head, head_request, timeout, header).await
    } else {
        let body_timeout = snapshot.settings.timeouts.client_idle;
        send_streaming(
            &mut ex,
            &head,
            body,
            framing,
            head_request,
            timeout,
            body_timeout,
            header,
        )
        .await
    };
    drop(ex);
    let error_response = |failure: &ForwardError, status: u16| {
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "text/plain; charset=utf-8");
        if let Some((name, value)) = header {
            builder = builder.header(name.clone(), value.clone());
        }
        let text = Bytes::from(format!("{failure}\n"));
        builder
            .body(H2Body::Full(Some(text)))
            .unwrap_or_else(|_| Response::new(H2Body::Full(None)))
    };
    let (lease, response, builder) = match sent {
        Ok(sent) => sent,
        Err(failure) => {
            let status = failure.status().unwrap_or(400);
            recorder.finish(Some(status), failure.is_upstream_failure());
            return Ok(error_response(&failure, status));
        }
    };
    let status = response.status;
    let body = UpstreamBody {
        reader: BodyReader::new(response.framing, true),
        response,
        lease: Some(lease),
        recorder: Some(recorder),
        stall: Box::pin(tokio::time::sleep(timeout)),
        timeout,
        worker: Rc::clone(&worker),
    };
    match builder.body(H2Body::Upstream(Box::new(body))) {
        Ok(response) => Ok(response),
        Err(e) => {
            // Headers valid in HTTP/1.1 but not representable in HTTP/2.
            let failure = ForwardError::Upstream(format!(
                "response {status} cannot be sent over HTTP/2: {e}"
            ));
            Ok(error_response(&failure, 502))
        }
    }
}

type Sent = (Lease, ResponseHead, http::response::Builder);

async fn send_buffered(
    ex: &mut Exchange<'_>,
    head: &[u8],
    head_request: bool,
    timeout: Duration,
    header: Option<&(HeaderName, HeaderValue)>,
) -> Result<Sent, ForwardError> {
    let (lease, (response, builder)) = ex
        .send_replayable(head, async |lease: &mut Lease| {
            final_head(lease, head_request, timeout, header).await
        })
        .await?;
    Ok((lease, response, builder))
}

#[allow(clippy::too_many_arguments)]
async fn send_streaming(
    ex: &mut Exchange<'_>,
    head: &[u8],
    mut body: Incoming,
    framing: Framing,
    head_request: bool,
    timeout: Duration,
    body_timeout: Duration,
    header: Option<&(HeaderName, HeaderValue)>,
) -> Result<Sent, ForwardError> {
    let mut lease = ex.send(head).await?;
    let upstream_error = |e: io::Error| ForwardError::Upstream(format!("request body: {e}"));
    let mut chunk = Vec::new();
    loop {
        let frame = match tokio::time::timeout(body_timeout, body.frame()).await {
            Err(_) => return Err(ForwardError::ClientBody(CopyError::SourceTimeout)),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ForwardError::ClientBody(CopyError::SourceRead(
                    io::Error::other(e),
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        }; // trailers are not forwarded
        if data.is_empty() {
            continue;
        }
        chunk.clear();
        if framing == Framing::Chunked {
            chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            chunk.extend_from_slice(&data);
            chunk.extend_from_slice(b"\r\n");
            lease
                .conn
                .stream
                .write_all(&chunk)
                .await
                .map_err(upstream_error)?;
        } else {
            lease
                .conn
                .stream
                .write_all(&data)
                .await
                .map_err(upstream_error)?;
        }
    }
    if framing == Framing::Chunked {
        lease
            .conn
            .stream
            .write_all(b"0\r\n\r\n")
            .await
            .map_err(upstream_error)?;
    }
    let (response, builder) = final_head(&mut lease, head_request, timeout, header)
        .await
        .map_err(HeadError::into_forward_error)?;
    Ok((lease, response, builder))
}

/// Reads response heads until a final one (interim 1xx responses are not relayed over h2).
async fn final_head(
    lease: &mut Lease,
    head_request: bool,
    timeout: Duration,
    header: Option<&(HeaderName, HeaderValue)>,
) -> Result<(ResponseHead, http::response::Builder), HeadError> {
    let mut interim_seen = false;
    loop {
        let read = read_head(&mut lease.conn, head_request, timeout, |p| p.to_h2(header)).await;
        match read {
            Ok((response, _)) if response.is_interim() => interim_seen = true,
            Ok(final_response) => return Ok(final_response),
            Err(HeadError::NoResponse(why)) if interim_seen => return Err(HeadError::Broken(why)),
            Err(e) => return Err(e),
        }
    }
}

/// The body of a response the router sends to an HTTP/2 client.
pub(crate) enum H2Body {
    /// A body made by the router (errors) or none.
    Full(Option<Bytes>),
    /// The instance's body, decoded from its HTTP/1.1 framing as it arrives.
    Upstream(Box<UpstreamBody>),
}

impl std::fmt::Debug for H2Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            H2Body::Full(b) => f
                .debug_tuple("Full")
                .field(&b.as_ref().map(Bytes::len))
                .finish(),
            H2Body::Upstream(_) => f.write_str("Upstream"),
        }
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            H2Body::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            H2Body::Upstream(body) => body.poll_data(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            H2Body::Full(data) => data.is_none(),
            H2Body::Upstream(body) => body.lease.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            H2Body::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            H2Body::Upstream(body) => body
                .reader
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

/// Streams an instance's response body to an HTTP/2 client, then returns the connection to
/// the pool and records the request.
pub(crate) struct UpstreamBody {
    worker: Rc<Worker>,
    lease: Option<Lease>,
    reader: BodyReader,
    response: ResponseHead,
    /// Records the request when the body ends, fails or is dropped.
    recorder: Option<Recorder>,
    /// Fires when the instance sends nothing for `timeout`.
    stall: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl UpstreamBody {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            let Some(lease) = self.lease.as_mut() else {
                return Poll::Ready(None);
            };
            let mut data = Vec::new();
            let used = match self.reader.take(&lease.conn.buf, &mut data) {
                Ok(used) => used,
                Err(e) => return Poll::Ready(Some(Err(self.fail(io::Error::other(e))))),
            };
            lease.conn.buf.advance(used);
            let done = self.reader.is_done();
            if done {
                self.finish();
            }
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(data)))));
            }
            if done {
                return Poll::Ready(None);
            }
            let Some(lease) = self.lease.as_mut() else {
                return Poll::Ready(None);
            };
            if let Poll::Ready(Err(e)) = lease.conn.stream.poll_read_ready(cx) {
                return Poll::Ready(Some(Err(self.fail(e))));
            }
            match lease.conn.stream.try_read_buf(&mut lease.conn.buf) {
                Ok(0) if self.reader.end_at_eof() => continue,
                Ok(0) => {
                    let e =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "instance closed mid-body");
                    return Poll::Ready(Some(Err(self.fail(e))));
                }
                Ok(_) => {
                    let deadline = tokio::time::Instant::now() + self.timeout;
                    self.stall.as_mut().reset(deadline);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.stall.as_mut().poll(cx));
                    let e = io::Error::new(io::ErrorKind::TimedOut, "instance stalled mid-body");
                    return Poll::Ready(Some(Err(self.fail(e))));
                }
                Err(e) => return Poll::Ready(Some(Err(self.fail(e)))),
            }
        }
    }

    /// The body ended cleanly: keep the connection and record the request.
    fn finish(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release(&self.worker, self.response.reusable);
        }
        if let Some(recorder) = self.recorder.take() {
            recorder.finish(Some(self.response.status), false);
        }
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.lease = None;
        if let Some(recorder) = self.recorder.take() {
            recorder.finish(Some(self.response.status), true);
        }
        e
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // The client went away mid-body: the connection is in an unknown state and is closed;
        // the client did get the response head, so the status counts.
        if let Some(recorder) = self.recorder.take() {
            recorder.finish(Some(self.response.status), false);
        }
    }
}
