//! `fetch key gen` and `fetch key rotate`: signing keys and the statements that hand a
//! channel's trust to new keys.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ferry_core::base::names::Channel;
use ferry_core::formats::keys;
use ferry_core::formats::minisign::SecretKey;
use ferry_core::formats::rotation::Statement;

use crate::common::code;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a new key pair.
    Gen(KeyGenArgs),
    /// Write a signed statement that replaces the keys a channel trusts (rotation, or
    /// revocation by leaving a key out); carry it with `fetch pack --rotation DIR`.
    Rotate(KeyRotateArgs),
}

#[derive(Args)]
pub struct KeyRotateArgs {
    /// The channel whose keys change.
    #[arg(long, default_value = "default")]
    pub channel: Channel,
    /// The trust version this creates: the channel's current version plus one (a channel
    /// starts at 1; `ingest trust list` shows it).
    #[arg(long, value_name = "N")]
    pub version: u32,
    /// A public key trusted after the rotation; repeat for each. Keys left out are revoked.
    #[arg(long = "trust", value_name = "FILE", required = true)]
    pub trust: Vec<PathBuf>,
    /// How many distinct keys of the new set must sign each bundle.
    #[arg(long, default_value_t = 1)]
    pub threshold: usize,
    /// Secret key to sign the statement with: enough of the keys trusted now, and every key
    /// being added. Repeat for each; or run again on the same --out to add signatures.
    #[arg(long = "sign-with", value_name = "FILE", required = true)]
    pub sign_with: Vec<PathBuf>,
    /// Read key passphrases from this file instead of FERRY_KEY_PASSWORD or the terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// The rotation directory to write (rotation.json and rotation-signatures/).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct KeyGenArgs {
    /// Where to write the secret key (owner-only permissions).
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// Where to write the public key, for `ingest trust add` and `minisign -V -p`.
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
    /// Do not protect the secret key with a passphrase (as `minisign -G -W`).
    #[arg(long)]
    pub unencrypted: bool,
    /// Read the passphrase from this file instead of FERRY_KEY_PASSWORD or the terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

/// A passphrase from a file, FERRY_KEY_PASSWORD, or the terminal, in that order.
pub fn read_passphrase(file: Option<&Path>, prompt: &str, confirm: bool) -> Result<String, String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Ok(p) = std::env::var("FERRY_KEY_PASSWORD") {
        return Ok(p);
    }
    let no_terminal = |e: std::io::Error| {
        format!("no passphrase given ({e}); set FERRY_KEY_PASSWORD, use --passphrase-file, or run in a terminal")
    };
    let first = rpassword::prompt_password(prompt).map_err(no_terminal)?;
    if confirm {
        let again = rpassword::prompt_password("Passphrase (again): ").map_err(no_terminal)?;
        if again != first {
            return Err("the passphrases differ".into());
        }
    }
    Ok(first)
}

pub fn key_gen(args: &KeyGenArgs) -> anyhow::Result<u8> {
    let key = SecretKey::generate()?;
    let passphrase = if args.unencrypted {
        None
    } else {
        let p = read_passphrase(args.passphrase_file.as_deref(), "Passphrase for the new key: ", true)
            .map_err(ferry_core::Error::Invalid)?;
        if p.is_empty() {
            return Err(ferry_core::Error::Invalid(
                "the passphrase is empty; use --unencrypted for a key without one".into(),
            )
            .into());
        }
        Some(p)
    };
    keys::write_key_pair(&args.secret_key, &args.public_key, &key, passphrase.as_deref(), args.force)?;
    outln!("key {} created", key.key_id);
    outln!(
        "  secret key: {} ({})",
        args.secret_key.display(),
        if passphrase.is_some() { "passphrase-protected" } else { "NOT encrypted" }
    );
    outln!("  public key: {}", args.public_key.display());
    Ok(code::OK)
}

pub fn key_rotate(args: &KeyRotateArgs) -> anyhow::Result<u8> {
    let keys = args.trust.iter().map(|p| keys::read_public_key(p)).collect::<Result<Vec<_>, _>>()?;
    let statement = Statement::new(args.channel.clone(), args.version, args.threshold, &keys)
        .map_err(ferry_core::Error::Invalid)?;
    // An existing statement in --out is signed again, so several officers can sign in turn.
    let statement = ferry_core::formats::rotation::statement_to_sign(&args.out, statement)?;
    let mut signing = Vec::new();
    for path in &args.sign_with {
        let prompt = format!("Passphrase for {}: ", path.display());
        signing.push(keys::read_secret_key(path, || read_passphrase(args.passphrase_file.as_deref(), &prompt, false))?);
    }
    let signed = statement.sign(&signing.iter().collect::<Vec<_>>()).map_err(ferry_core::Error::Invalid)?;
    ferry_core::formats::rotation::write_dir(&args.out, &signed)?;
    outln!(
        "rotation statement for channel {} version {} written to {}",
        statement.channel,
        statement.version,
        args.out.display()
    );
    let ids: Vec<String> = keys.iter().map(|k| k.key_id.to_string()).collect();
    outln!("  trusted after it: {} ({} of them must sign)", ids.join(", "), statement.threshold);
    let by: Vec<String> = signing.iter().map(|k| k.key_id.to_string()).collect();
    outln!("  signed now by: {}", by.join(", "));
    Ok(code::OK)
}
