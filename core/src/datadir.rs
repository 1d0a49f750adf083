//! The offline server's data directory: `registry.sqlite`, the content store under `store/`,
//! and `ingest.lock`.
//!
//! Commands that change anything open it exclusively: the lock file is held for the whole
//! run, so two ingests never interleave, and only the lock holder cleans the store's leftover
//! temporary files. Read-only commands (list, show, verify) open it shared, never wait, and
//! never create it.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::store::Store;

pub const REGISTRY_FILE: &str = "registry.sqlite";
pub const STORE_DIR: &str = "store";
pub const LOCK_FILE: &str = "ingest.lock";

pub struct DataDir {
    root: PathBuf,
    pub registry: Registry,
    /// Present only when opened exclusively: only the lock holder may write to the store.
    store: Option<Store>,
    _lock: Option<File>,
}

impl DataDir {
    /// Opens for changes, holding the lock until dropped.
    pub fn open_exclusive(root: &Path) -> Result<DataDir> {
        let lock = crate::lock::acquire(root, LOCK_FILE)?;
        let store = Store::open(&root.join(STORE_DIR))?;
        let registry = Registry::open(&root.join(REGISTRY_FILE))?;
        Ok(DataDir { root: root.to_path_buf(), registry, store: Some(store), _lock: Some(lock) })
    }

    /// Opens for reading; does not wait for, or block, a running import, and creates nothing:
    /// a data directory without a registry is refused, so a mistyped path is not mistaken
    /// for an empty server.
    pub fn open_shared(root: &Path) -> Result<DataDir> {
        let path = root.join(REGISTRY_FILE);
        if !path.is_file() {
            return Err(Error::NoRegistry { dir: root.to_path_buf() });
        }
        let registry = Registry::open(&path)?;
        Ok(DataDir { root: root.to_path_buf(), registry, store: None, _lock: None })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store, for the lock holder.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Whether the store holds `digest` (read-only look, allowed without the lock).
    pub fn store_holds(&self, digest: &crate::names::Sha256) -> bool {
        match &self.store {
            Some(store) => store.contains(digest),
            None => Store::path_in(&self.root.join(STORE_DIR), digest).is_file(),
        }
    }
}
