//! Where fetch and ingest keep their data when no directory is given: one rule on both
//! systems. Run by an administrator (root on Unix; an elevated process, or a service, on
//! Windows), they use the system's locations, so that a service, a timer and an
//! administrator's shell all find the same server; otherwise the user's own data directory.
//!
//! | | data | `ingest.toml` |
//! |---|---|---|
//! | Linux, as root | `/var/lib/ferry/<program>` | `/etc/ferry/` |
//! | Windows, elevated or a service | `%ProgramData%\ferry\<program>` | `%ProgramData%\ferry\` |
//! | otherwise | `<the user's local data directory>/ferry/<program>` | the data directory |
//! | `--data-dir` / `--work-dir` given | that directory | that directory (the system's, if it is the system location) |
//!
//! On Windows, `%ProgramData%\ferry` is created with an access list of its own (not the one
//! it would inherit from `%ProgramData%`, where every user may create files): Administrators
//! and SYSTEM have full control, nobody else any access, since the data directory holds the
//! server's secret key.
//!
//! A data directory that an earlier version kept in the administrator's own data directory
//! stays in use while the system location does not exist, and the reason says so.

use std::path::{Path, PathBuf};

use crate::base::error::{Error, Result};

/// Where a program keeps its data, and why there.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// The data (or work) directory.
    pub dir: PathBuf,
    /// The directory whose `ingest.toml` is read.
    pub config_dir: PathBuf,
    /// Whether `dir` is a system location, created by [`prepare`] with the system's rules.
    pub system: bool,
    /// Whether `dir` was given (by flag or environment) rather than chosen by the rule.
    pub given: bool,
    /// Why this directory, in words for the administrator.
    pub why: String,
}

/// Why the process counts as an administrator's, if it does.
pub fn administrator() -> Option<&'static str> {
    #[cfg(unix)]
    {
        rustix::process::geteuid().is_root().then_some("running as root")
    }
    #[cfg(windows)]
    {
        windows::elevated().then_some("running elevated or as a service")
    }
    #[cfg(not(any(unix, windows)))]
    {
        None
    }
}

/// The system's base directory for ferry: `/var/lib/ferry` and `/etc/ferry` on Unix,
/// `%ProgramData%\ferry` (both) on Windows.
fn system_dirs() -> (PathBuf, PathBuf) {
    #[cfg(windows)]
    {
        let base = std::env::var_os("ProgramData")
            .filter(|p| Path::new(p).is_absolute())
            .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
            .join("ferry");
        (base.clone(), base)
    }
    #[cfg(not(windows))]
    {
        (PathBuf::from("/var/lib/ferry"), PathBuf::from("/etc/ferry"))
    }
}

/// Where `program` (`ingest` or `fetch`) keeps its data: `given` (by flag or environment)
/// if any, else by the rule above.
pub fn choose(given: Option<PathBuf>, program: &str, flag: &str, env: &str) -> Result<Location> {
    if let Some(dir) = given {
        return Ok(given_dir(dir, system_dirs(), program, &format!("given by {flag} or {env}")));
    }
    let user = dirs::data_local_dir().map(|d| d.join("ferry").join(program));
    choose_between(administrator(), system_dirs(), user, program)
        .ok_or_else(|| Error::Invalid(format!("no data directory for {program}: give {flag} or set {env}")))
}

/// A directory given by flag or environment: its own `ingest.toml`, unless it is the system
/// location, whose configuration is the system's whoever names it (a service given
/// `/var/lib/ferry/ingest` and root's shell given nothing read the same file).
fn given_dir(dir: PathBuf, (system_data, system_config): (PathBuf, PathBuf), program: &str, why: &str) -> Location {
    if dir == system_data.join(program) {
        let why = format!("{why}: the system location");
        return Location { dir, config_dir: system_config, system: true, given: true, why };
    }
    Location { config_dir: dir.clone(), dir, system: false, given: true, why: why.to_string() }
}

/// The rule, apart from the process it runs in.
fn choose_between(
    administrator: Option<&str>,
    (system_data, system_config): (PathBuf, PathBuf),
    user: Option<PathBuf>,
    program: &str,
) -> Option<Location> {
    let system = system_data.join(program);
    match (administrator, user) {
        (Some(_), Some(user)) if !system.exists() && user.exists() => Some(Location {
            why: format!(
                "this account's own data directory, which holds data already; the system location {} does not \
                 exist yet (move the directory there to use it)",
                system.display()
            ),
            config_dir: user.clone(),
            dir: user,
            system: false,
            given: false,
        }),
        (Some(who), _) => Some(Location {
            dir: system,
            config_dir: system_config,
            system: true,
            given: false,
            why: format!("system location: {who}"),
        }),
        (None, Some(user)) => Some(Location {
            why: "this account's own data directory: not running as an administrator".into(),
            config_dir: user.clone(),
            dir: user,
            system: false,
            given: false,
        }),
        (None, None) => None,
    }
}

/// Makes a system location's directories that do not exist yet, with the system's rules:
/// on Windows the base directory's own access list (Administrators and SYSTEM only), on
/// Unix owner and group only. A location that is not a system one is left to the commands.
pub fn prepare(location: &Location) -> Result<()> {
    if !location.system || location.dir.is_dir() {
        return Ok(());
    }
    let base = location.dir.parent().unwrap_or(&location.dir);
    for dir in [base, location.dir.as_path()] {
        if dir.is_dir() {
            continue;
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        create_private_dir(dir)?;
    }
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o750).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

#[cfg(windows)]
fn create_private_dir(dir: &Path) -> Result<()> {
    windows::create_dir_for_administrators(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(not(any(unix, windows)))]
fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(windows)]
mod windows {
    //! The two Windows calls std lacks: whether the process's token is elevated, and making
    //! a directory with an access list of its own.

    use std::os::windows::ffi::OsStrExt;
    use std::path::Path;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::{
        GetTokenInformation, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_ELEVATION, TOKEN_QUERY, TokenElevation,
    };
    use windows_sys::Win32::Storage::FileSystem::CreateDirectoryW;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    /// Protected (nothing inherited from %ProgramData%), inherited by everything below:
    /// full control for SYSTEM and the Administrators group, and no entry for anyone else.
    const ADMINISTRATORS_ONLY: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

    /// Whether the process runs with an elevated token (an administrator's "Run as
    /// administrator", and services running as SYSTEM).
    pub fn elevated() -> bool {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing; `token` is
        // a valid place for the opened handle.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return false;
        }
        let mut elevation = TOKEN_ELEVATION { TokenIsElevated: 0 };
        let mut returned = 0u32;
        // SAFETY: `token` was opened above with TOKEN_QUERY; the buffer is a TOKEN_ELEVATION
        // of the size given; the handle is closed once, here.
        let ok = unsafe {
            let ok = GetTokenInformation(
                token,
                TokenElevation,
                (&raw mut elevation).cast(),
                size_of::<TOKEN_ELEVATION>() as u32,
                &mut returned,
            );
            CloseHandle(token);
            ok
        };
        ok != 0 && elevation.TokenIsElevated != 0
    }

    fn wide(text: &std::ffi::OsStr) -> Vec<u16> {
        text.encode_wide().chain(std::iter::once(0)).collect()
    }

    /// Creates `dir` with [`ADMINISTRATORS_ONLY`] as its access list from the start, so
    /// there is no moment when it has the one %ProgramData% would give it.
    pub fn create_dir_for_administrators(dir: &Path) -> std::io::Result<()> {
        let sddl = wide(ADMINISTRATORS_ONLY.as_ref());
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; `descriptor` receives a LocalAlloc'd buffer,
        // freed below.
        let converted = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if converted == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let attributes = SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: descriptor,
            bInheritHandle: 0,
        };
        let path = wide(dir.as_os_str());
        // SAFETY: `path` is NUL-terminated; `attributes` points at the descriptor made
        // above, which lives until LocalFree.
        let (created, error) = unsafe {
            let created = CreateDirectoryW(path.as_ptr(), &attributes);
            let error = std::io::Error::last_os_error();
            LocalFree(descriptor);
            (created, error)
        };
        match created {
            0 if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            0 => Err(error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> (PathBuf, PathBuf) {
        (PathBuf::from("/var/lib/ferry"), PathBuf::from("/etc/ferry"))
    }

    #[test]
    fn an_administrator_gets_the_system_location() {
        let chosen =
            choose_between(Some("running as root"), system(), Some("/nonexistent/ferry/ingest".into()), "ingest")
                .unwrap();
        assert_eq!(chosen.dir, Path::new("/var/lib/ferry/ingest"));
        assert_eq!(chosen.config_dir, Path::new("/etc/ferry"));
        assert!(chosen.system);
        assert_eq!(chosen.why, "system location: running as root");
    }

    #[test]
    fn anyone_else_gets_their_own_data_directory() {
        let chosen =
            choose_between(None, system(), Some("/home/ann/.local/share/ferry/fetch".into()), "fetch").unwrap();
        assert_eq!(chosen.dir, Path::new("/home/ann/.local/share/ferry/fetch"));
        assert_eq!(chosen.config_dir, chosen.dir);
        assert!(!chosen.system);
        assert!(chosen.why.contains("not running as an administrator"), "{}", chosen.why);
        assert_eq!(choose_between(None, system(), None, "fetch"), None);
    }

    #[test]
    fn an_administrators_earlier_data_stays_in_use_until_moved() {
        let earlier = tempfile::tempdir().unwrap();
        let nowhere = earlier.path().join("no-system-location");
        let chosen = choose_between(
            Some("running as root"),
            (nowhere.clone(), nowhere.clone()),
            Some(earlier.path().to_path_buf()),
            "ingest",
        )
        .unwrap();
        assert_eq!(chosen.dir, earlier.path());
        assert!(chosen.why.contains("holds data already") && chosen.why.contains("no-system-location"));
        // Once the system location exists, it is the one.
        std::fs::create_dir_all(nowhere.join("ingest")).unwrap();
        let chosen = choose_between(
            Some("running as root"),
            (nowhere.clone(), nowhere),
            Some(earlier.path().to_path_buf()),
            "ingest",
        )
        .unwrap();
        assert!(chosen.system);
    }

    #[test]
    fn the_system_location_given_reads_the_system_configuration() {
        let chosen = given_dir("/var/lib/ferry/ingest".into(), system(), "ingest", "given by --data-dir");
        assert_eq!(chosen.config_dir, Path::new("/etc/ferry"));
        assert!(chosen.system);
        assert_eq!(chosen.why, "given by --data-dir: the system location");
    }

    #[test]
    fn a_given_directory_is_the_one() {
        let chosen = choose(Some("/srv/ferry".into()), "ingest", "--data-dir", "FERRY_DATA_DIR").unwrap();
        assert_eq!(
            (chosen.dir.as_path(), chosen.config_dir.as_path()),
            (Path::new("/srv/ferry"), Path::new("/srv/ferry"))
        );
        assert!(chosen.why.contains("--data-dir"));
    }
}
