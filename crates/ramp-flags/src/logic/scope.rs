//! What one flag evaluation reads: the caller's context, and `$flagd` (the flag key and the
//! time) beside it, so the context is never copied to add it. `$flagd` here wins over one in
//! the context, so callers cannot forge it.
//!
//! The `{flagKey, timestamp}` object is built (and the clock read) only if the rule reads
//! `$flagd` itself, at most once per evaluation; `fractional` reads the flag key directly.

use std::cell::OnceCell;
use std::fmt;

use serde_json::{Map, Value};

/// The key under which `$flagd` is read.
pub(super) const FLAGD_KEY: &str = "$flagd";

/// The data of one flag evaluation.
pub struct FlagScope<'a> {
    context: &'a Map<String, Value>,
    flag_key: &'a str,
    now: &'a dyn Fn() -> u64,
    flagd: OnceCell<Value>,
}

impl<'a> FlagScope<'a> {
    /// Evaluating flag `flag_key` for `context`; `now` gives the Unix time in seconds and is
    /// called only if the rule reads `$flagd`.
    pub fn new(
        context: &'a Map<String, Value>,
        flag_key: &'a str,
        now: &'a dyn Fn() -> u64,
    ) -> FlagScope<'a> {
        FlagScope {
            context,
            flag_key,
            now,
            flagd: OnceCell::new(),
        }
    }

    /// The caller's context.
    pub fn context(&self) -> &'a Map<String, Value> {
        self.context
    }

    /// The flag being evaluated.
    pub fn flag_key(&self) -> &'a str {
        self.flag_key
    }

    /// `{"flagKey": .., "timestamp": ..}`, built on the first call.
    pub fn flagd(&self) -> &Value {
        self.flagd.get_or_init(|| {
            let mut facts = Map::new();
            facts.insert("flagKey".to_owned(), Value::from(self.flag_key));
            facts.insert("timestamp".to_owned(), Value::from((self.now)()));
            Value::Object(facts)
        })
    }
}

impl fmt::Debug for FlagScope<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FlagScope")
            .field("context", &self.context)
            .field("flag_key", &self.flag_key)
            .field("flagd", &self.flagd.get())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn the_clock_is_read_once_and_only_when_flagd_is_read() {
        let reads = Cell::new(0);
        let now = || {
            reads.set(reads.get() + 1);
            1_700_000_000
        };
        let context = Map::new();
        let scope = FlagScope::new(&context, "f", &now);
        assert_eq!(scope.flag_key(), "f");
        assert_eq!(reads.get(), 0);
        let expected = serde_json::json!({"flagKey": "f", "timestamp": 1_700_000_000});
        assert_eq!(scope.flagd(), &expected);
        assert_eq!(scope.flagd(), &expected);
        assert_eq!(reads.get(), 1);
    }
}
