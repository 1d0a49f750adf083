//! The offline server's data directory: `registry.sqlite`, the content store under `store/`,
//! and `ingest.lock`.
//!
//! Commands that change anything open it exclusively: the lock file is held for the whole
//! run, so two ingests never interleave, and only the lock holder cleans the store's leftover
//! temporary files. Read-only commands (list, show, verify) open it shared, never wait, and
//! never create it.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::base::error::{Error, Result};
use crate::formats::keys;
use crate::formats::minisign::SecretKey;
use crate::server::config::Config;
use crate::server::registry::Registry;
use crate::server::store::Store;

pub const REGISTRY_FILE: &str = "registry.sqlite";
pub const STORE_DIR: &str = "store";
pub const LOCK_FILE: &str = "ingest.lock";
pub const SERVER_KEY_FILE: &str = "server.key";
pub const SERVER_PUBLIC_FILE: &str = "server.pub";

pub struct DataDir {
    root: PathBuf,
    /// Only core reaches the registry: the binaries call the operations of `ingest` and
    /// `publish`, which keep its rules.
    pub(crate) registry: Registry,
    /// The configuration in force (`ingest.toml` and the command line's overrides); the
    /// defaults until the caller sets it.
    pub config: Config,
    /// Present only when opened exclusively: only the lock holder may write to the store.
    store: Option<Store>,
    _lock: Option<File>,
}

impl DataDir {
    /// Opens for changes, holding the lock until dropped.
    pub fn open_exclusive(root: &Path) -> Result<DataDir> {
        let lock = crate::base::lock::acquire(root, LOCK_FILE)?;
        let store = Store::open(&root.join(STORE_DIR))?;
        let registry = Registry::open(&root.join(REGISTRY_FILE))?;
        // Finish or undo what a crash interrupted: see `store`.
        store.recover(|digest| registry.has_file(digest))?;
        let mut registry = registry;
        let joined = registry.chunks_of_whole_files()?;
        for chunk in &joined {
            store.remove_chunk(chunk)?;
        }
        registry.forget_chunks(&joined)?;
        Ok(DataDir {
            root: root.to_path_buf(),
            registry,
            config: Config::default(),
            store: Some(store),
            _lock: Some(lock),
        })
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
        Ok(DataDir { root: root.to_path_buf(), registry, config: Config::default(), store: None, _lock: None })
    }

    /// Writes the server's public key to `out` (never inside the data directory, which is
    /// checked before the key is made on first use); returns it.
    pub fn export_server_key(&self, out: &Path) -> Result<crate::formats::minisign::PublicKey> {
        crate::base::output::refuse_inside(out, &self.root)?;
        let key = self.server_key()?.public_key();
        keys::write_public_key(out, &key, Some(&self.root))?;
        Ok(key)
    }

    /// Writes the state file to `out` and its signature by the server key beside it (neither
    /// inside the data directory, checked before the key is made on first use); returns it.
    pub fn export_state(&self, out: &Path) -> Result<crate::formats::state::ServerState> {
        crate::base::output::refuse_inside(out, &self.root)?;
        crate::base::output::refuse_inside(&crate::formats::state::signature_path(out), &self.root)?;
        let key = self.server_key()?;
        let state = self.registry.server_state(&key.public_key())?;
        state.write_signed(out, &key, &self.root)?;
        Ok(state)
    }

    /// The management server's own key pair, created on first use (`server.key`, not
    /// encrypted because the server signs unattended, owner-only; `server.pub`). It signs
    /// state files, and later the indexes of distribution points.
    pub fn server_key(&self) -> Result<SecretKey> {
        let secret = self.root.join(SERVER_KEY_FILE);
        if secret.is_file() {
            return keys::read_secret_key(&secret, || Err("the server key must not be encrypted".into()));
        }
        if self.store.is_none() {
            return Err(Error::Internal("the server key does not exist yet and this command may not create it".into()));
        }
        let key = SecretKey::generate()?;
        keys::write_key_pair(&secret, &self.root.join(SERVER_PUBLIC_FILE), &key, None, false)?;
        Ok(key)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store, for the lock holder.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Whether the store holds `digest` (read-only look, allowed without the lock).
    pub fn store_holds(&self, digest: &crate::base::names::Sha256) -> bool {
        match &self.store {
            Some(store) => store.contains(digest),
            None => Store::path_in(&self.root.join(STORE_DIR), digest).is_file(),
        }
    }
}
