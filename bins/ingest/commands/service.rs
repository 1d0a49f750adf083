//! `ingest service`: `ingest watch` as a Windows service, as it runs as a systemd unit on
//! Linux. `install` registers it with the service manager (started at boot, as LocalSystem,
//! with the data directory and drop folders given now), `start`, `stop` and `uninstall`
//! do what they say, and the service manager starts `ingest service run`, which runs the
//! watcher's passes until told to stop.
//!
//! What the passes print goes to `service.log` in the data directory (a service has no
//! console). A stop request ends the wait between two passes at once. One that comes during
//! a pass lets it finish for up to 20 seconds, then ends the process: stopping at any moment
//! is safe (an import or a publish cut short leaves the previous state, and the next pass
//! completes the work), and Windows is not kept waiting.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::commands::watch::WatchArgs;

#[derive(Subcommand)]
pub enum ServiceCommand {
    /// Register `ingest watch` as the Windows service ferry-ingest-watch: started at boot, as
    /// LocalSystem, on this data directory and these drop folders. Needs an elevated shell.
    Install(InstallArgs),
    /// Start the service.
    Start,
    /// Stop the service; a pass under way finishes first (for up to 20 s).
    Stop,
    /// Stop the service if it runs, and remove it from the service manager.
    Uninstall,
    /// What the service manager starts; not for a shell.
    #[command(hide = true)]
    Run(WatchArgs),
}

#[derive(Args)]
pub struct InstallArgs {
    /// A drop folder (repeatable); watch.drop of ingest.toml if none.
    #[arg(long = "drop", value_name = "DIR")]
    drops: Vec<PathBuf>,
    /// Seconds between passes [watch.interval_seconds, 300].
    #[arg(long, value_name = "SECONDS")]
    interval: Option<u64>,
    /// Seconds a file must stay unchanged before it is read [watch.settle_seconds, 10].
    #[arg(long, value_name = "SECONDS")]
    settle: Option<u64>,
    /// Do not publish to the distribution points after a pass [watch.publish].
    #[arg(long)]
    no_publish: bool,
}

#[cfg(not(windows))]
pub fn run(_ctx: &crate::context::Context, _command: ServiceCommand) -> anyhow::Result<u8> {
    eprintln!(
        "{}: error: ingest service manages a Windows service; on Linux, ingest watch runs as a systemd unit \
         (samples/schedule/ferry-ingest-watch.service and .timer)",
        crate::PROGRAM
    );
    Ok(crate::common::code::USAGE)
}

#[cfg(windows)]
pub use windows::run;

#[cfg(windows)]
mod windows {
    use std::ffi::{OsStr, OsString};
    use std::sync::OnceLock;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use anyhow::Context as _;
    use windows_service::service::{
        ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode, ServiceInfo,
        ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult, ServiceStatusHandle};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

    use super::{InstallArgs, ServiceCommand};
    use crate::PROGRAM;
    use crate::commands::watch::WatchArgs;
    use crate::common::code;
    use crate::context::Context;

    /// The service's name in the service manager (`sc query ferry-ingest-watch`).
    const SERVICE_NAME: &str = "ferry-ingest-watch";

    /// How long a pass under way may run on after a stop request.
    const STOP_GRACE: Duration = Duration::from_secs(20);

    pub fn run(ctx: &Context, command: ServiceCommand) -> anyhow::Result<u8> {
        let outcome = match command {
            ServiceCommand::Install(args) => install(ctx, args)?,
            ServiceCommand::Start => start(),
            ServiceCommand::Stop => stop(),
            ServiceCommand::Uninstall => uninstall(),
            ServiceCommand::Run(args) => dispatch(ctx, args),
        };
        Ok(outcome.map_or_else(Refused::say, |()| code::OK))
    }

    /// A refusal by the service manager, said with the exit code its cause deserves.
    struct Refused {
        what: String,
        error: windows_service::Error,
    }

    type Outcome<T> = Result<T, Refused>;

    fn refused(what: impl Into<String>) -> impl FnOnce(windows_service::Error) -> Refused {
        let what = what.into();
        move |error| Refused { what, error }
    }

    impl Refused {
        fn code(&self) -> u8 {
            let os = match &self.error {
                windows_service::Error::Winapi(e) => e.raw_os_error(),
                _ => None,
            };
            match os {
                // ERROR_ACCESS_DENIED: not an elevated shell.
                Some(5) => code::LOCAL,
                // ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_MARKED_FOR_DELETE.
                Some(1060 | 1072) => code::NOT_FOUND,
                // ERROR_SERVICE_EXISTS, ERROR_DUPLICATE_SERVICE_NAME.
                Some(1073 | 1078) => code::INPUT,
                // ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: `service run` from a shell.
                Some(1063) => code::USAGE,
                _ => code::LOCAL,
            }
        }

        fn say(self) -> u8 {
            let code = self.code();
            let hint = match code {
                code::LOCAL if matches!(&self.error, windows_service::Error::Winapi(e) if e.raw_os_error() == Some(5)) => {
                    " (ingest service needs an elevated shell)"
                }
                code::NOT_FOUND => " (ingest service install registers it)",
                code::USAGE => " (the service manager starts it: ingest service start)",
                _ => "",
            };
            let cause = match &self.error {
                windows_service::Error::Winapi(e) => e.to_string(),
                other => other.to_string(),
            };
            crate::common::report(PROGRAM, &anyhow::anyhow!("{}{hint}: {cause}", self.what));
            code
        }
    }

    fn manager(access: ServiceManagerAccess) -> Outcome<ServiceManager> {
        ServiceManager::local_computer(None::<&str>, access).map_err(refused("opening the service manager"))
    }

    fn install(ctx: &Context, args: InstallArgs) -> anyhow::Result<Outcome<()>> {
        if args.drops.is_empty() && ctx.effective()?.config.watch.drop.is_empty() {
            return Err(ferry_core::Error::Invalid(format!(
                "no drop folder for the service: give --drop DIR, or set watch.drop in {}",
                ctx.config_file().display()
            ))
            .into());
        }
        let absolute = |p: &std::path::Path| std::path::absolute(p).with_context(|| format!("{}", p.display()));
        let mut arguments: Vec<OsString> = vec!["--data-dir".into(), absolute(ctx.dir())?.into()];
        arguments.extend(["service".into(), "run".into()]);
        for drop in &args.drops {
            arguments.extend(["--drop".into(), absolute(drop)?.into()]);
        }
        if let Some(interval) = args.interval {
            arguments.extend(["--interval".into(), interval.to_string().into()]);
        }
        if let Some(settle) = args.settle {
            arguments.extend(["--settle".into(), settle.to_string().into()]);
        }
        if args.no_publish {
            arguments.push("--no-publish".into());
        }
        let info = ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: "ferry ingest watch".into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: std::env::current_exe().context("finding ingest.exe")?,
            launch_arguments: arguments,
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        Ok(register(ctx, &info))
    }

    fn register(ctx: &Context, info: &ServiceInfo) -> Outcome<()> {
        let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
        let service = manager
            .create_service(info, ServiceAccess::CHANGE_CONFIG)
            .map_err(refused(format!("registering the service {SERVICE_NAME}")))?;
        service
            .set_description(
                "ferry: imports the bundles that appear in the drop folders, refreshes the update list daily, and \
                 publishes the distribution points.",
            )
            .map_err(refused("describing the service"))?;
        outln!(
            "installed the service {SERVICE_NAME} (started at boot, as LocalSystem) on {}; start it now with ingest \
             service start",
            ctx.dir().display()
        );
        Ok(())
    }

    fn open(access: ServiceAccess) -> Outcome<windows_service::service::Service> {
        manager(ServiceManagerAccess::CONNECT)?
            .open_service(SERVICE_NAME, access | ServiceAccess::QUERY_STATUS)
            .map_err(refused(format!("opening the service {SERVICE_NAME}")))
    }

    fn start() -> Outcome<()> {
        let service = open(ServiceAccess::START)?;
        service.start::<&OsStr>(&[]).map_err(refused(format!("starting the service {SERVICE_NAME}")))?;
        wait_for(&service, ServiceState::Running)?;
        outln!("started the service {SERVICE_NAME}");
        Ok(())
    }

    /// Stops the service if it runs, and waits until it has.
    fn stopped(service: &windows_service::service::Service) -> Outcome<()> {
        let state = service.query_status().map_err(refused(format!("asking the service {SERVICE_NAME}")))?;
        if state.current_state != ServiceState::Stopped {
            service.stop().map_err(refused(format!("stopping the service {SERVICE_NAME}")))?;
            wait_for(service, ServiceState::Stopped)?;
        }
        Ok(())
    }

    fn stop() -> Outcome<()> {
        stopped(&open(ServiceAccess::STOP)?)?;
        outln!("stopped the service {SERVICE_NAME}");
        Ok(())
    }

    fn uninstall() -> Outcome<()> {
        let service = open(ServiceAccess::STOP | ServiceAccess::DELETE)?;
        stopped(&service)?;
        service.delete().map_err(refused(format!("removing the service {SERVICE_NAME}")))?;
        outln!("removed the service {SERVICE_NAME}");
        Ok(())
    }

    /// Waits for the service to reach `state`: at most the stop grace and a little more.
    fn wait_for(service: &windows_service::service::Service, state: ServiceState) -> Outcome<()> {
        let deadline = Instant::now() + STOP_GRACE + Duration::from_secs(10);
        loop {
            let now =
                service.query_status().map_err(refused(format!("asking the service {SERVICE_NAME}")))?.current_state;
            if now == state {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Refused {
                    what: format!("waiting for the service {SERVICE_NAME}"),
                    error: windows_service::Error::Winapi(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("it is {now:?}, not {state:?}, after {} s", STOP_GRACE.as_secs() + 10),
                    )),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// What the service runs, handed from the command line to the service manager's thread.
    struct Service {
        ctx: Context,
        args: WatchArgs,
    }

    static SERVICE: OnceLock<Service> = OnceLock::new();

    windows_service::define_windows_service!(ffi_service_main, service_main);

    /// Hands the process to the service manager, which calls `service_main` on a thread of its
    /// own and returns once the service has stopped.
    fn dispatch(ctx: &Context, args: WatchArgs) -> Outcome<()> {
        // Set once: this is the only caller, once per process.
        let _ = SERVICE.set(Service { ctx: ctx.clone(), args });
        windows_service::service_dispatcher::start(SERVICE_NAME, ffi_service_main)
            .map_err(refused("ingest service run is not for a shell"))
    }

    fn status(state: ServiceState, exit: u32) -> ServiceStatus {
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: ServiceExitCode::Win32(exit),
            checkpoint: 0,
            wait_hint: if state == ServiceState::StopPending { STOP_GRACE } else { Duration::default() },
            process_id: None,
        }
    }

    /// The file, in the data directory, that holds what the service's passes print.
    const LOG_FILE: &str = "service.log";

    /// Sends standard output and standard error, which a service does not have, to
    /// `path` (appended to): std writes through the process's standard handles each time.
    fn log_to(path: &std::path::Path) -> std::io::Result<()> {
        use std::os::windows::io::IntoRawHandle;
        use windows_sys::Win32::System::Console::{STD_ERROR_HANDLE, STD_OUTPUT_HANDLE, SetStdHandle};
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        // The handle stays open for the life of the process, as standard handles do.
        let handle = file.into_raw_handle();
        // SAFETY: `handle` is an open file handle that is never closed; SetStdHandle only
        // records it as the process's standard output and error.
        let set =
            unsafe { SetStdHandle(STD_OUTPUT_HANDLE, handle) != 0 && SetStdHandle(STD_ERROR_HANDLE, handle) != 0 };
        if set { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    }

    fn service_main(_arguments: Vec<OsString>) {
        let Some(service) = SERVICE.get() else { return };
        // Without a log the service's work would be seen only in the reports: a failure to
        // open one is no reason not to run.
        let _ = log_to(&service.ctx.dir().join(LOG_FILE));
        eprintln!("{PROGRAM}: service {SERVICE_NAME} started at {}", ferry_core::base::clock::Timestamp::now());
        let (stop_sender, stop_receiver) = mpsc::channel::<()>();
        let handle: std::sync::Arc<OnceLock<ServiceStatusHandle>> = Default::default();
        let for_handler = handle.clone();
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                if let Some(h) = for_handler.get() {
                    let _ = h.set_service_status(status(ServiceState::StopPending, 0));
                }
                let _ = stop_sender.send(());
                // A pass under way may finish for a while; then the process ends, which is
                // safe at any moment.
                let later = for_handler.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(STOP_GRACE);
                    if let Some(h) = later.get() {
                        let _ = h.set_service_status(status(ServiceState::Stopped, 0));
                    }
                    std::process::exit(0);
                });
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let Ok(registered) = service_control_handler::register(SERVICE_NAME, handler) else { return };
        let _ = handle.set(registered);
        let _ = registered.set_service_status(status(ServiceState::Running, 0));
        let mut stop = |wait: Duration| match stop_receiver.recv_timeout(wait) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        };
        let exit = match crate::commands::watch::run_until(
            &service.ctx,
            service.args.clone(),
            "ingest service stop",
            &mut stop,
        ) {
            Ok(_) => 0,
            Err(e) => u32::from(crate::common::report(PROGRAM, &e)),
        };
        eprintln!("{PROGRAM}: service {SERVICE_NAME} stopped at {}", ferry_core::base::clock::Timestamp::now());
        let _ = registered.set_service_status(status(ServiceState::Stopped, exit));
    }
}
