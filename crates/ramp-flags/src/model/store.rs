//! Several named sources combined into one evaluable snapshot, as flagd does: later sources win on
//! duplicate keys, a source's update replaces all of its flags, and a selector narrows what a
//! client sees to one flag set or one source.
//!
//! Each snapshot is prepared for resolution once, when it is built: every flag with its
//! variants in a flat list ([`ServedFlag`]), and, for the view without a selector (what
//! in-process callers and most clients use), the visible flag of every key in a hash table.

mod key_hash;
mod served;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{FLAG_SET_ID_KEY, Flag, FlagFile};
use key_hash::BuildKeyHasher;
pub(crate) use served::ServedFlag;

/// A flag set's source of truth, by the name its configuration gives it.
#[derive(Debug, Clone)]
struct Source {
    name: String,
    file: Arc<FlagFile>,
}

/// One definition of a key, and the position of the source that defines it.
#[derive(Debug, Clone)]
struct Candidate {
    source: usize,
    flag: Arc<ServedFlag>,
}

/// An immutable snapshot of every source's flags. Cloning is cheap (flags are shared), so a
/// server can swap in a new snapshot on each update while requests finish on the old one.
#[derive(Debug, Clone, Default)]
pub struct FlagStore {
    sources: Vec<Source>,
    /// Per key, every definition in source order (lowest priority first).
    index: BTreeMap<String, Vec<Candidate>>,
    /// Per key, the definition seen without a selector (the highest-priority one).
    latest: HashMap<String, Arc<ServedFlag>, BuildKeyHasher>,
}

impl FlagStore {
    /// A snapshot of `sources`, in priority order: on duplicate keys the later source wins.
    /// A name given twice keeps the first position and the last file.
    pub fn new(sources: Vec<(String, FlagFile)>) -> FlagStore {
        let mut store = FlagStore::default();
        for (name, file) in sources {
            store.put_source(name, Arc::new(file));
        }
        store.reindex();
        store
    }

    /// A snapshot with the source `name` replaced by `file` (all its previous flags are dropped,
    /// its priority kept), or with `file` added as the highest-priority source if `name` is new.
    pub fn with_source(&self, name: &str, file: FlagFile) -> FlagStore {
        let mut store = FlagStore {
            sources: self.sources.clone(),
            ..FlagStore::default()
        };
        store.put_source(name.to_owned(), Arc::new(file));
        store.reindex();
        store
    }

    /// A snapshot without the source `name` (unchanged if there is none).
    pub fn without_source(&self, name: &str) -> FlagStore {
        let mut store = FlagStore {
            sources: self.sources.clone(),
            ..FlagStore::default()
        };
        store.sources.retain(|source| source.name != name);
        store.reindex();
        store
    }

    /// Source names in priority order (lowest first).
    pub fn source_names(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|source| source.name.as_str())
    }

    /// The file a source currently serves.
    pub fn source(&self, name: &str) -> Option<&FlagFile> {
        self.sources
            .iter()
            .find(|source| source.name == name)
            .map(|source| source.file.as_ref())
    }

    /// The flags `selector` makes visible.
    pub fn select<'a>(&'a self, selector: &'a Selector) -> Flags<'a> {
        Flags {
            store: self,
            selector,
        }
    }

    /// Every flag, with duplicates resolved by source priority.
    pub fn all(&self) -> Flags<'_> {
        self.select(&Selector::All)
    }

    fn put_source(&mut self, name: String, file: Arc<FlagFile>) {
        match self.sources.iter_mut().find(|source| source.name == name) {
            Some(existing) => existing.file = file,
            None => self.sources.push(Source { name, file }),
        }
    }

    fn reindex(&mut self) {
        let mut index: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
        for (position, source) in self.sources.iter().enumerate() {
            for flag in source.file.shared_flags() {
                index.entry(flag.key.clone()).or_default().push(Candidate {
                    source: position,
                    flag: Arc::new(ServedFlag::new(Arc::clone(flag))),
                });
            }
        }
        self.latest = index
            .iter()
            .filter_map(|(key, candidates)| {
                let latest = candidates.last()?;
                Some((key.clone(), Arc::clone(&latest.flag)))
            })
            .collect();
        self.index = index;
    }
}

/// What a client asked to see (flagd's `Flagd-Selector` header / sync `selector` field).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Selector {
    /// Every flag of every source.
    #[default]
    All,
    /// Flags whose effective `metadata.flagSetId` is this id (`flagSetId=<id>`).
    FlagSet(String),
    /// Flags of one source (`source=<name>`; a bare name is read the same way, as flagd does for
    /// selectors written before flag sets existed).
    Source(String),
}

/// A selector string that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {selector:?}: {reason}")]
pub struct SelectorError {
    /// The selector as given.
    pub selector: String,
    /// Why it was refused.
    pub reason: String,
}

impl Selector {
    /// Parses `flagSetId=<id>`, `source=<name>`, a bare source name, or an empty string (all).
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let text = text.trim();
        let refuse = |reason: &str| SelectorError {
            selector: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.is_empty() {
            return Ok(Selector::All);
        }
        let Some((key, value)) = text.split_once('=') else {
            return Ok(Selector::Source(text.to_owned()));
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(refuse("the value after '=' is empty"));
        }
        match key.trim() {
            "flagSetId" => Ok(Selector::FlagSet(value.to_owned())),
            "source" => Ok(Selector::Source(value.to_owned())),
            _ => Err(refuse("expected flagSetId=<id> or source=<name>")),
        }
    }

    fn admits(&self, source: &str, flag: &Flag) -> bool {
        match self {
            Selector::All => true,
            Selector::FlagSet(id) => flag.flag_set_id() == Some(id.as_str()),
            Selector::Source(name) => source == name,
        }
    }

    /// Whether the file-level metadata of `source` belongs to what this selector shows.
    fn admits_file(&self, source: &Source) -> bool {
        match self {
            Selector::All => true,
            Selector::FlagSet(id) => source.file.flag_set_id() == Some(id.as_str()),
            Selector::Source(name) => source.name == *name,
        }
    }
}

/// The flags of a [`FlagStore`] visible through one selector; evaluation happens here.
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    store: &'a FlagStore,
    selector: &'a Selector,
}

impl<'a> Flags<'a> {
    /// The visible definition of `key`: among the definitions the selector admits, the one from
    /// the highest-priority source.
    pub fn get(&self, key: &str) -> Option<&'a Flag> {
        self.served(key).map(ServedFlag::flag)
    }

    /// Every visible flag, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = &'a Flag> + 'a {
        self.iter_served().map(ServedFlag::flag)
    }

    /// [`Flags::get`], prepared for resolution.
    pub(crate) fn served(&self, key: &str) -> Option<&'a ServedFlag> {
        if matches!(self.selector, Selector::All) {
            return self.store.latest.get(key).map(Arc::as_ref);
        }
        let candidates = self.store.index.get(key)?;
        self.pick(candidates)
    }

    /// [`Flags::iter`], prepared for resolution.
    pub(crate) fn iter_served(&self) -> impl Iterator<Item = &'a ServedFlag> + 'a {
        let view = *self;
        self.store
            .index
            .values()
            .filter_map(move |candidates| view.pick(candidates))
    }

    /// Number of visible flags.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no flag is visible.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The metadata of the flag set shown, as a bulk evaluation reports it: the file metadata of
    /// every admitted source (later sources winning), and the selected `flagSetId` stated.
    pub fn metadata(&self) -> Map<String, Value> {
        let mut metadata = Map::new();
        for source in &self.store.sources {
            if self.selector.admits_file(source) {
                let file = source.file.metadata();
                metadata.extend(file.iter().map(|(key, value)| (key.clone(), value.clone())));
            }
        }
        if let Selector::FlagSet(id) = self.selector {
            metadata.insert(FLAG_SET_ID_KEY.to_owned(), Value::from(id.as_str()));
        }
        metadata
    }

    fn pick(&self, candidates: &'a [Candidate]) -> Option<&'a ServedFlag> {
        candidates
            .iter()
            .rev()
            .find(|candidate| {
                let source = &self.store.sources[candidate.source].name;
                self.selector.admits(source, candidate.flag.flag())
            })
            .map(|candidate| candidate.flag.as_ref())
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
