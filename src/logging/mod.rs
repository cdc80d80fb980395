//! The log: `tracing` events written to stderr as text lines or JSON objects.
//!
//! - [`writer`]: the long-running commands (`serve`, `agent`) hand lines to a
//!   bounded buffer that a thread of its own writes, so no request waits on a
//!   write or on a stalled log reader;
//! - [`text`]: the text line, written directly (the general format's layout,
//!   at a fraction of its cost).

pub mod text;
pub mod writer;

pub use writer::{dropped_total, Flusher, LogWriter};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line of text per event (`key=value` fields).
    Text,
    /// One JSON object per line, the fields at the top level.
    Json,
}

/// Installs the log for the process: events passing `filter` (an `EnvFilter`
/// directive such as `info` or `sysbox_ro_webhook=debug`; an invalid one is
/// said on stderr and `info` used) go to stderr in `format`, with colours
/// when stderr is a terminal. With `batched`, lines go through [`writer`], and
/// the returned [`Flusher`] writes the last of them when dropped.
pub fn init(format: Format, filter: &str, batched: bool) -> Option<Flusher> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("invalid --log filter {filter:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, flusher) = if batched {
        match writer::spawn(std::io::stderr()) {
            Ok((writer, flusher)) => (Some(writer), Some(flusher)),
            Err(e) => {
                eprintln!("cannot start the log writer thread ({e}); writing the log directly");
                (None, None)
            }
        }
    } else {
        (None, None)
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    // Each arm is its own subscriber type; the writer is either the batched
    // one or stderr itself.
    match (format, writer) {
        (Format::Json, Some(w)) => builder.with_writer(w).json().flatten_event(true).init(),
        (Format::Json, None) => builder.with_writer(std::io::stderr).json().flatten_event(true).init(),
        (Format::Text, Some(w)) if !ansi => builder.with_writer(w).event_format(text::TextLine::default()).init(),
        (Format::Text, Some(w)) => builder.with_writer(w).init(),
        (Format::Text, None) if !ansi => {
            builder.with_writer(std::io::stderr).event_format(text::TextLine::default()).init()
        }
        (Format::Text, None) => builder.with_writer(std::io::stderr).init(),
    }
    flusher
}
