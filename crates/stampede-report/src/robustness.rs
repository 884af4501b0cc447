//! A robustness step's statistics as text: the verdict, the figures that say how much was
//! checked, a table of actions, and every failure report.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use stampede_api::robustness::RobustnessStats;

/// The end-of-step summary of one robustness step.
pub fn render_robustness(title: &str, stats: &RobustnessStats) -> String {
    let verdict = if stats.passed { "PASSED" } else { "FAILED" };
    let mut out = format!("\n{title} — {verdict}\n");
    out.push_str(&format!(
        "  {} clients   {:.1}s   {} actions   {} snapshots verified ({} from earlier runs)   {} server restarts   seed {}\n",
        stats.clients,
        stats.elapsed_s,
        stats.actions,
        stats.snapshots_verified,
        stats.earlier_verified,
        stats.server_restarts,
        stats.seed
    ));
    if !stats.total.is_empty() {
        let mut table = Table::new();
        table.load_style(UTF8_FULL_CONDENSED).set_header(vec![
            "action", "count", "errors", "no-ops", "min ms", "mean ms", "max ms",
        ]);
        for (name, s) in &stats.total {
            let mean = s.total_us.checked_div(s.count).unwrap_or(0);
            let ms = |us: u64| format!("{:.1}", us as f64 / 1000.0);
            table.add_row(vec![
                name.clone(),
                s.count.to_string(),
                s.errors.to_string(),
                s.no_ops.to_string(),
                ms(s.min_us),
                ms(mean),
                ms(s.max_us),
            ]);
        }
        for column in table.column_iter_mut().skip(1) {
            column.set_cell_alignment(CellAlignment::Right);
        }
        out.push_str(&table.to_string());
        out.push('\n');
    }
    for failure in &stats.failures {
        out.push_str(&format!("  ✗ {failure}\n"));
    }
    for dir in &stats.kept_dirs {
        out.push_str(&format!("  kept {dir}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_api::robustness::ActionStats;

    #[test]
    fn names_the_figures_and_every_failure() {
        let mut stats = RobustnessStats {
            clients: 4,
            actions: 12,
            snapshots_verified: 3,
            failures: vec!["client c1: modified: dir_0/file_1 (content differs)".into()],
            ..RobustnessStats::default()
        };
        stats.total.insert(
            "snapshot".into(),
            ActionStats {
                count: 2,
                total_us: 3000,
                min_us: 1000,
                max_us: 2000,
                ..ActionStats::default()
            },
        );
        let text = render_robustness("t/robust on host", &stats);
        assert!(text.contains("t/robust on host — FAILED"), "{text}");
        assert!(text.contains("12 actions   3 snapshots verified"), "{text}");
        assert!(text.contains("snapshot"), "{text}");
        assert!(text.contains("1.5"), "the mean: {text}");
        assert!(
            text.contains("✗ client c1: modified: dir_0/file_1"),
            "{text}"
        );
    }
}
