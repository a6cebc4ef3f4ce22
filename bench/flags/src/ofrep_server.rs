//! Ramp's OFREP server for the load phase: started in this process on 127.0.0.1 (port 0) with
//! the benchmark's flag file, exactly as `ramp flags serve` wires it (a [`FlagSource`], the
//! evaluation metrics, default options), on a runtime of its own so the load generator's
//! process and this one share only the machine.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use ramp_flagd::ofrep::{self, OfrepOptions};
use ramp_flagd::{EvaluationMetrics, FlagSource};
use ramp_flags::model::{FlagFile, Format};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// A running OFREP server; stopped (in-flight requests finished) when dropped.
#[derive(Debug)]
pub(crate) struct OfrepServer {
    address: SocketAddr,
    runtime: Option<Runtime>,
    stop: Option<oneshot::Sender<()>>,
}

impl OfrepServer {
    /// Serves `flag_file` on 127.0.0.1 with `worker_threads` runtime threads.
    pub(crate) fn start(flag_file: &str, worker_threads: usize) -> Result<OfrepServer, String> {
        let file = FlagFile::parse(flag_file, Format::Json)
            .map_err(|errors| format!("flag file rejected: {errors}"))?;
        let source = Arc::new(FlagSource::new());
        source.put_source("bench", file);
        source.mark_ready();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("ofrep-server")
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start the server runtime: {error}"))?;
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .map_err(|error| format!("cannot listen on 127.0.0.1: {error}"))?;
        let address = listener
            .local_addr()
            .map_err(|error| format!("cannot read the server address: {error}"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let metrics = Arc::new(EvaluationMetrics::new());
        let shutdown = async {
            let _ = stopped.await;
        };
        runtime.spawn(ofrep::serve(
            listener,
            source,
            metrics,
            OfrepOptions::default(),
            shutdown,
        ));
        Ok(OfrepServer {
            address,
            runtime: Some(runtime),
            stop: Some(stop),
        })
    }

    /// Where the server listens.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// The variant the server serves for `key` and `context`, over a fresh connection: a check
    /// that the server answers real evaluations before it is loaded.
    pub(crate) fn served_variant(
        &self,
        key: &str,
        context: &Map<String, Value>,
    ) -> Result<Option<String>, String> {
        let body = json!({ "context": context }).to_string();
        let request = format!(
            "POST /ofrep/v1/evaluate/flags/{key} HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        );
        let fail = |error: std::io::Error| format!("OFREP request for '{key}' failed: {error}");
        let mut stream = TcpStream::connect(self.address).map_err(fail)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(fail)?;
        stream.write_all(request.as_bytes()).map_err(fail)?;
        let mut response = String::new();
        stream.read_to_string(&mut response).map_err(fail)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("OFREP answered '{key}' without a body: {response:?}"))?;
        if !head.starts_with("HTTP/1.1 200") {
            let status = head.lines().next().unwrap_or_default();
            return Err(format!("OFREP answered '{key}' with {status}: {body}"));
        }
        let answer: Value = serde_json::from_str(body)
            .map_err(|error| format!("OFREP answered '{key}' with unreadable JSON: {error}"))?;
        Ok(answer["variant"].as_str().map(str::to_owned))
    }
}

impl Drop for OfrepServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RampEngine;
    use crate::workload::{FlagClass, generate_contexts};

    #[test]
    fn the_server_serves_what_the_engine_resolves() {
        let flags = include_str!("../flags.json");
        let server = OfrepServer::start(flags, 1).unwrap();
        let engine = RampEngine::load(flags).unwrap();
        for context in generate_contexts(5, 3) {
            for class in FlagClass::ALL {
                let served = server.served_variant(class.flag_key(), &context).unwrap();
                let resolved = engine.resolve(class, &context).variant.map(str::to_owned);
                assert_eq!(served, resolved, "{}", class.name());
            }
        }
        let missing = server.served_variant("no-such-flag", &Map::new());
        assert!(missing.unwrap_err().contains("404"));
    }
}
