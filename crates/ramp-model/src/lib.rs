//! Ramp's declarative documents: parsed from YAML with every field checked, and refused with
//! errors that name the field path, the line and the column.

mod duration;
mod error;
mod locate;
mod proxy;
mod service;
mod syntax;

pub use duration::parse_duration;
pub use error::{ModelError, Problem};
pub use proxy::{ProxyConfig, Timeouts};
pub use service::{
    BackgroundAnalysis, Baseline, BlueGreen, Canary, CanaryStep, Check, IntOrPercent, Probe,
    ProbeAction, Rolling, ServiceSpec, StopPolicy, Strategy, Template, same_socket,
};
pub use syntax::{is_token, parse_socket_addr};
