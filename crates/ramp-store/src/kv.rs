//! Small key/value settings (e.g. the router agent's pid and socket).

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

pub(crate) fn set(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO kv (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use crate::testutil::TempDir;

    #[test]
    fn set_get_overwrite() {
        let dir = TempDir::new("kv");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.kv("router.pid").unwrap(), None);
        store.set_kv("router.pid", "1234").unwrap();
        store.set_kv("router.socket", "/run/ramp.sock").unwrap();
        store.set_kv("router.pid", "5678").unwrap();
        assert_eq!(store.kv("router.pid").unwrap().as_deref(), Some("5678"));
        assert_eq!(
            store.kv("router.socket").unwrap().as_deref(),
            Some("/run/ramp.sock")
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.kv("router.pid").unwrap().as_deref(), Some("5678"));
    }
}
