//! The log's writer for the long-running commands (`serve`, `agent`).
//!
//! A line is appended to a bounded buffer in memory, and one thread of its
//! own writes what gathered to the sink (stderr) in batches. So a request
//! never waits on `write(2)`: not on its cost (one system call per decision
//! line was a measurable part of a request, see BENCHMARKS.md) and not on a
//! log reader that stalls (a full pipe to the container runtime would
//! otherwise hold the async workers). When the reader falls so far behind that
//! [`CAPACITY`] bytes wait, further lines are dropped and counted, and the
//! count is written as a line of its own once the sink takes lines again:
//! the log never blocks the webhook and never grows without bound.
//!
//! A line waits at most about [`BATCH_DELAY`] before it is written. Dropping
//! the [`Flusher`] writes what is left (waiting at most [`CLOSE_WAIT`] for a
//! sink that does not take it); a process killed outright loses at most the
//! last batch.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The most bytes that wait for the sink; a line that would go over is dropped.
pub const CAPACITY: usize = 4 << 20;

/// How long the writer thread lets lines gather after the first one.
pub const BATCH_DELAY: Duration = Duration::from_millis(10);

/// How long dropping the [`Flusher`] waits for the last lines to be written.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Lines dropped since the process started, over every writer.
static DROPPED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped so far because the sink did not keep up.
pub fn dropped_total() -> u64 {
    DROPPED_TOTAL.load(Ordering::Relaxed)
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Lines dropped since the last batch.
    dropped: u64,
    closed: bool,
    /// The writer thread has written its last batch.
    done: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when the first bytes arrive, on close and when done.
    signal: Condvar,
}

impl Shared {
    /// The pending lines, even after a thread panicked holding the lock (the
    /// buffer is plain bytes; nothing in it can be half-updated).
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the log layer writes into: cheap to clone, one per thread or event.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Owns the writer thread; dropping it writes the last lines.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `sink` (stderr in the binary). `Err` when
/// the thread cannot be started.
pub fn spawn<W: Write + Send + 'static>(sink: W) -> std::io::Result<(LogWriter, Flusher)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new().name("log-writer".into()).spawn({
        let shared = shared.clone();
        move || write_batches(&shared, sink)
    })?;
    Ok((LogWriter { shared: shared.clone() }, Flusher { shared, thread: Some(thread) }))
}

impl LogWriter {
    /// Queues one line (or any bytes the layer hands over in one call).
    fn queue(&self, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        let mut pending = self.shared.lock();
        if pending.bytes.len().saturating_add(line.len()) > CAPACITY {
            pending.dropped += 1;
            DROPPED_TOTAL.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let was_empty = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(line);
        drop(pending);
        if was_empty {
            self.shared.signal.notify_all();
        }
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.queue(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.queue(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        self.clone()
    }
}

/// The writer thread: waits for lines, lets more gather, writes them in one
/// go; after close, writes what is left and says it is done.
fn write_batches<W: Write>(shared: &Shared, mut sink: W) {
    let mut batch: Vec<u8> = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.bytes.is_empty() && pending.dropped == 0 && !pending.closed {
            pending = shared.signal.wait(pending).unwrap_or_else(|p| p.into_inner());
        }
        if !pending.closed {
            drop(pending);
            std::thread::sleep(BATCH_DELAY);
            pending = shared.lock();
        }
        std::mem::swap(&mut batch, &mut pending.bytes);
        let dropped = std::mem::take(&mut pending.dropped);
        let closed = pending.closed;
        drop(pending);

        // A failed write loses that batch: there is nowhere else to say so.
        let _ = sink.write_all(&batch);
        if dropped > 0 {
            let note = format!(
                "log: {dropped} line(s) dropped: the log reader did not keep up ({CAPACITY} bytes were waiting)\n"
            );
            let _ = sink.write_all(note.as_bytes());
        }
        let _ = sink.flush();
        batch.clear();
        if batch.capacity() > CAPACITY / 4 {
            batch = Vec::new();
        }
        if closed && shared.lock().bytes.is_empty() {
            break;
        }
    }
    shared.lock().done = true;
    shared.signal.notify_all();
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.signal.notify_all();
        let deadline = std::time::Instant::now() + CLOSE_WAIT;
        let mut pending = self.shared.lock();
        while !pending.done {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                // The sink does not take the last lines: leave the thread to it.
                return;
            }
            pending = self.shared.signal.wait_timeout(pending, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        drop(pending);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// A sink whose bytes the test can read, that blocks until released
    /// when `gate` is given.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        gate: Option<Arc<(Mutex<bool>, Condvar)>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = &self.gate {
                let mut open = gate.0.lock().unwrap();
                while !*open {
                    open = gate.1.wait(open).unwrap();
                }
            }
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn open(gate: &Arc<(Mutex<bool>, Condvar)>) {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    #[test]
    fn every_line_reaches_the_sink_in_order_once_the_flusher_is_dropped() {
        let sink = Sink::default();
        let (writer, flusher) = spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        w.write_all(format!("thread {t} line {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(flusher);
        let text = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 8_000);
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..2_000).collect::<Vec<_>>(), "thread {t}: lines lost or out of order");
        }
    }

    #[test]
    fn lines_are_written_without_waiting_for_the_flusher_to_be_dropped() {
        let sink = Sink::default();
        let (mut writer, _flusher) = spawn(sink.clone()).unwrap();
        writer.write_all(b"started\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.bytes.lock().unwrap().as_slice() != b"started\n" {
            assert!(Instant::now() < deadline, "the line was not written within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_stalled_sink_costs_dropped_lines_not_a_blocked_caller_and_the_count_is_written_later() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink { gate: Some(gate.clone()), ..Sink::default() };
        let (writer, flusher) = spawn(sink.clone()).unwrap();
        let line = vec![b'x'; 1023].into_iter().chain([b'\n']).collect::<Vec<u8>>();
        // Three times the capacity, from another thread: it must finish
        // although nothing is written. At most twice the capacity is kept
        // (the batch the stalled thread holds, and the buffer).
        let per_capacity = CAPACITY / line.len();
        let lines = 3 * per_capacity;
        let (done, finished) = mpsc::channel();
        let before = dropped_total();
        std::thread::spawn({
            let mut w = writer.clone();
            let line = line.clone();
            move || {
                for _ in 0..lines {
                    w.write_all(&line).unwrap();
                }
                done.send(()).unwrap();
            }
        });
        finished.recv_timeout(Duration::from_secs(20)).expect("a caller blocked on a stalled sink");
        assert!(dropped_total() - before >= per_capacity as u64, "lines over the capacity are counted");
        open(&gate);
        // Kept lines, and the dropped ones the notes count: a note follows the
        // batch it was taken with, so lines dropped while the thread was stuck
        // in an earlier batch are in a later note.
        let accounted = || {
            let text = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
            let kept = text.lines().filter(|l| l.starts_with('x')).count();
            let notes: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix("log: "))
                .map(|n| n.split(' ').next().unwrap().parse().unwrap())
                .collect();
            (kept, notes)
        };
        // Wait for the thread rather than leave it to the flusher's close,
        // whose deadline a loaded machine can miss with megabytes to write.
        let waited = Instant::now();
        while {
            let (kept, notes) = accounted();
            kept + notes.iter().sum::<usize>() < lines
        } && waited.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(flusher);
        let (kept, notes) = accounted();
        assert!(kept >= per_capacity && kept <= 2 * per_capacity, "kept {kept} lines");
        assert!(!notes.is_empty(), "the dropped lines are reported");
        assert_eq!(kept + notes.iter().sum::<usize>(), lines, "notes {notes:?}");
    }

    #[test]
    fn dropping_the_flusher_gives_up_on_a_sink_that_never_takes_the_lines() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (mut writer, flusher) = spawn(Sink { gate: Some(gate.clone()), ..Sink::default() }).unwrap();
        writer.write_all(b"stuck\n").unwrap();
        let started = Instant::now();
        drop(flusher);
        let took = started.elapsed();
        assert!(took >= CLOSE_WAIT && took < CLOSE_WAIT + Duration::from_secs(5), "took {took:?}");
        open(&gate); // lets the abandoned thread finish
    }
}
