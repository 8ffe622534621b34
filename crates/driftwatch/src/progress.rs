//! One status line on stderr for long commands, redrawn in place, only when stderr is a
//! terminal: scripts and logs see nothing. (`diff` and `capture` draw theirs from the
//! differ's callback in driftwatch-evidence; this is for the CLI's own loops.)

use std::io::{IsTerminal, Write};

pub struct Progress {
    enabled: bool,
    drawn: bool,
}

impl Progress {
    /// Draws only when stderr is a terminal.
    pub fn stderr() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Replaces the status line with `line`.
    pub fn show(&mut self, line: &str) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    /// Erases the status line (before printing results).
    pub fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
