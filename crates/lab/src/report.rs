//! The failover benchmark's summary: one row per (model, fault) with outage percentiles and
//! the fencing counters, then our ratio to each keepalived setting.

use std::fmt::Write;
use std::time::Duration;

use crate::analysis::percentile;
use crate::rounds::Round;

/// Every round of one (model, fault) pair.
#[derive(Debug, Clone)]
pub struct Series {
    /// e.g. `goproxy-ha 50ms/150-300ms` or `keepalived v3 advert_int 0.1`.
    pub model: String,
    /// Whether this series is goproxy-ha's (its fencing counters must be zero).
    pub ours: bool,
    /// The rounds.
    pub rounds: Vec<Round>,
}

impl Series {
    /// The fault's label (every round of a series has the same fault).
    pub fn fault(&self) -> String {
        self.rounds
            .first()
            .map(|r| r.fault.label())
            .unwrap_or_default()
    }

    fn outages(&self) -> Vec<Duration> {
        self.rounds.iter().map(|r| r.outage).collect()
    }

    /// Outage percentile `p`.
    pub fn outage(&self, p: f64) -> Option<Duration> {
        percentile(&self.outages(), p)
    }

    /// Samples that saw two holders, over all rounds.
    pub fn double_holders(&self) -> usize {
        self.rounds.iter().map(|r| r.double_holders).sum()
    }

    /// Rounds in which the old holder was seen letting go before the new one claimed.
    pub fn released_first(&self) -> usize {
        self.rounds
            .iter()
            .filter(|r| r.handover.released_before_claimed())
            .count()
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| d.as_millis().to_string())
        .unwrap_or_else(|| "-".into())
}

/// The table, plus ratio lines comparing `ours` (by fault label) with each keepalived series.
pub fn render(series: &[Series]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:<16} {:>6} {:>8} {:>8} {:>8} {:>7} {:>9} {:>13}",
        "MODEL",
        "FAULT",
        "ROUNDS",
        "P50_MS",
        "P99_MS",
        "MAX_MS",
        "FAILED",
        "2_HOLDERS",
        "RELEASED_1ST"
    );
    for s in series {
        let released = if s.ours {
            format!("{}/{}", s.released_first(), s.rounds.len())
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "{:<34} {:<16} {:>6} {:>8} {:>8} {:>8} {:>7} {:>9} {:>13}",
            s.model,
            s.fault(),
            s.rounds.len(),
            ms(s.outage(50.0)),
            ms(s.outage(99.0)),
            ms(s.outage(100.0)),
            s.rounds.iter().map(|r| r.failed).sum::<usize>(),
            s.double_holders(),
            released
        );
    }
    let power_loss = crate::rounds::Fault::PowerLoss.label();
    for ours in series.iter().filter(|s| s.ours && s.fault() == power_loss) {
        for theirs in series.iter().filter(|s| !s.ours) {
            for p in [50.0, 99.0] {
                if let (Some(a), Some(b)) = (ours.outage(p), theirs.outage(p)) {
                    let _ = writeln!(
                        out,
                        "power-loss p{p} ratio {} / {}: {:.2}",
                        ours.model,
                        theirs.model,
                        a.as_secs_f64() / b.as_secs_f64()
                    );
                }
            }
        }
    }
    out
}

/// What must hold for goproxy-ha in every series: never two holders, and (for partitions and
/// freezes) the old holder let go before another node claimed.
pub fn fencing_violations(series: &[Series]) -> Vec<String> {
    let mut violations = Vec::new();
    for s in series.iter().filter(|s| s.ours) {
        if s.double_holders() > 0 {
            violations.push(format!(
                "{} / {}: {} samples with two holders",
                s.model,
                s.fault(),
                s.double_holders()
            ));
        }
        if s.released_first() < s.rounds.len() {
            violations.push(format!(
                "{} / {}: the old holder was still seen after another node claimed in {} of {} rounds",
                s.model,
                s.fault(),
                s.rounds.len() - s.released_first(),
                s.rounds.len()
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Handover;
    use crate::rounds::Fault;

    fn round(fault: Fault, outage_ms: u64, doubles: usize) -> Round {
        Round {
            fault,
            old: 1,
            new: 2,
            outage: Duration::from_millis(outage_ms),
            failed: 3,
            double_holders: doubles,
            inconclusive: 0,
            handover: Handover {
                old_last_held: Some(Duration::from_millis(10)),
                new_first_held: Some((Duration::from_millis(20), 2)),
            },
            fault_at: Duration::ZERO,
        }
    }

    #[test]
    fn the_table_has_percentiles_and_ratios_to_keepalived() {
        let series = vec![
            Series {
                model: "goproxy-ha".into(),
                ours: true,
                rounds: vec![
                    round(Fault::PowerLoss, 300, 0),
                    round(Fault::PowerLoss, 400, 0),
                ],
            },
            Series {
                model: "keepalived".into(),
                ours: false,
                rounds: vec![
                    round(Fault::PowerLoss, 600, 0),
                    round(Fault::PowerLoss, 800, 0),
                ],
            },
        ];
        let text = render(&series);
        assert!(text.contains("power loss"), "{text}");
        assert!(
            text.contains("p50 ratio goproxy-ha / keepalived: 0.50"),
            "{text}"
        );
        assert!(
            text.contains("p99 ratio goproxy-ha / keepalived: 0.50"),
            "{text}"
        );
        assert!(fencing_violations(&series).is_empty());
    }

    #[test]
    fn two_holders_in_our_series_are_a_violation() {
        let series = vec![Series {
            model: "goproxy-ha".into(),
            ours: true,
            rounds: vec![round(Fault::Partition, 300, 2)],
        }];
        assert_eq!(fencing_violations(&series).len(), 1);
    }
}
