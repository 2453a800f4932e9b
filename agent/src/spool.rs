//! The on-disk spool: every envelope is written here (and synced) before it is sent, and removed
//! once the queue has accepted it, so that no event is lost to a network outage, a crash or a
//! restart. File names sort in the order the events were made.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use heimdall_events::Envelope;

const SUFFIX: &str = ".json";
const PARTIAL_SUFFIX: &str = ".partial";
/// Kept for a person to look at, never sent again: the queue refused it or it does not parse.
const REJECTED_SUFFIX: &str = ".rejected";

/// One envelope waiting in the spool.
#[derive(Debug)]
pub struct Spooled {
    pub path: PathBuf,
    pub envelope: Envelope,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Orders envelopes made within the same millisecond.
    sequence: AtomicU64,
}

impl Spool {
    /// Opens (creating) the spool directory and removes writes that a crash left unfinished.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if has_suffix(&path, PARTIAL_SUFFIX) {
                fs::remove_file(&path)?;
            }
        }
        Ok(Spool {
            dir: dir.to_owned(),
            sequence: AtomicU64::new(0),
        })
    }

    /// Writes the envelope durably: to a partial file, synced, then renamed into place (and the
    /// directory synced), so that a crash leaves either nothing or the whole envelope.
    pub fn write(&self, envelope: &Envelope) -> io::Result<PathBuf> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{:020}-{:010}-{}",
            envelope.sent_at_ms,
            sequence,
            file_safe(&envelope.id)
        );
        let partial = self.dir.join(format!("{name}{PARTIAL_SUFFIX}"));
        let path = self.dir.join(format!("{name}{SUFFIX}"));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)?;
        file.write_all(envelope.to_json().as_bytes())?;
        file.sync_all()?;
        fs::rename(&partial, &path)?;
        sync_dir(&self.dir)?;
        Ok(path)
    }

    /// The paths of the waiting envelopes, oldest first.
    pub fn pending(&self) -> io::Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if has_suffix(&path, SUFFIX) {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths)
    }

    /// The oldest waiting envelope. One that cannot be read as an envelope is set aside.
    pub fn oldest(&self) -> io::Result<Option<Spooled>> {
        for path in self.pending()? {
            let bytes = fs::read(&path)?;
            match Envelope::from_json(&bytes) {
                Ok(envelope) => return Ok(Some(Spooled { path, envelope })),
                Err(error) => {
                    tracing::error!("{} is not an envelope ({error}); set aside", path.display());
                    self.reject(&path)?;
                }
            }
        }
        Ok(None)
    }

    /// The queue has it: forget it.
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)?;
        sync_dir(&self.dir)
    }

    /// Sets a file aside under another suffix, where it is kept but not sent again.
    pub fn reject(&self, path: &Path) -> io::Result<()> {
        let mut rejected = path.as_os_str().to_owned();
        rejected.push(REJECTED_SUFFIX);
        fs::rename(path, rejected)?;
        sync_dir(&self.dir)
    }
}

fn has_suffix(path: &Path, suffix: &str) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.ends_with(suffix))
}

/// Ids are hex here, but an envelope read back from elsewhere must not escape the directory.
fn file_safe(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
