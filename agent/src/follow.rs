//! Following the game log: a file like `tail -F`, or the output of a command such as
//! `docker logs -f --timestamps valheim`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use crate::backoff::{sleep_unless_stopped, Backoff, STOP_CHECK};

/// A longer line is cut here, so that a log without newlines cannot grow memory without bound.
pub const MAX_LINE: usize = 64 * 1024;
/// Bytes read per poll, so that a large backlog does not keep the caller from checking `stop`.
const READ_CHUNK: usize = 64 * 1024;
const MAX_CHUNKS_PER_POLL: usize = 16;

/// Where the log comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// A file, followed by name across rotation and truncation.
    File { path: PathBuf, from_start: bool },
    /// A shell command whose standard output is followed; restarted when it exits.
    Command(String),
}

/// Splits a byte stream into lines; a line longer than [`MAX_LINE`] is cut (the rest is dropped).
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; calls `on_line` for every completed line (without its `\n`).
    pub fn push(&mut self, mut bytes: &[u8], on_line: &mut dyn FnMut(&str)) -> usize {
        let mut count = 0;
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.keep(&bytes[..end]);
            self.emit(on_line);
            count += 1;
            bytes = &bytes[end + 1..];
        }
        self.keep(bytes);
        count
    }

    /// Ends the stream: a last line without a newline is still a line.
    pub fn finish(&mut self, on_line: &mut dyn FnMut(&str)) -> usize {
        if self.partial.is_empty() {
            return 0;
        }
        self.emit(on_line);
        1
    }

    /// Drops a partial line (the file it came from was truncated).
    pub fn clear(&mut self) {
        self.partial.clear();
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self, on_line: &mut dyn FnMut(&str)) {
        on_line(&String::from_utf8_lossy(&self.partial));
        self.partial.clear();
    }
}

/// Follows a log source; [`Follower::poll`] never blocks for long.
pub enum Follower {
    File(FileFollower),
    Command(CommandFollower),
}

impl Follower {
    pub fn open(source: &LogSource) -> Follower {
        match source {
            LogSource::File { path, from_start } => {
                Follower::File(FileFollower::open(path, *from_start))
            }
            LogSource::Command(command) => Follower::Command(CommandFollower::new(command)),
        }
    }

    /// Delivers the lines that arrived since the last call; returns how many.
    pub fn poll(&mut self, on_line: &mut dyn FnMut(&str)) -> usize {
        match self {
            Follower::File(file) => file.poll(on_line),
            Follower::Command(command) => command.poll(on_line),
        }
    }

    /// Counts the streams read so far: a command's output starts again from the beginning of
    /// the log each time the command is started, so its reader must start afresh too.
    pub fn generation(&self) -> u64 {
        match self {
            Follower::File(_) => 0,
            Follower::Command(command) => command.generation,
        }
    }

    /// Whether a poll that delivered nothing means that every line written so far has been
    /// delivered. A command just started may not have printed the log's backlog yet: that
    /// takes its first output, or a quiet second. A command that ended has delivered all it
    /// printed; what is written until it starts again is read from the start then.
    pub fn at_end(&self) -> bool {
        match self {
            Follower::File(_) => true,
            Follower::Command(command) => command
                .running
                .as_ref()
                .is_none_or(|running| running.heard || running.started.elapsed() >= QUIET_START),
        }
    }

    /// Waits up to `delay` (less if `stop` is set) before the next poll. A command's output
    /// ends the wait as soon as it arrives; a file is simply polled again after the delay.
    pub fn wait(&mut self, stop: &AtomicBool, delay: Duration) {
        match self {
            Follower::File(_) => {
                sleep_unless_stopped(stop, delay);
            }
            Follower::Command(command) => command.wait(stop, delay),
        }
    }
}

/// Which file a path names: device and inode, so that a rotated-away file is told apart.
#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

#[cfg(not(unix))]
fn identity(_metadata: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

struct OpenFile {
    file: File,
    identity: (u64, u64),
    /// Bytes consumed so far.
    position: u64,
}

/// `tail -F` for one path: starts at the end (or the beginning), reads what is appended,
/// reopens the path when the file was replaced (rotation) and rereads it when it shrank
/// (truncation, `copytruncate`). A file that does not exist yet is read from its start once it
/// appears.
pub struct FileFollower {
    path: PathBuf,
    open: Option<OpenFile>,
    lines: LineSplitter,
    buffer: Vec<u8>,
    /// Set when the last poll could not open the path, so that the failure is logged once.
    missing_logged: bool,
}

impl FileFollower {
    pub fn open(path: &Path, from_start: bool) -> FileFollower {
        let mut follower = FileFollower {
            path: path.to_owned(),
            open: None,
            lines: LineSplitter::default(),
            buffer: vec![0; READ_CHUNK],
            missing_logged: false,
        };
        follower.reopen(from_start);
        follower
    }

    pub fn poll(&mut self, on_line: &mut dyn FnMut(&str)) -> usize {
        if self.open.is_none() {
            // A file that appears after we started is new: all of it is news.
            self.reopen(true);
        }
        let count = self.read_available(on_line);
        if count == 0 {
            return self.check_replaced(on_line);
        }
        count
    }

    /// Opens the path, at its start or its end.
    fn reopen(&mut self, from_start: bool) {
        match open_at(&self.path, from_start) {
            Ok(open) => {
                self.open = Some(open);
                self.missing_logged = false;
            }
            Err(error) => {
                if !self.missing_logged {
                    tracing::info!("waiting for {}: {error}", self.path.display());
                    self.missing_logged = true;
                }
                self.open = None;
            }
        }
    }

    fn read_available(&mut self, on_line: &mut dyn FnMut(&str)) -> usize {
        let Some(open) = self.open.as_mut() else {
            return 0;
        };
        let mut count = 0;
        for _ in 0..MAX_CHUNKS_PER_POLL {
            match open.file.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(n) => {
                    open.position += n as u64;
                    count += self.lines.push(&self.buffer[..n], on_line);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    tracing::warn!("reading {}: {error}", self.path.display());
                    self.open = None;
                    break;
                }
            }
        }
        count
    }

    /// At the end of what we have: was the file truncated, or the path given to a new file?
    fn check_replaced(&mut self, on_line: &mut dyn FnMut(&str)) -> usize {
        let Some(open) = self.open.as_mut() else {
            return 0;
        };
        let Ok(now) = std::fs::metadata(&self.path) else {
            // Renamed away and not yet recreated: keep the old file until a new one appears.
            return 0;
        };
        if identity(&now) != open.identity {
            // Rotated: the old file is read to its end, so its last unterminated line is done.
            let count = self.lines.finish(on_line);
            self.reopen(true);
            return count + self.read_available(on_line);
        }
        if now.len() < open.position {
            tracing::warn!(
                "{} was truncated; reading it from the start",
                self.path.display()
            );
            self.lines.clear();
            if let Err(error) = open.file.seek(SeekFrom::Start(0)) {
                tracing::warn!("rewinding {}: {error}", self.path.display());
                self.open = None;
                return 0;
            }
            open.position = 0;
            return self.read_available(on_line);
        }
        0
    }
}

fn open_at(path: &Path, from_start: bool) -> io::Result<OpenFile> {
    let mut file = File::open(path)?;
    let metadata = file.metadata()?;
    let position = if from_start {
        0
    } else {
        file.seek(SeekFrom::End(0))?
    };
    Ok(OpenFile {
        file,
        identity: identity(&metadata),
        position,
    })
}

/// Output chunks buffered between the reader thread and [`CommandFollower::poll`] (at most
/// this many times [`READ_CHUNK`] bytes); a full channel makes the reader wait, and the command
/// with it, instead of growing memory.
const COMMAND_BACKLOG: usize = 16;
/// A command that has printed nothing this long after its start has no backlog to print.
const QUIET_START: Duration = Duration::from_secs(1);

/// Runs `sh -c <command>` in its own process group and follows its standard output. When the
/// command ends (the container restarted, say) it is started again after a growing pause.
pub struct CommandFollower {
    command: String,
    running: Option<Running>,
    lines: LineSplitter,
    /// A chunk that [`CommandFollower::wait`] received, delivered by the next poll.
    early: Option<Vec<u8>>,
    restart: Backoff,
    next_start: Instant,
    /// How many times the command was started.
    generation: u64,
}

struct Running {
    child: Child,
    output: Receiver<Vec<u8>>,
    started: Instant,
    /// The command has printed something.
    heard: bool,
}

impl CommandFollower {
    pub fn new(command: &str) -> CommandFollower {
        CommandFollower {
            command: command.to_owned(),
            running: None,
            lines: LineSplitter::default(),
            early: None,
            restart: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            next_start: Instant::now(),
            generation: 0,
        }
    }

    /// A (re)start of the command returns at once, so that the caller sees the new generation
    /// before the first line of the new stream.
    pub fn poll(&mut self, on_line: &mut dyn FnMut(&str)) -> usize {
        if self.running.is_none() && Instant::now() >= self.next_start {
            self.start();
            return 0;
        }
        let Some(running) = self.running.as_mut() else {
            return 0;
        };
        let mut count = match self.early.take() {
            Some(chunk) => {
                running.heard = true;
                self.lines.push(&chunk, on_line)
            }
            None => 0,
        };
        for _ in 0..MAX_CHUNKS_PER_POLL {
            match running.output.try_recv() {
                Ok(chunk) => {
                    running.heard = true;
                    count += self.lines.push(&chunk, on_line);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    count += self.lines.finish(on_line);
                    self.ended();
                    break;
                }
            }
        }
        if count > 0 {
            self.restart.reset();
        }
        count
    }

    /// Waits up to `delay` for output, returning as soon as some arrives (or `stop` is set).
    pub fn wait(&mut self, stop: &AtomicBool, delay: Duration) {
        let Some(running) = self.running.as_ref() else {
            sleep_unless_stopped(stop, delay);
            return;
        };
        let deadline = Instant::now() + delay;
        while !stop.load(Ordering::Relaxed) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match running.output.recv_timeout(left.min(STOP_CHECK)) {
                Ok(chunk) => {
                    self.early = Some(chunk);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                // The next poll sees the end too and plans the restart.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn start(&mut self) {
        match spawn(&self.command) {
            Ok(running) => {
                tracing::info!(command = self.command, "following the log");
                self.running = Some(running);
                self.generation += 1;
            }
            Err(error) => {
                tracing::error!("cannot start the log command: {error}");
                self.next_start = Instant::now() + self.restart.next_delay();
            }
        }
    }

    /// The output closed: collect the exit status and plan the restart.
    fn ended(&mut self) {
        if let Some(mut running) = self.running.take() {
            let status = running.child.wait();
            tracing::info!("the log command ended ({status:?}); it starts again");
        }
        self.next_start = Instant::now() + self.restart.next_delay();
    }
}

impl Drop for CommandFollower {
    fn drop(&mut self) {
        if let Some(mut running) = self.running.take() {
            terminate_group(&running.child);
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

fn spawn(command: &str) -> io::Result<Running> {
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    #[cfg(unix)]
    {
        // Its own group, so that stopping reaches the whole pipeline, not only `sh`.
        use std::os::unix::process::CommandExt;
        shell.process_group(0);
    }
    let mut child = shell.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("command has no standard output"))?;
    let (sender, output) = mpsc::sync_channel(COMMAND_BACKLOG);
    thread::Builder::new()
        .name("log-command".into())
        .spawn(move || forward_output(stdout, sender))?;
    Ok(Running {
        child,
        output,
        started: Instant::now(),
        heard: false,
    })
}

/// The reader thread: forwards raw output chunks (lines are split on the polling side); ends
/// when the command's output closes or nobody listens any more.
fn forward_output(mut output: impl Read, sender: SyncSender<Vec<u8>>) {
    let mut buffer = vec![0; READ_CHUNK];
    loop {
        match output.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                if sender.send(buffer[..n].to_vec()).is_err() {
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// Asks the command's whole process group (our child and what it started) to end.
#[cfg(unix)]
pub(crate) fn terminate_group(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) has no memory effects; the negative pid names the group that `spawn`
        // created for this child alone.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn terminate_group(_child: &Child) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut |line| lines.push(line.to_owned()));
        }
        splitter.finish(&mut |line| lines.push(line.to_owned()));
        lines
    }

    #[test]
    fn splits_across_chunks_and_keeps_the_last_line() {
        assert_eq!(split(&[b"a\nb", b"c\n\nd"]), vec!["a", "bc", "", "d"]);
    }

    #[test]
    fn cuts_overlong_lines_and_survives_bad_utf8() {
        let long = vec![b'x'; MAX_LINE * 3];
        let lines = split(&[&long, b"\n\xff\xfeok\n"]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert!(lines[1].ends_with("ok"));
    }

    #[test]
    fn a_command_is_at_its_end_once_it_printed_stayed_quiet_or_ended() {
        let mut lines = Vec::new();
        let never = AtomicBool::new(false);
        let mut poll = |follower: &mut Follower| {
            follower.poll(&mut |line| lines.push(line.to_owned()));
            follower.wait(&never, Duration::from_millis(50));
        };
        let printing = "sleep 0.3; echo backlog; sleep 30";
        let mut printing = Follower::open(&LogSource::Command(printing.into()));
        poll(&mut printing);
        assert!(!printing.at_end(), "started, nothing printed yet");
        for _ in 0..100 {
            poll(&mut printing);
            if printing.at_end() {
                break;
            }
        }
        assert!(printing.at_end(), "its backlog has come");

        let mut quiet = Follower::open(&LogSource::Command("sleep 30".into()));
        poll(&mut quiet);
        assert!(!quiet.at_end());
        thread::sleep(QUIET_START);
        assert!(quiet.at_end(), "a second without output");

        let mut ended = Follower::open(&LogSource::Command("sleep 0.2".into()));
        poll(&mut ended);
        for _ in 0..100 {
            poll(&mut ended);
            if matches!(&ended, Follower::Command(command) if command.running.is_none()) {
                break;
            }
        }
        assert!(ended.at_end(), "an ended command delivered all it printed");
        drop((printing, quiet, ended));
        assert_eq!(lines, vec!["backlog"]);
    }
}
