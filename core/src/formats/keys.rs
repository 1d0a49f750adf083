//! Key files on disk: reading minisign public and secret keys, writing new key pairs with
//! owner-only permissions, and recognising the public demo key shipped in `samples/`.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::base::error::{Error, IoContext, Result};
use crate::formats::minisign::{PublicKey, SecretKey, SecretKeyError};

/// The public half of `samples/keys/demo.pub`. Its secret half is published in the same
/// folder, so anyone can sign with it: ingest refuses to trust it without --allow-demo-key.
pub const DEMO_PUBLIC_KEY: &str = include_str!("../../../samples/keys/demo.pub");

/// Largest key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

fn read_text(path: &Path) -> Result<String> {
    let len = fs::metadata(path).at(path)?.len();
    if len > MAX_KEY_FILE {
        return Err(Error::KeyFile {
            path: path.to_path_buf(),
            reason: format!("{len} bytes is too large for a key file"),
        });
    }
    let bytes = fs::read(path).at(path)?;
    String::from_utf8(bytes).map_err(|_| Error::KeyFile { path: path.to_path_buf(), reason: "not UTF-8 text".into() })
}

pub fn read_public_key(path: &Path) -> Result<PublicKey> {
    PublicKey::parse(&read_text(path)?).map_err(|reason| Error::KeyFile { path: path.to_path_buf(), reason })
}

/// Reads a secret key; `passphrase` is called only if the key is encrypted.
pub fn read_secret_key(
    path: &Path,
    passphrase: impl FnOnce() -> std::result::Result<String, String>,
) -> Result<SecretKey> {
    SecretKey::parse(&read_text(path)?, passphrase).map_err(|e| match e {
        SecretKeyError::WrongPassphrase => Error::WrongPassphrase { path: path.to_path_buf() },
        SecretKeyError::Malformed(reason) => Error::KeyFile { path: path.to_path_buf(), reason },
        SecretKeyError::NoPassphrase(reason) => {
            Error::KeyFile { path: path.to_path_buf(), reason: format!("the key is encrypted: {reason}") }
        }
    })
}

pub fn is_demo_key(key: &PublicKey) -> bool {
    PublicKey::parse(DEMO_PUBLIC_KEY).is_ok_and(|demo| demo == *key)
}

/// Writes `text` to a new file (replacing one only with `force`), owner-only if `private`.
/// A symbolic link at `path` is refused, never written through.
fn write_new(path: &Path, text: &str, private: bool, force: bool) -> Result<()> {
    match crate::base::shared_tree::kind_of(path)? {
        Some(crate::base::shared_tree::Kind::Symlink) => {
            let target = fs::read_link(path).at(path)?;
            return Err(Error::OutputIsLink { path: path.to_path_buf(), target });
        }
        Some(_) if !force => return Err(Error::AlreadyExists { what: format!("key file {}", path.display()) }),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
        // A link planted after the look above is not followed either.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    #[cfg(not(unix))]
    let _ = private; // On Windows the file inherits the directory's ACL; document it.
    let mut file = options.open(path).at(path)?;
    #[cfg(unix)]
    if private {
        // An existing file keeps its old mode on open; tighten it explicitly.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).at(path)?;
    }
    file.write_all(text.as_bytes()).at(path)?;
    file.sync_all().at(path)
}

/// Writes a public key file as an output (replacing an existing one: public keys are not
/// secret), never into `protected` (the data directory).
pub fn write_public_key(path: &Path, key: &PublicKey, protected: Option<&Path>) -> Result<()> {
    crate::base::output::write_bytes(path, protected, key.to_file_string().as_bytes())
}

/// Writes a new key pair: the secret key (encrypted with `passphrase` unless `None`) with
/// owner-only permissions, and the public key.
pub fn write_key_pair(
    secret_path: &Path,
    public_path: &Path,
    key: &SecretKey,
    passphrase: Option<&str>,
    force: bool,
) -> Result<()> {
    if !force {
        for p in [secret_path, public_path] {
            if p.exists() {
                return Err(Error::AlreadyExists { what: format!("key file {}", p.display()) });
            }
        }
    }
    write_new(secret_path, &key.to_file_string(passphrase)?, true, force)?;
    write_new(public_path, &key.public_key().to_file_string(), false, force)
}
