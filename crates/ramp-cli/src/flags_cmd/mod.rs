//! `ramp flags ...`: serving flag files, and the governance commands around them.

mod serve;

use clap::Subcommand;

/// `ramp flags ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum FlagsCommand {
    /// Serve flag files (JSON or YAML) over OFREP; edits are picked up within a fifth of a
    /// second, and an edit that does not validate is refused while the last good flags serve.
    Serve(serve::ServeArgs),
}

pub(crate) async fn run(command: FlagsCommand) -> anyhow::Result<()> {
    match command {
        FlagsCommand::Serve(args) => serve::serve(args).await,
    }
}
