//! Progress bars on stderr, only when stderr is a terminal (indicatif), and the logs of `-v`
//! written around them so that they do not tear the bars. Elsewhere (a pipe, a file, CI) the
//! same calls print plain lines.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The one set of bars of this process (hidden when stderr is not a terminal).
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        MultiProgress::with_draw_target(target)
    })
}

/// True when bars are drawn (stderr is a terminal).
pub(crate) fn drawing() -> bool {
    !multi().is_hidden()
}

/// Prints a line on stderr above the bars (or plainly when there are none).
pub(crate) fn println(line: &str) {
    if drawing() {
        // indicatif prints above the bars and redraws them
        let _ = multi().println(line);
    } else {
        eprintln!("{line}");
    }
}

/// Sets up `-v` logging through tracing on stderr: `-v` info, `-vv` debug, `-vvv` trace (for
/// xapi-rs crates; `RUST_LOG` overrides). Without `-v` only warnings are shown.
pub(crate) fn init_logging(verbosity: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,xapictl={level},xapi_cli={level},xapi_core={level},xapi_dr={level},\
             xapi_backup={level},xapi_sim={level}"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogLine(Vec::new()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbosity >= 2)
        .try_init();
}

/// One log event, written in one piece above the bars when it is dropped.
struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.0);
        multi().suspend(|| {
            let _ = std::io::stderr().write_all(&bytes);
        });
    }
}

/// A byte bar: position, total, rate and ETA.
fn byte_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

/// Bars of a job over many items (VMs): one overall bar and one per item in flight.
pub(crate) struct JobBars {
    overall: ProgressBar,
    items: Mutex<HashMap<String, ProgressBar>>,
}

impl JobBars {
    /// A job of `total` items (`None`: not known yet), with `message` on the overall bar.
    pub(crate) fn new(total: Option<u64>, message: &str) -> JobBars {
        let overall = multi().add(ProgressBar::new(total.unwrap_or(0)));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg} {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix("job");
        overall.set_message(message.to_owned());
        overall.enable_steady_tick(Duration::from_millis(200));
        JobBars {
            overall,
            items: Mutex::new(HashMap::new()),
        }
    }

    /// An item started; `bytes` is its size when known (a byte bar), else a spinner.
    pub(crate) fn start(&self, name: &str, bytes: Option<u64>) {
        let bar = if let Some(len) = bytes {
            let bar = ProgressBar::new(len);
            bar.set_style(byte_style());
            bar
        } else {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{prefix:>8} {spinner} {msg} {elapsed}")
                    .expect("a valid template"),
            );
            bar
        };
        let bar = multi().insert_before(&self.overall, bar);
        bar.set_prefix("");
        bar.set_message(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.lock().insert(name.to_owned(), bar);
    }

    /// Sets the number of items once known.
    pub(crate) fn set_total(&self, total: u64) {
        self.overall.set_length(total);
    }

    /// An item's progress: `done` of `total` bytes, and what it is doing. A spinner becomes a
    /// byte bar once the total is known.
    pub(crate) fn advance(&self, name: &str, done: u64, total: u64, phase: &str) {
        let items = self.lock();
        let Some(bar) = items.get(name) else { return };
        if total > 0 && bar.length() != Some(total) {
            bar.set_length(total);
            bar.set_style(byte_style());
        }
        bar.set_position(done);
        bar.set_prefix(phase.to_lowercase());
    }

    /// An item ended: its bar goes and `line` is printed above the bars.
    pub(crate) fn finish(&self, name: &str, line: &str) {
        if let Some(bar) = self.lock().remove(name) {
            bar.finish_and_clear();
            multi().remove(&bar);
        }
        self.overall.inc(1);
        println(line);
    }

    /// The job ended: every bar goes.
    pub(crate) fn done(&self) {
        for (_, bar) in self.lock().drain() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for JobBars {
    fn drop(&mut self) {
        self.done();
    }
}
