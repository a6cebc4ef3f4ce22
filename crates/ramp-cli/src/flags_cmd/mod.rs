//! `ramp flags ...`: serving flag files, and the governance commands around them.

mod lint;
mod manage;
mod refs;
mod serve;

use clap::Subcommand;

/// `ramp flags ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum FlagsCommand {
    /// Serve flag files (JSON or YAML) over flagd's gRPC protocols and OFREP; edits are picked
    /// up within milliseconds, and an edit that does not validate is refused while the last good
    /// flags serve.
    Serve(serve::ServeArgs),
    /// Check flag lifecycle metadata (owner, type, expires) and find finished release flags;
    /// exits 1 when a finding fails the run, for CI.
    Lint(lint::LintArgs),
    /// Find the flag keys source code uses; reports unknown keys (exit 1) and unused flags.
    Refs(refs::RefsArgs),
    /// The flags the control plane manages (list, get, apply, delete, disable, enable,
    /// history), through its API.
    #[command(flatten)]
    Manage(manage::ManageCommand),
}

pub(crate) async fn run(command: FlagsCommand) -> anyhow::Result<()> {
    match command {
        FlagsCommand::Serve(args) => serve::serve(args).await,
        FlagsCommand::Lint(args) => lint::run(args).await,
        FlagsCommand::Refs(args) => refs::run(args),
        FlagsCommand::Manage(command) => manage::run(command).await,
    }
}
