//! Random bytes from the operating system, for key ids, key material, salts and bundle ids.

use crate::base::error::{Error, Result};
use crate::base::names::{BundleId, hex};

pub fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Environment {
        what: "random bytes".into(),
        cause: format!("the operating system gave none: {e}"),
    })
}

/// A new bundle id: 16 random bytes in hex.
pub fn bundle_id() -> Result<BundleId> {
    let mut bytes = [0u8; 16];
    fill(&mut bytes)?;
    BundleId::try_from(hex(&bytes))
}
