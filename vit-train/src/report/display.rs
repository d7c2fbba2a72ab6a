//! Where progress goes: an `indicatif` bar on a terminal, plain log lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress output: a bar (with lines printed above it) or plain lines.
pub enum ProgressDisplay {
    /// Interactive: progress bars on stderr.
    Bar(Option<ProgressBar>),
    /// Plain log lines (stderr unless a test substitutes a buffer).
    Log(Box<dyn Write + Send + Sync>),
}

impl ProgressDisplay {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            ProgressDisplay::Bar(None)
        } else {
            ProgressDisplay::Log(Box::new(std::io::stderr()))
        }
    }

    /// Whether progress is logged as lines (no bar).
    pub fn is_log(&self) -> bool {
        matches!(self, ProgressDisplay::Log(_))
    }

    /// Prints a line (above the bar, if there is one).
    pub fn line(&mut self, text: &str) {
        match self {
            ProgressDisplay::Bar(Some(bar)) => bar.println(text),
            ProgressDisplay::Bar(None) => eprintln!("{text}"),
            ProgressDisplay::Log(out) => {
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// Starts a new bar of `len` steps (a spinner when unknown); nothing in log mode.
    pub fn start_bar(&mut self, prefix: String, len: Option<usize>) {
        let ProgressDisplay::Bar(slot) = self else {
            return;
        };
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let bar = ProgressBar::with_draw_target(len.map(|n| n as u64), ProgressDrawTarget::stderr());
        let template = if len.is_some() {
            "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} [{elapsed_precise}, ETA {eta_precise}]"
        } else {
            "{prefix} {spinner} {pos} {msg} [{elapsed_precise}]"
        };
        let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        bar.set_prefix(prefix);
        *slot = Some(bar);
    }

    /// Moves the bar to `position` with message `message`.
    pub fn update_bar(&mut self, position: usize, message: String) {
        if let ProgressDisplay::Bar(Some(bar)) = self {
            bar.set_position(position as u64);
            bar.set_message(message);
        }
    }

    /// Removes the bar.
    pub fn finish_bar(&mut self) {
        if let ProgressDisplay::Bar(slot) = self
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.finish_bar();
    }
}

/// Images per second, when both are positive.
pub fn rate(images: usize, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (images > 0 && secs > 0.0).then(|| images as f64 / secs)
}

/// "4.5e-4"; "0" for zero.
pub fn format_lr(lr: f64) -> String {
    if lr == 0.0 { "0".to_string() } else { format!("{lr:.1e}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_in_log_lines() {
        assert_eq!(format_lr(4.5e-4), "4.5e-4");
        assert_eq!(format_lr(0.0), "0");
    }
}
