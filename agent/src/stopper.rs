//! Stopping the game gracefully: Valheim writes the world on SIGTERM, if it is given the time.
//! The stop command (`docker stop valheim`: SIGTERM, then up to the container's stop timeout) is
//! run once at a time; a second caller (an eviction while a /stop is saving) waits for the stop
//! in progress and shares its outcome.
//!
//! "Saved" means a save line written after the stop began. The reader may still be working
//! through older lines when a stop comes (an agent that restarted rereads the log), so the stop
//! first waits for the reader to reach the end of the log, and counts only saves read after
//! that.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::backoff::STOP_CHECK;

/// After the stop command returns, how long the log may take to show the save (it is read by
/// another thread, from `docker logs -f`).
const SAVE_GRACE: Duration = Duration::from_secs(3);
/// How long a stop waits for the reader to work through the log's backlog before it stops the
/// game anyway (a reader that is not following yet, still waiting for the metadata service).
const CATCH_UP: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// The log showed a world save after the stop began.
    pub saved: bool,
    pub duration: Duration,
}

pub struct GameStopper {
    command: String,
    timeout: Duration,
    /// World saves seen in the log so far (the log reader counts them).
    saves: AtomicU64,
    /// Polls that found the log read to its end (the log reader counts them).
    reads_to_end: AtomicU64,
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    busy: bool,
    last: Option<StopReport>,
}

impl GameStopper {
    pub fn new(command: &str, timeout: Duration) -> GameStopper {
        GameStopper {
            command: command.to_owned(),
            timeout,
            saves: AtomicU64::new(0),
            reads_to_end: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    /// The log reader saw a world save.
    pub fn saw_save(&self) {
        self.saves.fetch_add(1, Ordering::SeqCst);
    }

    /// The log reader found nothing new: every line written before now has been read.
    pub fn read_to_end(&self) {
        self.reads_to_end.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops the game and waits for its save; `stop` cuts the waiting short.
    pub fn stop(&self, stop: &AtomicBool) -> StopReport {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.busy {
            while state.busy {
                state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if let Some(report) = state.last {
                return report;
            }
        }
        state.busy = true;
        drop(state);
        let report = self.run(stop);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.busy = false;
        state.last = Some(report);
        self.done.notify_all();
        report
    }

    fn run(&self, stop: &AtomicBool) -> StopReport {
        let started = Instant::now();
        let saves_before = self.saves_once_caught_up(stop);
        tracing::info!(command = self.command, "stopping the game");
        match spawn(&self.command) {
            Ok(child) => self.wait_for_exit(child, started, stop),
            Err(error) => tracing::error!("cannot run the stop command: {error}"),
        }
        let saved = || self.saves.load(Ordering::SeqCst) > saves_before;
        let grace_end = Instant::now() + SAVE_GRACE;
        while !saved() && Instant::now() < grace_end && !stop.load(Ordering::Relaxed) {
            thread::sleep(POLL);
        }
        let report = StopReport {
            saved: saved(),
            duration: started.elapsed(),
        };
        tracing::info!(
            saved = report.saved,
            ms = report.duration.as_millis() as u64,
            "the game stopped"
        );
        report
    }

    /// The saves counted once the reader has read what the log held when the stop began, so
    /// that a save from the backlog is not taken for the stop's.
    fn saves_once_caught_up(&self, stop: &AtomicBool) -> u64 {
        let mark = self.reads_to_end.load(Ordering::SeqCst);
        let deadline = Instant::now() + CATCH_UP;
        let behind = || self.reads_to_end.load(Ordering::SeqCst) == mark;
        while behind() && Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            thread::sleep(POLL);
        }
        if behind() {
            tracing::warn!("the log reader has not caught up within {CATCH_UP:?}; stopping anyway");
        }
        self.saves.load(Ordering::SeqCst)
    }

    fn wait_for_exit(&self, mut child: Child, started: Instant, stop: &AtomicBool) {
        let deadline = started + self.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        tracing::warn!("the stop command ended with {status}");
                    }
                    return;
                }
                Ok(None) if Instant::now() >= deadline || stop.load(Ordering::Relaxed) => {
                    tracing::error!(
                        "the stop command did not finish within {:?}; given up",
                        self.timeout
                    );
                    crate::follow::terminate_group(&child);
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                Ok(None) => thread::sleep(POLL.min(STOP_CHECK)),
                Err(error) => {
                    tracing::error!("waiting for the stop command: {error}");
                    return;
                }
            }
        }
    }
}

fn spawn(command: &str) -> std::io::Result<Child> {
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    #[cfg(unix)]
    {
        // Its own group, so that giving up reaches whatever the command started.
        use std::os::unix::process::CommandExt;
        shell.process_group(0);
    }
    shell.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Stands for the log reader: reaches the end of the log every 10 ms, after `backlog`.
    struct Reader {
        done: Arc<AtomicBool>,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl Reader {
        fn start(stopper: &Arc<GameStopper>, backlog: Duration) -> Reader {
            let done = Arc::new(AtomicBool::new(false));
            let thread = thread::spawn({
                let (stopper, done) = (stopper.clone(), done.clone());
                move || {
                    thread::sleep(backlog);
                    while !done.load(Ordering::SeqCst) {
                        stopper.read_to_end();
                        thread::sleep(Duration::from_millis(10));
                    }
                }
            });
            Reader {
                done,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Reader {
        fn drop(&mut self) {
            self.done.store(true, Ordering::SeqCst);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn stopper(command: &str, timeout: Duration) -> Arc<GameStopper> {
        Arc::new(GameStopper::new(command, timeout))
    }

    #[test]
    fn a_save_seen_during_the_stop_counts() {
        let stopper = stopper("sleep 0.1", Duration::from_secs(5));
        let _reader = Reader::start(&stopper, Duration::ZERO);
        let seen = stopper.clone();
        let saver = thread::spawn(move || {
            thread::sleep(Duration::from_millis(80));
            seen.saw_save();
        });
        let report = stopper.stop(&AtomicBool::new(false));
        saver.join().unwrap();
        assert!(report.saved);
        assert!(report.duration < Duration::from_secs(2));
    }

    #[test]
    fn a_save_from_the_backlog_is_not_the_stops() {
        let stopper = stopper("true", Duration::from_secs(5));
        // The reader works through older lines for 300 ms; one of them is a save.
        let _reader = Reader::start(&stopper, Duration::from_millis(300));
        let seen = stopper.clone();
        let backlog = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            seen.saw_save();
        });
        let report = stopper.stop(&AtomicBool::new(false));
        backlog.join().unwrap();
        assert!(!report.saved);
    }

    #[test]
    fn no_save_waits_out_the_grace_and_says_so() {
        let stopper = stopper("true", Duration::from_secs(5));
        let _reader = Reader::start(&stopper, Duration::ZERO);
        let report = stopper.stop(&AtomicBool::new(false));
        assert!(!report.saved);
        assert!(report.duration >= SAVE_GRACE);
    }

    #[test]
    fn a_reader_that_never_catches_up_delays_the_stop_only_so_long() {
        let stopper = stopper("true", Duration::from_secs(5));
        let report = stopper.stop(&AtomicBool::new(false));
        assert!(!report.saved);
        assert!(report.duration >= CATCH_UP + SAVE_GRACE);
        assert!(
            report.duration < CATCH_UP + SAVE_GRACE + Duration::from_secs(2),
            "{report:?}"
        );
    }

    #[test]
    fn a_hung_stop_is_given_up_at_the_timeout() {
        let stopper = stopper("sleep 30", Duration::from_millis(200));
        let _reader = Reader::start(&stopper, Duration::ZERO);
        let started = Instant::now();
        let report = stopper.stop(&AtomicBool::new(false));
        assert!(!report.saved);
        assert!(started.elapsed() < SAVE_GRACE + Duration::from_secs(3));
    }

    #[test]
    fn a_second_caller_shares_the_stop_in_progress() {
        let dir = std::env::temp_dir().join(format!("heimdall-stopper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stops = dir.join("stops");
        let stopper = stopper(
            &format!("sleep 0.3; echo once >> '{}'", stops.display()),
            Duration::from_secs(5),
        );
        let _reader = Reader::start(&stopper, Duration::ZERO);
        let other = stopper.clone();
        let second = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            other.stop(&AtomicBool::new(false))
        });
        let first = stopper.stop(&AtomicBool::new(false));
        assert_eq!(second.join().unwrap(), first);
        let runs = std::fs::read_to_string(&stops).unwrap();
        assert_eq!(runs.lines().count(), 1, "the command ran once");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
