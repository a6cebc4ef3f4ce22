//! HTTP/1.1 message handling: heads, framing and body copies, shaped for a proxy that
//! forwards bytes rather than rebuilding messages.

pub(crate) mod body;
pub(crate) mod chunked;
pub(crate) mod headers;
pub(crate) mod request;
pub(crate) mod response;

pub(crate) use headers::Framing;
