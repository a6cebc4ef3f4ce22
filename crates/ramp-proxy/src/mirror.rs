//! Mirroring: a copy of a request goes to another revision; its response is read and thrown
//! away. The copy runs in its own task with a bounded number in flight, so a slow or failing
//! mirror target never delays or fails the request the client is waiting for.

use std::rc::Rc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::forward::{Exchange, read_head};
use crate::http1::body::BodyReader;
use crate::http1::request::Method;
use crate::record::Recorder;
use crate::snapshot::{LocalSnapshot, Snapshot};
use crate::worker::Worker;

/// Header that tells the mirror target the request is a copy (it may skip side effects).
const MIRROR_HEADER: &[u8] = b"x-ramp-mirror: 1\r\n";

/// Starts a mirrored copy of a request to `revision`. `head` is the head as sent upstream
/// (ending in an empty line); `body` is the whole body, or `None` when it is not buffered (a
/// copy is then skipped and counted as dropped: the original stream cannot be read twice).
pub(crate) fn send(
    worker: &Rc<Worker>,
    snapshot: &LocalSnapshot,
    revision: usize,
    head: &[u8],
    body: Option<&[u8]>,
    method: Method,
) {
    let target = &snapshot.revisions[revision];
    let shard = target.metrics.shard(worker.id);
    let limit = snapshot.settings.mirror_concurrency;
    let (Some(body), Some(slot)) = (body, worker.try_mirror_slot(&target.name, limit)) else {
        shard.mirror_dropped();
        return;
    };
    shard.mirrored();
    let mut request = Vec::with_capacity(head.len() + MIRROR_HEADER.len() + body.len());
    request.extend_from_slice(&head[..head.len() - 2]);
    request.extend_from_slice(MIRROR_HEADER);
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    let (worker, snapshot) = (Rc::clone(worker), Rc::clone(snapshot));
    tokio::task::spawn_local(async move {
        let recorder = Recorder::start(&snapshot, revision, &worker);
        match exchange(&worker, &snapshot, revision, &request, method).await {
            Some(status) => recorder.finish(Some(status), false),
            None => recorder.finish(Some(502), true),
        }
        drop(slot);
    });
}

/// Sends the copy and reads the whole response; returns its status.
async fn exchange(
    worker: &Worker,
    snapshot: &Snapshot,
    revision: usize,
    request: &[u8],
    method: Method,
) -> Option<u16> {
    let settings = &snapshot.settings;
    let mut ex = Exchange::new(worker, &snapshot.revisions[revision], settings, false);
    let mut lease = ex.lease().await.ok()?;
    lease.conn.stream.write_all(request).await.ok()?;
    let timeout = settings.timeouts.response;
    let (head, ()) = read_head(&mut lease.conn, method == Method::Head, timeout, |_| ())
        .await
        .ok()?;
    let mut reader = BodyReader::new(head.framing, false);
    let mut sink = Vec::new();
    loop {
        sink.clear();
        let used = reader.take(&lease.conn.buf, &mut sink).ok()?;
        let _ = lease.conn.buf.split_to(used);
        if reader.is_done() {
            break;
        }
        if !read_more(&mut lease.conn.buf, &mut lease.conn.stream, timeout).await? {
            break; // a close-delimited body ended
        }
    }
    lease.release(worker, head.reusable && reader.is_done());
    Some(head.status)
}

/// Reads more of the response; `Some(false)` at end of stream, `None` on error or timeout.
async fn read_more(
    buf: &mut BytesMut,
    stream: &mut tokio::net::TcpStream,
    timeout: std::time::Duration,
) -> Option<bool> {
    buf.reserve(16 * 1024);
    match tokio::time::timeout(timeout, stream.read_buf(buf)).await {
        Ok(Ok(0)) => Some(false),
        Ok(Ok(_)) => Some(true),
        _ => None,
    }
}
