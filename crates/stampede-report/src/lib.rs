//! Reports of a run: the table printed at the end of `run` and `quick`, a robustness
//! step's figures ([`render_robustness`]), and [`junit`] XML for CI systems.

pub mod junit;
mod robustness;

pub use robustness::render_robustness;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use stampede_api::{LatencyStats, Status, Summary};

/// The end-of-run summary of one step as text: counts, rates, the three latency views and
/// the thresholds.
pub fn render(title: &str, summary: &Summary) -> String {
    let r = &summary.requests;
    let mut out = String::new();
    let verdict = match summary.status {
        Status::Passed => "PASSED",
        Status::Failed => "FAILED",
    };
    out.push_str(&format!("\n{title} — {verdict}\n"));
    for reason in &summary.reasons {
        out.push_str(&format!("  ✗ {reason}\n"));
    }
    let target = summary
        .rate
        .target
        .map_or("closed model".to_string(), |t| format!("{t:.1}/s"));
    out.push_str(&format!(
        "  duration {:.2}s   requests {}   ok {}   failed {}   dropped {}   interrupted {}\n",
        summary.duration_s, r.total, r.ok, r.failed, r.dropped, r.interrupted
    ));
    out.push_str(&format!(
        "  rate {:.1}/s achieved (target {target})\n",
        summary.rate.achieved
    ));
    if !summary.failures.is_empty() {
        let failures: Vec<String> = summary
            .failures
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        out.push_str(&format!("  failures  {}\n", failures.join(", ")));
    }
    if !summary.dropped.is_empty() {
        let dropped: Vec<String> = summary
            .dropped
            .iter()
            .map(|(why, n)| format!("{why}: {n}"))
            .collect();
        out.push_str(&format!("  dropped   {}\n", dropped.join(", ")));
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(vec![
        "latency (ms)",
        "min",
        "mean",
        "p50",
        "p90",
        "p95",
        "p99",
        "p99.9",
        "max",
    ]);
    let views = [
        (
            "response (from intended start)",
            &summary.latency_ms.response,
        ),
        ("service (sent to response)", &summary.latency_ms.service),
        ("lag (intended to sent)", &summary.latency_ms.lag),
    ];
    for (name, stats) in views {
        table.add_row(row(name, stats));
    }
    for column in table.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    if !summary.thresholds.is_empty() {
        out.push_str("  thresholds\n");
        for t in &summary.thresholds {
            let mark = if t.ok { "✓" } else { "✗" };
            let value = t
                .value
                .map_or("no value".to_string(), |v| format!("{v:.3}"));
            out.push_str(&format!(
                "    {mark} {}: {}   (value {value})\n",
                t.metric, t.expr
            ));
        }
    }
    if let Some(why) = &summary.stopped_early {
        out.push_str(&format!("  stopped early: {why}\n"));
    }
    out
}

fn row(name: &str, s: &LatencyStats) -> Vec<String> {
    let f = |v: f64| format!("{v:.3}");
    vec![
        name.to_string(),
        f(s.min),
        f(s.mean),
        f(s.p50),
        f(s.p90),
        f(s.p95),
        f(s.p99),
        f(s.p999),
        f(s.max),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_api::{Latencies, Rate, Requests, SUMMARY_SCHEMA, ThresholdOutcome};

    #[test]
    fn shows_counts_views_and_thresholds() {
        let summary = Summary {
            schema: SUMMARY_SCHEMA.into(),
            status: Status::Failed,
            duration_s: 10.0,
            requests: Requests {
                total: 100,
                ok: 90,
                failed: 10,
                dropped: 3,
                interrupted: 0,
            },
            rate: Rate {
                target: Some(10.0),
                achieved: 10.0,
            },
            latency_ms: Latencies::default(),
            thresholds: vec![ThresholdOutcome {
                metric: "latency".into(),
                expr: "p(99)<50".into(),
                ok: false,
                value: Some(75.5),
            }],
            failures: [("status 503".to_string(), 10)].into(),
            dropped: [("no_slot".to_string(), 3)].into(),
            stopped_early: None,
            reasons: Vec::new(),
        };
        let text = render("quick", &summary);
        for needle in [
            "FAILED",
            "requests 100",
            "status 503: 10",
            "no_slot: 3",
            "response",
            "lag",
            "✗ latency: p(99)<50",
            "75.500",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
