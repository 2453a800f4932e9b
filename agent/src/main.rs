//! `heimdall-agent`: the systemd service on the game VM. Flags or `HEIMDALL_*` environment
//! variables (`heimdall-agent --help`, `agent/README.md`); SIGTERM or SIGINT stops it cleanly.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use clap::Parser;
use heimdall_agent::{run, AgentConfig, Args};

/// The flag `run` watches, reachable from the signal handler.
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic load and store: safe inside a signal handler.
    if let Some(stop) = STOP.get() {
        stop.store(true, Ordering::Relaxed);
    }
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only touches an atomic that is initialised before this call.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

/// One line per record on standard error (the journal), with its fields (`event_id=…`) so that
/// one event can be followed with grep.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    let config = match AgentConfig::from_args(args) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("configuration: {error:#}");
            return ExitCode::from(2);
        }
    };
    let stop = STOP
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    install_signal_handlers();
    match run(config, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
