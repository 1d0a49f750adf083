//! What every `ingest` command runs with: the data directory and this run's `--set`
//! overrides of ingest.toml. The one place that opens the data directory.

use std::path::{Path, PathBuf};

use ferry_core::base::locations::Location;
use ferry_core::server::config::{self, Config, Effective, Notify};
use ferry_core::server::datadir::DataDir;

use crate::PROGRAM;
use crate::common::safe;

#[derive(Clone)]
pub struct Context {
    location: Location,
    /// `--set KEY=VALUE`, in the order given.
    overrides: Vec<String>,
}

impl Context {
    pub fn new(location: Location, overrides: Vec<String>) -> Context {
        Context { location, overrides }
    }

    pub fn dir(&self) -> &Path {
        &self.location.dir
    }

    /// Where the data directory is and why there.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The configuration file read.
    pub fn config_file(&self) -> PathBuf {
        self.location.config_dir.join(config::CONFIG_FILE)
    }

    /// ingest.toml with this run's overrides.
    pub fn effective(&self) -> ferry_core::Result<Effective> {
        config::load(&self.location.config_dir, &self.overrides)
    }

    /// Opens the data directory to read, beside other readers.
    pub fn read(&self) -> ferry_core::Result<DataDir> {
        DataDir::open_shared(self.dir())
    }

    /// Opens the data directory to change it, alone. The first time, when it was not given,
    /// says where it is and why there.
    pub fn write(&self) -> ferry_core::Result<DataDir> {
        let new = !self.dir().join(ferry_core::server::datadir::REGISTRY_FILE).exists();
        ferry_core::base::locations::prepare(&self.location)?;
        let data = DataDir::open_exclusive(self.dir())?;
        if new && !self.location.given {
            eprintln!(
                "{PROGRAM}: a new data directory, {} ({})",
                safe(&self.dir().display().to_string()),
                self.location.why
            );
        }
        Ok(data)
    }

    /// Opens the data directory to change it, alone, with the configuration in force (for
    /// the commands whose change reports notify people).
    pub fn write_configured(&self) -> ferry_core::Result<DataDir> {
        self.write_with(self.effective()?.config)
    }

    /// Opens the data directory to change it, alone, with `config` in force.
    pub fn write_with(&self, config: Config) -> ferry_core::Result<DataDir> {
        let mut data = self.write()?;
        data.config = config;
        Ok(data)
    }
}

/// Sends the notifications the configuration asks for about `notice`, and says how each went
/// (on standard error: standard output may be JSON). A failed notification is a warning: the
/// change it reports was made.
pub fn notify(config: &Notify, notice: ferry_core::ingest::notify::Notice<'_>) {
    let mailer = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(format!("ferry-mail{}", std::env::consts::EXE_SUFFIX))))
        .unwrap_or_else(|| "ferry-mail".into());
    for o in ferry_core::ingest::notify::notify(config, notice, &mailer) {
        if o.delivered {
            eprintln!("{PROGRAM}: notified by {} about {}", o.channel, notice.describe());
        } else {
            eprintln!("{PROGRAM}: warning: notification by {} failed: {}", o.channel, safe(&o.detail));
        }
    }
}
