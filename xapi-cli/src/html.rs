//! `--html FILE`: one self-contained page (inline SVG and CSS, nothing fetched) showing a plan:
//! the recovery timeline (standalone VMs, then each vApp's order groups, with their start
//! delays on a time axis), the newest-wins decisions, and the pre-checks; for the demo also
//! the backups (per VM: bytes read, bytes new in the repository, throughput) as bars.

use std::fmt::Write as _;

use xapi_dr::plan::{Plan, Severity, StartStep};
use xapi_dr::reconcile::Reconciliation;

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One bar of the timeline: a VM starting at `at` seconds, waiting `delay` after it.
struct Bar {
    label: String,
    at: i64,
    delay: i64,
}

/// The start sequence on a time axis, as xapi runs it: a standalone VM's `start_delay` before
/// the next step; a vApp's order groups one after another, each as long as its longest delay.
fn timeline(plan: &Plan) -> Vec<Bar> {
    let mut bars = Vec::new();
    let mut now = 0;
    for step in &plan.start {
        match step {
            StartStep::Vm {
                name_label,
                start_delay,
                ..
            } => {
                bars.push(Bar {
                    label: name_label.clone(),
                    at: now,
                    delay: *start_delay,
                });
                now += start_delay;
            }
            StartStep::Vapp {
                name_label, groups, ..
            } => {
                for (order, vms) in groups {
                    let longest = vms.iter().map(|(_, d)| *d).max().unwrap_or(0);
                    for (uuid, delay) in vms {
                        let name = plan
                            .vms
                            .iter()
                            .find(|vm| vm.uuid == *uuid)
                            .map_or(uuid.as_str(), |vm| vm.name_label.as_str());
                        bars.push(Bar {
                            label: format!("{name_label} / {name} (order {order})"),
                            at: now,
                            delay: *delay,
                        });
                    }
                    now += longest;
                }
            }
        }
    }
    bars
}

fn svg(bars: &[Bar]) -> String {
    const ROW: i64 = 22;
    const LEFT: i64 = 330;
    const WIDTH: i64 = 560;
    let end = bars
        .iter()
        .map(|b| b.at + b.delay)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |seconds: i64| LEFT + seconds * WIDTH / end;
    let height = ROW * i64::try_from(bars.len()).unwrap_or(0) + 40;
    let mut out = format!(
        "<svg width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"recovery timeline\">",
        LEFT + WIDTH + 40
    );
    for (row, bar) in (0_i64..).zip(bars) {
        let y = 10 + row * ROW;
        let x = scale(bar.at);
        let w = (scale(bar.at + bar.delay) - x).max(3);
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"label\">{}</text><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"14\" class=\"bar\"><title>starts at {} s, waits {} s</title></rect>",
            LEFT - 8,
            y + 11,
            esc(&bar.label),
            bar.at,
            bar.delay
        );
    }
    let axis = 10 + ROW * i64::try_from(bars.len()).unwrap_or(0) + 14;
    let _ = write!(
        out,
        "<text x=\"{LEFT}\" y=\"{axis}\" class=\"axis\">0 s</text><text x=\"{}\" y=\"{axis}\" class=\"axis end\">{end} s</text></svg>",
        LEFT + WIDTH
    );
    out
}

const STYLE: &str = "<style>\
     body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
     table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
     .bar{fill:#3b7dd8}.new{fill:#e07b39}.label{font-size:12px;text-anchor:end}.axis{font-size:11px;fill:#666}.end{text-anchor:end}\
     .problem{color:#b00020}.warning{color:#a66300}</style>";

fn head(title: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>{STYLE}</head><body>",
        esc(title)
    )
}

/// The page for `plan` and the `reconciliation` it was made from.
pub(crate) fn plan_page(plan: &Plan, reconciliation: &Reconciliation) -> String {
    let mut page = head("xapi-dr plan");
    page.push_str(&plan_sections(plan, reconciliation));
    page.push_str("</body></html>\n");
    page
}

/// One VM of a backup job, for the bars.
pub(crate) struct BackupBar<'a> {
    /// The VM's name.
    pub(crate) name: &'a str,
    /// Disk bytes read from the export (non-zero chunks).
    pub(crate) read: u64,
    /// Bytes new in the repository (after deduplication and compression).
    pub(crate) new: u64,
    /// How long it took.
    pub(crate) seconds: f64,
}

/// The demo's page: the backups, then the failover's plan.
pub(crate) fn demo_page(
    backups: &[BackupBar<'_>],
    plan: &Plan,
    reconciliation: &Reconciliation,
) -> String {
    let mut page = head("xapictl demo");
    page.push_str("<h1>xapictl demo</h1>");
    page.push_str(&backup_section(backups));
    page.push_str(&plan_sections(plan, reconciliation));
    page.push_str("</body></html>\n");
    page
}

/// Per VM: read (blue) and new in the repository (orange) on one scale, and the throughput.
fn backup_section(backups: &[BackupBar<'_>]) -> String {
    const ROW: u64 = 22;
    const LEFT: u64 = 180;
    const WIDTH: u64 = 520;
    let read: u64 = backups.iter().map(|b| b.read).sum();
    let new: u64 = backups.iter().map(|b| b.new).sum();
    let mut out = format!(
        "<h2>Backups</h2><p>{} VMs: {} read, {} new in the repository (deduplication and \
         compression: {:.1}&times;). Blue: read from the export; orange: stored.</p>",
        backups.len(),
        human(read),
        human(new),
        ratio(read, new)
    );
    let widest = backups
        .iter()
        .map(|b| b.read.max(b.new))
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = u64::try_from(backups.len()).unwrap_or(0);
    let _ = write!(
        out,
        "<svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"backups\">",
        LEFT + WIDTH + 200,
        ROW * rows + 20
    );
    for (row, bar) in (0_u64..).zip(backups) {
        let y = 6 + row * ROW;
        let w_read = (bar.read * WIDTH / widest).max(1);
        let w_new = (bar.new * WIDTH / widest).max(1);
        let rate = mib_per_second(bar.read, bar.seconds);
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"label\">{}</text>\
             <rect x=\"{LEFT}\" y=\"{y}\" width=\"{w_read}\" height=\"8\" class=\"bar\"><title>{} read</title></rect>\
             <rect x=\"{LEFT}\" y=\"{}\" width=\"{w_new}\" height=\"8\" class=\"new\"><title>{} new</title></rect>\
             <text x=\"{}\" y=\"{}\" class=\"axis\">{} read, {} new, {rate:.0} MiB/s</text>",
            LEFT - 8,
            y + 12,
            esc(bar.name),
            human(bar.read),
            y + 9,
            human(bar.new),
            LEFT + WIDTH + 8,
            y + 12,
            human(bar.read),
            human(bar.new),
        );
    }
    out.push_str("</svg>");
    out
}

fn human(bytes: u64) -> String {
    crate::output::human_bytes(i64::try_from(bytes).unwrap_or(i64::MAX))
}

#[allow(clippy::cast_precision_loss)] // display only
fn ratio(read: u64, new: u64) -> f64 {
    if new == 0 {
        0.0
    } else {
        read as f64 / new as f64
    }
}

#[allow(clippy::cast_precision_loss)] // display only
fn mib_per_second(bytes: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        0.0
    } else {
        bytes as f64 / (1024.0 * 1024.0) / seconds
    }
}

/// The plan's timeline, decisions and pre-checks.
fn plan_sections(plan: &Plan, reconciliation: &Reconciliation) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<h1>{:?} into pool {}</h1><p>{} vApp(s), {} VM(s), {} SR(s) to introduce{}</p>",
        plan.mode,
        esc(&plan.target_pool),
        plan.vapps.len(),
        plan.vms.len(),
        plan.srs_to_introduce.len(),
        if plan.is_blocked() {
            " &mdash; <strong class=\"problem\">blocked</strong>"
        } else {
            ""
        }
    );
    page.push_str("<h2>Start timeline</h2><p>xapi sleeps each start delay inside the start call; a vApp's order groups run one after another.</p>");
    page.push_str(&svg(&timeline(plan)));
    page.push_str("<h2>Newest wins</h2><table><tr><th>VM</th><th>outcome</th><th>chosen copy</th><th>why</th></tr>");
    for vm in &reconciliation.vms {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>",
            esc(&vm.name_label),
            vm.outcome,
            vm.chosen.as_ref().map_or_else(
                || "-".to_owned(),
                |c| esc(&format!(
                    "pool {} gen {} ({})",
                    c.pool_uuid, c.generation, c.origin
                ))
            ),
            vm.reasons
                .iter()
                .map(|r| esc(&r.message))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    page.push_str("</table><h2>Pre-checks</h2><table><tr><th>severity</th><th>check</th><th>finding</th><th>fix</th></tr>");
    for check in &plan.checks {
        let class = match check.severity {
            Severity::Problem => "problem",
            Severity::Warning => "warning",
            Severity::Passed => "",
        };
        let _ = write!(
            page,
            "<tr class=\"{class}\"><td>{:?}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>",
            check.severity,
            check.kind,
            esc(&check.message),
            check
                .fix
                .as_ref()
                .map(|f| esc(&format!("{f:?}")))
                .unwrap_or_default()
        );
    }
    page.push_str("</table>");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_bars_say_what_was_read_and_stored() {
        let section = backup_section(&[
            BackupBar {
                name: "web <1>",
                read: 8 << 20,
                new: 2 << 20,
                seconds: 2.0,
            },
            BackupBar {
                name: "db",
                read: 4 << 20,
                new: 0,
                seconds: 1.0,
            },
        ]);
        assert!(
            section.contains("2 VMs: 12 MiB read, 2 MiB new"),
            "{section}"
        );
        assert!(section.contains("6.0&times;"), "{section}");
        assert!(section.contains("web &lt;1&gt;"), "{section}");
        assert!(section.contains("4 MiB/s"), "{section}");
        assert_eq!(section.matches("class=\"new\"").count(), 2);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
