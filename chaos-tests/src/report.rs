//! The summary table: one row per scenario with availability, fills, convergence and one
//! column per invariant; then every violation in full.

use std::fmt::Write;

use crate::suite::Outcome;

/// Invariant 3's cell: `ok(N?)` when N samples could not tell (reads too far apart).
fn one_holder_verdict(o: &Outcome) -> String {
    match (o.two_holders.is_empty(), o.inconclusive_samples) {
        (true, 0) => "ok".into(),
        (true, n) => format!("ok({n}?)"),
        (false, _) => verdict(&o.two_holders),
    }
}

fn verdict(violations: &[String]) -> String {
    if violations.is_empty() {
        "ok".into()
    } else {
        format!("FAIL({})", violations.len())
    }
}

/// Renders the table for `outcomes` of the run seeded with `seed`.
pub fn render(seed: u64, outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "chaos summary (seed {seed})");
    let _ = writeln!(
        out,
        "{:<22} {:>6} {:>7} {:>9} {:>9} {:>9} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9}  FAULT",
        "SCENARIO",
        "REQS",
        "OK%",
        "GAP_MS",
        "OUTAGE_MS",
        "FILLS",
        "ACKED",
        "CONVERGE",
        "1_SERVED",
        "2_SAME",
        "3_ONE_VIP",
        "GO_BUILD",
    );
    for o in outcomes {
        let converge = match &o.converge {
            Ok(d) => format!("{:.1}s", d.as_secs_f64()),
            Err(_) => "FAIL".into(),
        };
        let go = match &o.go_build {
            None => "-".into(),
            Some(Ok(d)) => format!("{:.0}s", d.as_secs_f64()),
            Some(Err(_)) => "FAIL".into(),
        };
        let note = match &o.note {
            Ok(note) => note.clone(),
            Err(e) => format!("NOT APPLIED: {}", e.lines().next().unwrap_or_default()),
        };
        let _ = writeln!(
            out,
            "{:<22} {:>6} {:>7.2} {:>9} {:>9} {:>9} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9}  {}",
            o.name,
            o.availability.requests,
            o.availability.percent(),
            o.availability.longest_gap.as_millis(),
            o.probe_outage
                .map_or("-".into(), |d| d.as_millis().to_string()),
            format!("{}/{}", o.fills.1, o.fills.0),
            o.acked_total,
            converge,
            verdict(&o.lost),
            verdict(&o.conflicting),
            one_holder_verdict(o),
            go,
            note
        );
    }
    for o in outcomes.iter().filter(|o| !o.passed()) {
        let _ = writeln!(out, "\n{}:", o.name);
        if let Err(e) = &o.note {
            let _ = writeln!(out, "  fault not applied: {e}");
        }
        if let Err(e) = &o.converge {
            let _ = writeln!(out, "  did not converge: {e}");
        }
        if let Some(Err(e)) = &o.go_build {
            let _ = writeln!(out, "  go build failed: {e}");
        }
        for (what, list) in [
            ("acknowledged artifact not served", &o.lost),
            ("two contents", &o.conflicting),
            ("two VIP holders", &o.two_holders),
        ] {
            for v in list.iter().take(20) {
                let _ = writeln!(out, "  {what}: {v}");
            }
            if list.len() > 20 {
                let _ = writeln!(out, "  … and {} more", list.len() - 20);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::Availability;
    use std::time::Duration;

    fn outcome(name: &str, lost: Vec<String>) -> Outcome {
        Outcome {
            name: name.into(),
            note: Ok("killed leaders [1]".into()),
            availability: Availability {
                requests: 200,
                ok: 199,
                longest_gap: Duration::from_millis(480),
            },
            probe_outage: Some(Duration::from_millis(530)),
            fills: (60, 59),
            acked_total: 300,
            converge: Ok(Duration::from_millis(1500)),
            lost,
            conflicting: Vec::new(),
            two_holders: Vec::new(),
            inconclusive_samples: 0,
            go_build: None,
        }
    }

    #[test]
    fn a_row_per_scenario_and_every_violation_spelled_out() {
        let text = render(
            42,
            &[
                outcome("kill-9-leader-x1", vec![]),
                outcome("isolate-leader", vec!["/a via node 2: 404".into()]),
            ],
        );
        assert!(text.starts_with("chaos summary (seed 42)"), "{text}");
        let row = text
            .lines()
            .find(|l| l.starts_with("kill-9-leader-x1"))
            .unwrap();
        assert!(
            row.contains("99.50")
                && row.contains("480")
                && row.contains("530")
                && row.contains("59/60"),
            "{row}"
        );
        assert!(row.contains("1.5s") && row.contains(" ok "), "{row}");
        let bad = text
            .lines()
            .find(|l| l.starts_with("isolate-leader"))
            .unwrap();
        assert!(bad.contains("FAIL(1)"), "{bad}");
        assert!(
            text.contains("acknowledged artifact not served: /a via node 2: 404"),
            "{text}"
        );
    }

    #[test]
    fn inconclusive_holder_samples_are_shown_beside_invariant_three() {
        let mut o = outcome("isolate-leader", vec![]);
        assert_eq!(one_holder_verdict(&o), "ok");
        o.inconclusive_samples = 2;
        assert_eq!(one_holder_verdict(&o), "ok(2?)");
        o.two_holders = vec!["2 holders at 5 ms (mask 011)".into()];
        assert_eq!(one_holder_verdict(&o), "FAIL(1)");
    }
}
