//! What a slow step is doing, on stderr while it runs. Only on a terminal: scripts and tests get
//! the results alone.

use std::io::{IsTerminal, Write};

pub struct Progress {
    terminal: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Shows `what` on the status line, replacing what was there.
    pub fn step(&self, what: &str) {
        if self.terminal {
            let mut stderr = std::io::stderr().lock();
            // Progress is a courtesy: a closed stderr must not stop the work.
            let _ = write!(stderr, "\r\x1b[2K… {what}");
            let _ = stderr.flush();
        }
    }

    /// Clears the status line before a result is printed.
    pub fn clear(&self) {
        if self.terminal {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
        }
    }
}
