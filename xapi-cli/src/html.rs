//! `--html FILE`: one self-contained page (inline SVG and CSS, nothing fetched) showing a plan:
//! the recovery timeline (standalone VMs, then each vApp's order groups, with their start
//! delays on a time axis), the newest-wins decisions, and the pre-checks.

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

/// The page for `plan` and the `reconciliation` it was made from.
pub(crate) fn plan_page(plan: &Plan, reconciliation: &Reconciliation) -> String {
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>xapi-dr plan</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
         .bar{fill:#3b7dd8}.label{font-size:12px;text-anchor:end}.axis{font-size:11px;fill:#666}.end{text-anchor:end}\
         .problem{color:#b00020}.warning{color:#a66300}</style></head><body>",
    );
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
    page.push_str("</table></body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
