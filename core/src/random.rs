//! Random bytes from the operating system, for key ids, key material, salts and bundle ids.

use crate::error::{Error, Result};

pub fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Invalid(format!("the operating system gave no random bytes: {e}")))
}
