//! Where a line stands in the game log, and where the agent got to.
//!
//! `docker logs --timestamps` starts every line with the time Docker received it (RFC 3339, UTC,
//! nanoseconds). That time, plus the line's number among lines with the same time, is the line's
//! place in the log: the same on every read of the same container's log, and newer in every new
//! game run. Event ids are made of it, so a line read twice (the agent restarted, `docker logs`
//! was started again) yields the same ids and the app drops the repeats; and the last place that
//! produced events is kept on disk, so a restarted agent rereads the log to rebuild what the
//! parser knows (who is online, the world's name) but sends only what is new.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// A line's place: Docker's timestamp in nanoseconds since the Unix epoch (0 for a log without
/// timestamps) and its number among the lines with that timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinePosition {
    pub timestamp_ns: u64,
    pub ordinal: u64,
}

impl LinePosition {
    /// The id of the `index`-th event of the line at this place.
    pub fn event_id(&self, index: usize) -> String {
        format!("log-{}-{}-{index}", self.timestamp_ns, self.ordinal)
    }
}

/// Gives each line of one read of the log its place, and strips Docker's timestamp from it.
/// A line without a timestamp takes the previous line's, with the next ordinal.
#[derive(Debug, Default)]
pub struct Stamper {
    last: Option<LinePosition>,
}

impl Stamper {
    pub fn stamp<'a>(&mut self, line: &'a str) -> (LinePosition, &'a str) {
        let (timestamp, text) = match split_timestamp(line) {
            Some((ns, text)) => (Some(ns), text),
            None => (None, line),
        };
        let position = match (self.last, timestamp) {
            (Some(last), Some(ns)) if ns == last.timestamp_ns => LinePosition {
                timestamp_ns: ns,
                ordinal: last.ordinal + 1,
            },
            (_, Some(ns)) => LinePosition {
                timestamp_ns: ns,
                ordinal: 0,
            },
            (Some(last), None) => LinePosition {
                ordinal: last.ordinal + 1,
                ..last
            },
            (None, None) => LinePosition::default(),
        };
        self.last = Some(position);
        (position, text)
    }
}

/// `2026-11-20T19:58:02.123456789Z rest` → (nanoseconds, `rest`). Anything else: `None`.
pub fn split_timestamp(line: &str) -> Option<(u64, &str)> {
    let (stamp, rest) = line.split_once(' ')?;
    // Cheap shape check first: nearly every line of a log without timestamps fails here.
    if stamp.len() < 20 || stamp.as_bytes()[4] != b'-' || stamp.as_bytes()[10] != b'T' {
        return None;
    }
    let at = humantime::parse_rfc3339(stamp).ok()?;
    let ns = at.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((u64::try_from(ns).ok()?, rest))
}

/// The last place that produced events, kept in a small file.
#[derive(Debug)]
pub struct PositionFile {
    path: PathBuf,
}

impl PositionFile {
    pub fn new(dir: &Path) -> PositionFile {
        PositionFile {
            path: dir.join("log-position"),
        }
    }

    /// What was saved; `None` when nothing was (or the file does not read as a position).
    pub fn load(&self) -> Option<LinePosition> {
        let text = fs::read_to_string(&self.path).ok()?;
        let (timestamp, ordinal) = text.trim().split_once(' ')?;
        Some(LinePosition {
            timestamp_ns: timestamp.parse().ok()?,
            ordinal: ordinal.parse().ok()?,
        })
    }

    /// Saves durably: written beside, synced, renamed into place.
    pub fn save(&self, position: LinePosition) -> io::Result<()> {
        let partial = self.path.with_extension("partial");
        let mut file = fs::File::create(&partial)?;
        writeln!(file, "{} {}", position.timestamp_ns, position.ordinal)?;
        file.sync_all()?;
        fs::rename(&partial, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dockers_timestamps() {
        let (ns, rest) =
            split_timestamp("2026-11-20T19:58:02.123456789Z Nov 20 19:58:02 supervisord: INFO x")
                .unwrap();
        assert_eq!(ns, 1_795_204_682_123_456_789);
        assert_eq!(rest, "Nov 20 19:58:02 supervisord: INFO x");
        assert!(split_timestamp("Nov 20 19:58:02 supervisord: INFO x").is_none());
        assert!(split_timestamp("2026-11-20T99:58:02Z bad hour").is_none());
        assert!(split_timestamp("").is_none());
    }

    #[test]
    fn numbers_lines_that_share_a_time_or_have_none() {
        let mut stamper = Stamper::default();
        let places: Vec<(u64, u64)> = [
            "plain",
            "2026-11-20T19:58:02.000000001Z a",
            "2026-11-20T19:58:02.000000001Z b",
            "continuation without a stamp",
            "2026-11-20T19:58:02.000000002Z c",
        ]
        .iter()
        .map(|line| {
            let (p, _) = stamper.stamp(line);
            (p.timestamp_ns % 1000, p.ordinal)
        })
        .collect();
        assert_eq!(places, vec![(0, 0), (1, 0), (1, 1), (1, 2), (2, 0)]);
    }

    #[test]
    fn ids_are_the_same_on_every_read() {
        let log = "2026-11-20T19:58:02.5Z x\n2026-11-20T19:58:03Z y";
        let read = || {
            let mut stamper = Stamper::default();
            log.lines()
                .map(|l| stamper.stamp(l).0.event_id(0))
                .collect::<Vec<_>>()
        };
        assert_eq!(read(), read());
        assert_eq!(read()[0], "log-1795204682500000000-0-0");
    }

    #[test]
    fn the_position_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("heimdall-position-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = PositionFile::new(&dir);
        assert_eq!(file.load(), None);
        let at = LinePosition {
            timestamp_ns: 17,
            ordinal: 2,
        };
        file.save(at).unwrap();
        assert_eq!(PositionFile::new(&dir).load(), Some(at));
        fs::write(dir.join("log-position"), "garbage").unwrap();
        assert_eq!(file.load(), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
