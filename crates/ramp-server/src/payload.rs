//! A revision's payload: the template plus the content of its executable and declared files,
//! kept in the object store so the revision runs the same way after the files on disk change.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ramp_model::Template;
use ramp_store::ObjectStore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ServerError;

/// What a revision is, stored as its `template_json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// The template as applied.
    pub template: Template,
    /// The executable's object digest.
    pub program: String,
    /// The command as written (shown in `ps` as the program name).
    pub program_name: String,
    /// Declared files: relative path → object digest.
    pub files: BTreeMap<String, String>,
    /// Working directory for instances (resolved when the spec was applied).
    pub working_dir: PathBuf,
}

impl Payload {
    /// Snapshots a template: resolves its command (a path, relative to the working directory,
    /// or a name in `PATH`) and stores the executable and declared files.
    pub fn snapshot(
        template: &Template,
        base_dir: &Path,
        objects: &ObjectStore,
        digests: &FileDigests,
    ) -> Result<Payload, ServerError> {
        let working_dir = match &template.working_dir {
            Some(dir) => base_dir.join(dir),
            None => base_dir.to_path_buf(),
        };
        let program_path = resolve_command(&template.command, &working_dir).ok_or_else(|| {
            ServerError::Invalid(format!(
                "spec.template.command: {:?} is not an executable file (looked in {} and PATH)",
                template.command,
                working_dir.display()
            ))
        })?;
        let program = digests.put(objects, &program_path)?;
        let mut files = BTreeMap::new();
        for (i, file) in template.files.iter().enumerate() {
            let path = working_dir.join(file);
            let digest = digests.put(objects, &path).map_err(|e| {
                ServerError::Invalid(format!(
                    "spec.template.files[{i}]: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            files.insert(file.clone(), digest);
        }
        Ok(Payload {
            template: template.clone(),
            program,
            program_name: template.command.clone(),
            files,
            working_dir,
        })
    }

    /// The revision's identity: the template and the content of everything it runs, so a
    /// rebuilt binary under the same name is a new revision.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.template.digest().as_bytes());
        hasher.update(self.program.as_bytes());
        for (path, digest) in &self.files {
            hasher.update(path.as_bytes());
            hasher.update(digest.as_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Finds the executable a command names.
fn resolve_command(command: &str, working_dir: &Path) -> Option<PathBuf> {
    let is_executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        let path = working_dir.join(command);
        return is_executable(&path).then_some(path);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(command))
        .find(|p| is_executable(p))
}

/// What identifies a file's content without reading it: device, inode, size and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<FileStamp> {
        let m = std::fs::metadata(path)?;
        Ok(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })
    }
}

/// Remembers the digest of files already stored, so applying the same executable again does
/// not read and hash it again (a 100 MB binary takes a while).
#[derive(Debug, Default)]
pub struct FileDigests {
    known: Mutex<HashMap<PathBuf, (FileStamp, String)>>,
}

impl FileDigests {
    /// Stores `path` in `objects` unless the same file (same stamp) is known to be there.
    fn put(&self, objects: &ObjectStore, path: &Path) -> Result<String, ServerError> {
        let stamp = FileStamp::of(path)
            .map_err(|e| ServerError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, digest)) = known.get(&key)
            && *seen == stamp
            && objects.contains(digest)
        {
            return Ok(digest.clone());
        }
        drop(known);
        let digest = objects.put_file(path)?;
        // The file may have changed while it was copied; only a stamp taken before and still
        // true after vouches for the digest.
        if FileStamp::of(path).ok() == Some(stamp) {
            known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            known.insert(key, (stamp, digest.clone()));
        }
        Ok(digest)
    }
}
