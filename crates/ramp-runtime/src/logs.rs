//! Instance log files.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read from the end at a time.
const CHUNK: u64 = 64 * 1024;
/// Most bytes read for one tail, so a file with very long lines is not read whole.
const MAX_TAIL_BYTES: u64 = 16 * 1024 * 1024;

/// The last `lines` lines of a log file, oldest first, read backwards from the end of the file.
/// A final line without a newline counts; `\r\n` endings are accepted; invalid UTF-8 is
/// replaced. At most 16 MiB are read, so the first line returned may be cut short.
pub fn tail_log(path: &Path, lines: usize) -> io::Result<Vec<String>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if lines == 0 || len == 0 {
        return Ok(Vec::new());
    }
    // Chunks read so far, last chunk first.
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut start = len;
    let mut newlines = 0usize;
    let mut ends_with_newline = None;
    // `lines` lines need `lines` newlines before them (the one ending the preceding line), not
    // counting the file's final newline.
    while start > 0 && len - start < MAX_TAIL_BYTES {
        let size = CHUNK.min(start).min(MAX_TAIL_BYTES - (len - start));
        start -= size;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0; size as usize];
        file.read_exact(&mut chunk)?;
        let ends = *ends_with_newline.get_or_insert(chunk.last() == Some(&b'\n'));
        newlines += chunk.iter().filter(|b| **b == b'\n').count();
        chunks.push(chunk);
        if newlines > lines || (newlines == lines && !ends) {
            break;
        }
    }
    let mut tail = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
    for chunk in chunks.iter().rev() {
        tail.extend_from_slice(chunk);
    }
    if tail.last() == Some(&b'\n') {
        tail.pop();
    }
    let all: Vec<&[u8]> = tail.split(|b| *b == b'\n').collect();
    let skip = all.len().saturating_sub(lines);
    Ok(all[skip..]
        .iter()
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            String::from_utf8_lossy(line).into_owned()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn temp_file(content: &[u8]) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ramp-runtime-tail-{}-{}.log",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = File::create(&path).unwrap();
        file.write_all(content).unwrap();
        path
    }

    fn tail(content: &[u8], lines: usize) -> Vec<String> {
        let path = temp_file(content);
        let got = tail_log(&path, lines).unwrap();
        std::fs::remove_file(path).unwrap();
        got
    }

    #[test]
    fn last_lines_of_a_small_file() {
        assert_eq!(tail(b"a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(tail(b"a\nb\nc", 2), ["b", "c"]);
        assert_eq!(tail(b"a\nb\nc\n", 3), ["a", "b", "c"]);
        assert_eq!(tail(b"a\nb\nc\n", 10), ["a", "b", "c"]);
        assert_eq!(tail(b"a\r\nb\r\n", 1), ["b"]);
        assert_eq!(tail(b"a\n\n\nb\n", 3), ["", "", "b"]);
        assert_eq!(tail(b"\n", 5), [""]);
        assert!(tail(b"", 5).is_empty());
        assert!(tail(b"a\n", 0).is_empty());
        assert_eq!(tail(b"a\xffb\n", 1), ["a\u{fffd}b"]);
    }

    #[test]
    fn last_lines_across_chunks() {
        let mut content = String::new();
        for i in 0..100_000 {
            content.push_str(&format!("line {i}\n"));
        }
        let want: Vec<String> = (99_990..100_000).map(|i| format!("line {i}")).collect();
        assert_eq!(tail(content.as_bytes(), 10), want);
        let want: Vec<String> = (80_000..100_000).map(|i| format!("line {i}")).collect();
        assert_eq!(tail(content.as_bytes(), 20_000), want);
        // Exactly at a chunk boundary.
        let line = "x".repeat(CHUNK as usize - 1) + "\n";
        let content = line.repeat(3);
        assert_eq!(tail(content.as_bytes(), 2).len(), 2);
        assert_eq!(tail(content.as_bytes(), 3).len(), 3);
        assert_eq!(tail(content.as_bytes(), 4).len(), 3);
    }

    #[test]
    fn missing_file_is_an_error() {
        let path = std::env::temp_dir().join("ramp-runtime-no-such-log-file.log");
        assert_eq!(
            tail_log(&path, 3).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
