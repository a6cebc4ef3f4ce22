//! Generates the gRPC code for flagd's protocols from `proto/` with a pure-Rust compiler, so
//! building needs no `protoc`.
//!
//! Two trees are written to `OUT_DIR`: `server/` (messages and service traits, compiled into the
//! library) and `client/` (messages and clients, exported as `grpc::client` with the `client`
//! feature, which the integration tests turn on).

use std::path::{Path, PathBuf};

const PROTOS: [&str; 3] = [
    "flagd/evaluation/v1/evaluation.proto",
    "flagd/evaluation/v2/evaluation.proto",
    "flagd/sync/v1/sync.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    generate(&out_dir.join("server"), descriptors.clone(), Side::Server)?;
    generate(&out_dir.join("client"), descriptors, Side::Client)?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

fn generate(
    dir: &Path,
    descriptors: prost_types::FileDescriptorSet,
    side: Side,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    tonic_prost_build::configure()
        .build_server(side == Side::Server)
        .build_client(side == Side::Client)
        .build_transport(false)
        .out_dir(dir)
        .include_file("mod.rs")
        .compile_fds(descriptors)?;
    Ok(())
}
