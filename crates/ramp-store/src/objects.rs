//! The content-addressed object store: a revision's files, kept by digest, so a revision stays
//! runnable after the files it was created from change or disappear.
//!
//! Layout: `objects/sha256/<first 2 hex digits>/<other 62>`, each object read-only, plus
//! `objects/tmp/` for writes in progress (same file system, so the final rename is atomic).

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::StoreError;

const PREFIX: &str = "sha256:";
/// Temp files older than this were left by a crashed writer and are removed on open.
const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);
const READ_ONLY: u32 = 0o444;
const READ_ONLY_EXECUTABLE: u32 = 0o555;

/// Content-addressed files under `<dir>/objects`. Digests are `sha256:<64 lowercase hex>`.
#[derive(Debug)]
pub struct ObjectStore {
    root: PathBuf,
}

impl ObjectStore {
    pub(crate) fn open(root: PathBuf) -> Result<ObjectStore, StoreError> {
        let store = ObjectStore { root };
        for dir in [store.root.join("sha256"), store.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(StoreError::io("creating directory", dir))?;
        }
        store.remove_stale_temps()?;
        Ok(store)
    }

    /// The directory holding the objects, `<dir>/objects`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Copies a file in, streaming, and returns its digest `sha256:<hex>`. Storing the same
    /// content twice stores it once. The stored copy is read-only and keeps the executable bit
    /// of the source; a crash never leaves a partial object under its digest.
    pub fn put_file(&self, path: &Path) -> Result<String, StoreError> {
        let mut source = File::open(path).map_err(StoreError::io("opening", path))?;
        let meta = source
            .metadata()
            .map_err(StoreError::io("reading metadata of", path))?;
        let executable = meta.permissions().mode() & 0o111 != 0;
        self.put(&mut source, executable, path)
    }

    /// Stores `bytes` (see [`ObjectStore::put_file`]); `executable` sets the executable bit.
    pub fn put_bytes(&self, bytes: &[u8], executable: bool) -> Result<String, StoreError> {
        let mut source = bytes;
        self.put(&mut source, executable, Path::new("<bytes>"))
    }

    /// The path of a stored object. Fails if the digest is malformed (so a crafted digest can
    /// never name a file outside the store) or the object is absent.
    pub fn path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let path = self.object_path(parse(digest)?);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(path),
            Ok(_) => Err(StoreError::ObjectNotFound(digest.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::ObjectNotFound(digest.to_owned()))
            }
            Err(e) => Err(StoreError::Io {
                op: "reading metadata of",
                path,
                source: e,
            }),
        }
    }

    /// Whether the object is stored (false for a malformed digest).
    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_ok()
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn object_path(&self, hex: &str) -> PathBuf {
        self.root.join("sha256").join(&hex[..2]).join(&hex[2..])
    }

    fn put(
        &self,
        source: &mut dyn Read,
        executable: bool,
        source_path: &Path,
    ) -> Result<String, StoreError> {
        let temp = TempFile::create(&self.tmp_dir())?;
        let mut file = temp.file.as_ref().expect("temp file is open until closed");
        let mut hasher = Sha256::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(StoreError::Io {
                        op: "reading",
                        path: source_path.into(),
                        source: e,
                    });
                }
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(StoreError::io("writing", &temp.path))?;
        }
        let hex = to_hex(&hasher.finalize());
        let digest = format!("{PREFIX}{hex}");
        let final_path = self.object_path(&hex);
        let mode = if executable {
            READ_ONLY_EXECUTABLE
        } else {
            READ_ONLY
        };

        if let Ok(existing) = fs::symlink_metadata(&final_path) {
            // Already stored. Content is identical by construction; the bit is per object, so
            // once any copy was executable, the object is.
            if executable && existing.permissions().mode() & 0o111 == 0 {
                fs::set_permissions(&final_path, Permissions::from_mode(mode))
                    .map_err(StoreError::io("setting permissions of", &final_path))?;
            }
            return Ok(digest); // `temp` removes itself
        }

        file.set_permissions(Permissions::from_mode(mode))
            .map_err(StoreError::io("setting permissions of", &temp.path))?;
        // On disk before it gets its name, so even a power loss cannot leave a short object.
        file.sync_all()
            .map_err(StoreError::io("syncing", &temp.path))?;
        let parent = final_path.parent().expect("object paths have a parent");
        fs::create_dir_all(parent).map_err(StoreError::io("creating directory", parent))?;
        temp.persist(&final_path)?;
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(StoreError::io("syncing directory", parent))?;
        Ok(digest)
    }

    fn remove_stale_temps(&self) -> Result<(), StoreError> {
        let dir = self.tmp_dir();
        let entries = fs::read_dir(&dir).map_err(StoreError::io("listing", &dir))?;
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP);
            if stale {
                let _ = fs::remove_file(entry.path()); // best effort: another run may race us
            }
        }
        Ok(())
    }
}

/// The hex part of a well-formed digest.
fn parse(digest: &str) -> Result<&str, StoreError> {
    digest
        .strip_prefix(PREFIX)
        .filter(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .ok_or_else(|| StoreError::InvalidDigest(digest.to_owned()))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A file in `objects/tmp/`, removed on drop unless persisted.
struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    fn create(dir: &Path) -> Result<TempFile, StoreError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "{}-{}-{nanos}.tmp",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(StoreError::Io {
                        op: "creating",
                        path,
                        source: e,
                    });
                }
            }
        }
    }

    /// Closes the file and renames it to `to` (atomically replacing a concurrent writer's
    /// identical copy, if any).
    fn persist(mut self, to: &Path) -> Result<(), StoreError> {
        drop(self.file.take());
        fs::rename(&self.path, to).map_err(StoreError::io("renaming into place", to))?;
        self.path = PathBuf::new(); // nothing left to remove
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        drop(self.file.take());
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use sha2::{Digest, Sha256};

    use super::{ObjectStore, to_hex};
    use crate::testutil::temp_dir;
    use crate::{Store, StoreError};

    fn sha256(bytes: &[u8]) -> String {
        format!("sha256:{}", to_hex(&Sha256::digest(bytes)))
    }

    fn mode(path: &std::path::Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn count_objects(objects: &ObjectStore) -> usize {
        let mut n = 0;
        for fan in fs::read_dir(objects.root().join("sha256")).unwrap() {
            n += fs::read_dir(fan.unwrap().path()).unwrap().count();
        }
        n
    }

    #[test]
    fn hex_matches_known_vector() {
        assert_eq!(
            sha256(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn digest_is_sha256_of_content_and_content_is_kept() {
        let dir = temp_dir("obj-digest");
        let store = Store::open(dir.path()).unwrap();
        let objects = store.objects();
        // Larger than the copy buffer, so streaming across chunks is covered.
        let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let src = dir.path().join("app.bin");
        fs::write(&src, &content).unwrap();
        let digest = objects.put_file(&src).unwrap();
        assert_eq!(digest, sha256(&content));
        let stored = objects.path(&digest).unwrap();
        assert!(stored.starts_with(objects.root()));
        let hex = &digest["sha256:".len()..];
        assert!(stored.ends_with(format!("sha256/{}/{}", &hex[..2], &hex[2..])));
        assert_eq!(fs::read(&stored).unwrap(), content);
        assert!(objects.contains(&digest));

        // The stored copy does not follow the source.
        fs::write(&src, b"changed").unwrap();
        assert_eq!(fs::read(&stored).unwrap(), content);

        let empty = objects.put_bytes(b"", false).unwrap();
        assert_eq!(empty, sha256(b""));
        assert!(fs::read(objects.path(&empty).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn same_content_is_stored_once() {
        let dir = temp_dir("obj-dedup");
        let store = Store::open(dir.path()).unwrap();
        let objects = store.objects();
        let a = objects.put_bytes(b"hello", false).unwrap();
        let src = dir.path().join("hello.txt");
        fs::write(&src, b"hello").unwrap();
        let b = objects.put_file(&src).unwrap();
        let c = objects.put_bytes(b"hello", false).unwrap();
        assert_eq!((&a, &b), (&c, &c));
        assert_eq!(count_objects(objects), 1);
        objects.put_bytes(b"world", false).unwrap();
        assert_eq!(count_objects(objects), 2);
        // No temp files are left behind.
        assert_eq!(fs::read_dir(objects.root().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn executable_bit_is_kept_and_objects_are_read_only() {
        let dir = temp_dir("obj-exec");
        let store = Store::open(dir.path()).unwrap();
        let objects = store.objects();
        let script = dir.path().join("run.sh");
        fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o750)).unwrap();
        let data = dir.path().join("data.txt");
        fs::write(&data, b"plain").unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o644)).unwrap();

        let exe = objects.path(&objects.put_file(&script).unwrap()).unwrap();
        let plain = objects.path(&objects.put_file(&data).unwrap()).unwrap();
        assert_eq!(mode(&exe), 0o555);
        assert_eq!(mode(&plain), 0o444);
        let bytes_exe = objects
            .path(&objects.put_bytes(b"bin", true).unwrap())
            .unwrap();
        assert_eq!(mode(&bytes_exe), 0o555);

        // Content first stored without the bit gains it when stored as executable again.
        let digest = objects.put_bytes(b"later executable", false).unwrap();
        assert_eq!(mode(&objects.path(&digest).unwrap()), 0o444);
        objects.put_bytes(b"later executable", true).unwrap();
        assert_eq!(mode(&objects.path(&digest).unwrap()), 0o555);
    }

    #[test]
    fn unknown_or_malformed_digest_is_an_error() {
        let dir = temp_dir("obj-bad");
        let store = Store::open(dir.path()).unwrap();
        let objects = store.objects();
        let unknown = sha256(b"never stored");
        assert!(matches!(
            objects.path(&unknown),
            Err(StoreError::ObjectNotFound(_))
        ));
        assert!(!objects.contains(&unknown));
        let stored = objects.put_bytes(b"x", false).unwrap();
        for bad in [
            "sha256:../../etc",
            "sha256:../../../../../../etc/passwd",
            "",
            "sha256:",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            &stored["sha256:".len()..],
            &stored.to_uppercase(),
            &format!("{stored}0"),
            &format!("{}/..", &stored[..stored.len() - 3]),
        ] {
            let err = objects.path(bad).unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidDigest(_)),
                "{bad:?}: {err}"
            );
            assert!(!objects.contains(bad), "{bad:?}");
        }
    }

    #[test]
    fn missing_source_file_is_an_io_error_and_leaves_nothing() {
        let dir = temp_dir("obj-missing");
        let store = Store::open(dir.path()).unwrap();
        let err = store
            .objects()
            .put_file(&dir.path().join("nope"))
            .unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
        let tmp = store.objects().root().join("tmp");
        assert_eq!(fs::read_dir(tmp).unwrap().count(), 0);
    }
}
