//! Keys are minisign key files: keys made by the stock `minisign -G` (with or without a
//! passphrase) sign bundles as they are, and keys made by `fetch key gen` work with the stock
//! tool.

use std::io::Write;
use std::process::Stdio;

use crate::support::*;

/// Runs the stock minisign with `input` on its standard input.
fn minisign(args: &[&str], input: &str) {
    let mut child = tool("minisign")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "minisign {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn pack_and_import(s: &Scratch, secret: &std::path::Path, public: &std::path::Path, env: &[(&str, &str)]) {
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    s.pack_run(catalog.to_str().unwrap(), secret, &[], env).ok();
    s.ingest(&["trust", "add", public.to_str().unwrap()]).ok();
    s.ingest(&["import", s.media().join("ferry-default-000001.zip").to_str().unwrap()]).ok();
}

#[test]
fn unencrypted_minisign_key() {
    let s = Scratch::new();
    let (secret, public) = (s.path("m.key"), s.path("m.pub"));
    minisign(&["-G", "-W", "-p", public.to_str().unwrap(), "-s", secret.to_str().unwrap()], "");
    pack_and_import(&s, &secret, &public, &[]);
}

#[test]
fn passphrase_protected_minisign_key() {
    let s = Scratch::new();
    let (secret, public) = (s.path("m.key"), s.path("m.pub"));
    minisign(&["-G", "-p", public.to_str().unwrap(), "-s", secret.to_str().unwrap()], "correct horse\ncorrect horse\n");
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    s.pack_run(catalog.to_str().unwrap(), &secret, &[], &[("FERRY_KEY_PASSWORD", "wrong horse")])
        .refused(exit::INPUT, &["wrong passphrase"]);
    s.pack_run(catalog.to_str().unwrap(), &secret, &[], &[])
        .refused(exit::INPUT, &["the key is encrypted", "FERRY_KEY_PASSWORD"]);
    assert!(walk(&s.media()).is_empty());
    pack_and_import(&s, &secret, &public, &[("FERRY_KEY_PASSWORD", "correct horse")]);
}

#[test]
fn fetch_key_is_usable_by_minisign() {
    let s = Scratch::new();
    let (secret, public) = (s.path("f.key"), s.path("f.pub"));
    let pass = s.path("passphrase");
    std::fs::write(&pass, "a long passphrase\n").unwrap();
    let out = s.key_gen(&secret, &public, &["--passphrase-file", pass.to_str().unwrap()]).ok();
    assert!(out.contains("passphrase-protected"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the secret key is owner-only");
    }
    let message = s.path("message.txt");
    std::fs::write(&message, "signed by the stock tool with a key made by fetch\n").unwrap();
    minisign(&["-S", "-s", secret.to_str().unwrap(), "-m", message.to_str().unwrap()], "a long passphrase\n");
    let verify = tool("minisign")
        .args(["-V", "-p", public.to_str().unwrap(), "-m", message.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));

    // Existing key files are not replaced without --force.
    s.key_gen(&secret, &public, &["--unencrypted"]).refused(exit::INPUT, &["exists already"]);
}

#[test]
fn a_public_key_that_is_not_a_key() {
    let s = Scratch::new();
    let bad = s.path("garbage.pub");
    std::fs::write(&bad, "untrusted comment: nothing\nnot base64 at all!\n").unwrap();
    s.ingest(&["trust", "add", bad.to_str().unwrap()]).refused(exit::INPUT, &["garbage.pub", "not valid base64"]);
}

#[test]
fn key_into_a_missing_folder() {
    let s = Scratch::new();
    let secret = s.path("no-such-folder/k.key");
    let stderr = s
        .key_gen(&secret, &s.path("no-such-folder/k.pub"), &["--unencrypted"])
        .refused(exit::LOCAL, &["no-such-folder/k.key", "No such file or directory"]);
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "said once: {stderr}");
    assert!(!s.path("no-such-folder").exists());
}
