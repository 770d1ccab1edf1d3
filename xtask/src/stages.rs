//! Named, timed stages of a long xtask command: each prints its wall time when it ends, and the
//! command closes with a table of every stage, the total wall time and any notes (a stage turned
//! off by the environment), notes last so that the very last line says what did not run.

use std::time::{Duration, Instant};

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// The stages run so far, with their wall times, and the notes to print at the end.
pub(crate) struct Stages {
    command: &'static str,
    started: Instant,
    done: Vec<(String, Duration, Outcome)>,
    notes: Vec<String>,
}

impl Stages {
    /// Start timing `command` (`cargo xtask test`).
    pub(crate) fn start(command: &'static str) -> Self {
        Self {
            command,
            started: Instant::now(),
            done: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Run one stage, print its wall time, and pass its result on.
    pub(crate) fn run<T>(
        &mut self,
        name: &str,
        stage: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        println!("==> stage {name}");
        let started = Instant::now();
        let result = stage();
        let took = started.elapsed();
        let outcome = if result.is_ok() {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        println!(
            "==> stage {name}: {} in {}",
            describe(outcome),
            format_duration(took)
        );
        self.done.push((name.to_owned(), took, outcome));
        result
    }

    /// Something to say on the very last lines (a stage, or part of one, that was turned off).
    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Record a stage that was turned off, and say why on the very last lines.
    pub(crate) fn skip(&mut self, name: &str, note: String) {
        println!("==> stage {name}: SKIPPED");
        self.done
            .push((name.to_owned(), Duration::ZERO, Outcome::Skipped));
        self.note(note);
    }

    /// Print every stage's wall time, the total, then the notes; pass `result` on (the caller
    /// prints the error).
    pub(crate) fn finish(self, result: Result<(), String>) -> Result<(), String> {
        println!("==> {}: wall time per stage", self.command);
        let width = self
            .done
            .iter()
            .map(|(name, _, _)| name.len())
            .max()
            .unwrap_or(0);
        for (name, took, outcome) in &self.done {
            println!(
                "    {name:<width$}  {:>9}  {}",
                format_duration(*took),
                describe(*outcome)
            );
        }
        let verdict = if result.is_ok() { "passed" } else { "FAILED" };
        println!(
            "==> {} {verdict}: total wall time {}",
            self.command,
            format_duration(self.started.elapsed())
        );
        for note in &self.notes {
            println!("==> NOTE: {note}");
        }
        result
    }
}

fn describe(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "ok",
        Outcome::Failed => "FAILED",
        Outcome::Skipped => "SKIPPED",
    }
}

/// `4.2 s`, `3 min 07 s`, `1 h 02 min`.
pub(crate) fn format_duration(took: Duration) -> String {
    let secs = took.as_secs();
    if secs < 60 {
        format!("{:.1} s", took.as_secs_f64())
    } else if secs < 3600 {
        format!("{} min {:02} s", secs / 60, secs % 60)
    } else {
        format!("{} h {:02} min", secs / 3600, secs % 3600 / 60)
    }
}

/// Whether the environment variable `name` is set to a true value (`1`, `true`, `yes`).
pub(crate) fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(format_duration(Duration::from_millis(4_210)), "4.2 s");
        assert_eq!(format_duration(Duration::from_secs(187)), "3 min 07 s");
        assert_eq!(format_duration(Duration::from_secs(3_725)), "1 h 02 min");
    }

    #[test]
    fn a_failed_stage_is_recorded_and_its_error_passed_on() {
        let mut stages = Stages::start("cargo xtask test");
        assert_eq!(stages.run("one", || Ok(1)), Ok(1));
        assert_eq!(
            stages.run("two", || Err::<(), _>("broken".to_owned())),
            Err("broken".to_owned())
        );
        stages.skip("three", "three is turned off".to_owned());
        let outcomes: Vec<Outcome> = stages.done.iter().map(|d| d.2).collect();
        assert_eq!(
            outcomes,
            [Outcome::Passed, Outcome::Failed, Outcome::Skipped]
        );
        assert_eq!(stages.notes, ["three is turned off"]);
        assert_eq!(
            stages.finish(Err("broken".to_owned())),
            Err("broken".to_owned())
        );
    }
}
