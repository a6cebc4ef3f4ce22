//! Flag lifecycle governance: flags say who owns them, what kind they are and when they should
//! be gone (metadata `owner`, `type`, `expires`); [`lint`] checks those conventions and finds
//! flags past their use, [`refs`] finds which flags source code uses.
//!
//! Pure like the rest of the crate: the caller reads files, walks directories and supplies
//! today's date and how long each flag has been unchanged.

mod date;
pub mod lint;
mod metadata;
pub mod refs;
mod single_variant;

pub use date::{Date, DateError};
pub use lint::{
    DEFAULT_FINISHED_AFTER_DAYS, Finding, LintPolicy, LintRule, Severity, lint_file, lint_flag,
    run_fails,
};
pub use metadata::{EXPIRES_KEY, FlagType, OWNER_KEY, TYPE_KEY};
pub use refs::{
    FlagReference, ReferenceKind, RefsReport, SOURCE_EXTENSIONS, cross_check, find_references,
    is_source_file, scan_sources,
};
pub use single_variant::single_variant;
