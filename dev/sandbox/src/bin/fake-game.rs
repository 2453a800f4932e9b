//! `heimdall-fake-game`: the Valheim container, as the sandbox's VMs run it.
//!
//! `run` writes the recorded boot of the game to its log (each line with the timestamp Docker's
//! `--timestamps` puts in front), then whatever the sandbox feeds it on standard input (players
//! joining and leaving). On SIGTERM it does what the game does on a graceful stop: prints the
//! shutdown, saves the world and exits, after a delay; with `--hang` it never saves and never
//! exits. `stop` is `docker stop`: SIGTERM, wait, and SIGKILL after the timeout.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The recorded evening: the sandbox and the parser read the same lines.
const SESSION_LOG: &str =
    include_str!("../../../../crates/valheim-log/fixtures/valheim-session.log");

#[derive(Parser)]
#[command(name = "heimdall-fake-game", version)]
/// The Valheim game container of the sandbox's simulated VM.
struct Cli {
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Runs the game: boot lines, then standard input, until SIGTERM.
    Run {
        /// The container log to append to.
        #[arg(long, env = "HEIMDALL_GAME_LOG")]
        log: PathBuf,
        /// Where the game writes its process id (for `stop`).
        #[arg(long, env = "HEIMDALL_GAME_PID_FILE")]
        pid_file: PathBuf,
        /// How long loading the world takes, in milliseconds.
        #[arg(long, env = "HEIMDALL_GAME_BOOT_MS", default_value_t = 100)]
        boot_ms: u64,
        /// How long the save on shutdown takes, in milliseconds.
        #[arg(long, env = "HEIMDALL_GAME_SAVE_MS", default_value_t = 150)]
        save_ms: u64,
        /// Never save and never exit on SIGTERM (a hung game).
        #[arg(long, env = "HEIMDALL_GAME_HANG")]
        hang: bool,
        /// Load forever: never print that the server is listening.
        #[arg(long, env = "HEIMDALL_GAME_NEVER_READY")]
        never_ready: bool,
    },
    /// Stops the game like `docker stop`: SIGTERM, then SIGKILL after the timeout.
    Stop {
        #[arg(long, env = "HEIMDALL_GAME_PID_FILE")]
        pid_file: PathBuf,
        #[arg(long, env = "HEIMDALL_GAME_STOP_TIMEOUT_SECONDS", default_value_t = 10)]
        timeout_seconds: u64,
    },
}

static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_signal: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Action::Run {
            log,
            pid_file,
            boot_ms,
            save_ms,
            hang,
            never_ready,
        } => run(
            &log,
            &pid_file,
            Duration::from_millis(boot_ms),
            Duration::from_millis(save_ms),
            Behaviour { hang, never_ready },
        ),
        Action::Stop {
            pid_file,
            timeout_seconds,
        } => stop(&pid_file, Duration::from_secs(timeout_seconds)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("heimdall-fake-game: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Appends lines with Docker's timestamps, as `docker logs --timestamps` shows them.
struct ContainerLog(File);

impl ContainerLog {
    fn write(&mut self, line: &str) -> anyhow::Result<()> {
        let stamp = humantime::format_rfc3339_nanos(SystemTime::now());
        writeln!(self.0, "{stamp} {line}")?;
        self.0.flush()?;
        Ok(())
    }
}

/// How this game misbehaves, if it does.
struct Behaviour {
    hang: bool,
    never_ready: bool,
}

fn run(
    log: &Path,
    pid_file: &Path,
    boot: Duration,
    save: Duration,
    behaviour: Behaviour,
) -> anyhow::Result<()> {
    let handler = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
    }
    std::fs::write(pid_file, std::process::id().to_string()).context("pid file")?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("{}", log.display()))?;
    let mut log = ContainerLog(file);
    let (boot_lines, shutdown_lines) = sections();
    let (loading, listening) = boot_lines.split_at(boot_lines.len().saturating_sub(2));
    for line in loading {
        log.write(line)?;
    }
    thread::sleep(boot);
    if !behaviour.never_ready {
        for line in listening {
            log.write(line)?;
        }
    }
    let input = stdin_lines();
    while !TERMINATED.load(Ordering::SeqCst) {
        match input.recv_timeout(Duration::from_millis(10)) {
            Ok(line) => log.write(&line)?,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The sandbox went away: keep running until stopped, like a container.
            Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(Duration::from_millis(10)),
        }
    }
    let (stopping, saved) = shutdown_lines.split_at(1);
    for line in stopping {
        log.write(line)?;
    }
    if behaviour.hang {
        loop {
            thread::sleep(Duration::from_secs(3600));
        }
    }
    thread::sleep(save);
    for line in saved {
        log.write(line)?;
    }
    Ok(())
}

/// The recorded boot (up to "Server is now listening") and shutdown (from "waiting for
/// valheim-server to stop").
fn sections() -> (Vec<&'static str>, Vec<&'static str>) {
    let lines: Vec<&str> = SESSION_LOG.lines().collect();
    let ready = lines
        .iter()
        .position(|l| l.contains("Server is now listening"))
        .map_or(lines.len(), |i| i + 1);
    let shutdown = lines
        .iter()
        .position(|l| l.contains("waiting for valheim-server to stop"))
        .unwrap_or(lines.len());
    (lines[..ready].to_vec(), lines[shutdown..].to_vec())
}

/// Standard input, line by line, from a thread (so that SIGTERM is seen while it is quiet).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

fn stop(pid_file: &Path, timeout: Duration) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(pid_file).context("pid file")?;
    let pid: libc::pid_t = text.trim().parse().context("pid file holds no pid")?;
    let alive = || {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    };
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + timeout;
    while alive() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    if alive() {
        eprintln!("heimdall-fake-game: not stopped after {timeout:?}; killing it");
        // SAFETY: as above.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    Ok(())
}
