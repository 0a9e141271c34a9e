//! Campaigns as soon as the dead leader's lease is over, not a random election timeout later.
//!
//! An openraft 0.9 follower refuses votes for `leader_lease` (= `election_timeout_max`) after it
//! last heard from its leader, and its own election timer waits that lease *plus* a randomized
//! election timeout (`election_timeout_min..max`) before campaigning. A dead leader therefore
//! costs about 1.5–2 × `election_timeout_max`, and only the first half buys safety: it is the
//! window in which the old leader may still hold the VIP (`crates/vip`, `lease.rs`).
//!
//! This task watches when this follower's vote was last refreshed by the leader. Once the lease
//! has run out plus a short random stagger (so that two followers rarely campaign in the same
//! instant), with nothing heard, it triggers one election. Every follower still refuses its
//! vote while its own lease runs (openraft checks that atomically), and a stagger collision is
//! an ordinary split vote that openraft's timer settles. The check here and the election are
//! not atomic: a heartbeat may be acknowledged in between. That costs one needless election at
//! worst, and cannot put the VIP on two nodes: a new leader waits out the lease of any leader
//! it acknowledged before claiming it ([`crate::foreign_lease`]). One early campaign per
//! silence; learners, leaders, candidates and paused members ([`ElectionPause`]: transfers,
//! the rejoin hold) are left alone.
//!
//! openraft 0.9's *leader* does not refuse votes by lease (its vote time is set when it is
//! elected), so a follower that only lost the leader's heartbeats can still unseat a leader
//! the other voters hear; campaigning earlier makes that sooner, not possible.

use std::time::Duration;

use openraft::ServerState;
use rand::Rng;
use tokio::time::Instant;

use crate::election_pause::ElectionPause;
use crate::types::{NodeId, Raft};

/// What a follower sees when it looks at its Raft state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// A follower of a leader it has acknowledged (openraft's committed vote), and a voter.
    pub following: bool,
    /// When the leader last refreshed this member's vote (heartbeat or append).
    pub last_heard: Option<Instant>,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Look again at this instant.
    LookAt(Instant),
    /// The lease and the stagger are over with nothing heard: campaign now.
    Campaign,
}

/// Decides from one observation. `campaigned_after` is the `last_heard` of the silence this
/// member already campaigned in (one early campaign per silence); `idle` is when to look again
/// when there is nothing to watch.
pub fn next_step(
    now: Instant,
    seen: Observed,
    lease: Duration,
    stagger: Duration,
    campaigned_after: Option<Instant>,
    idle: Duration,
) -> Next {
    let Some(heard) = seen.last_heard.filter(|_| seen.following) else {
        return Next::LookAt(now + idle);
    };
    if campaigned_after == Some(heard) {
        return Next::LookAt(now + idle);
    }
    let due = heard + lease + stagger;
    if now >= due {
        Next::Campaign
    } else {
        Next::LookAt(due)
    }
}

/// The random stagger for one silence: up to a third of the shortest election timeout.
pub fn stagger(election_timeout_min: Duration) -> Duration {
    let most = (election_timeout_min / 3).as_micros() as u64;
    Duration::from_micros(rand::rng().random_range(0..=most))
}

/// Watches this member until the Raft core stops. Spawned once per member.
pub async fn run(raft: Raft, pause: ElectionPause, me: NodeId) {
    let config = raft.config().clone();
    let lease = Duration::from_millis(config.election_timeout_max);
    let min = Duration::from_millis(config.election_timeout_min);
    let idle = Duration::from_millis(config.heartbeat_interval.max(1) * 2);
    let mut campaigned_after = None;
    let mut stagger_for = (None, stagger(min));
    loop {
        let observed = raft
            .with_raft_state(move |state| Observed {
                following: state.server_state == ServerState::Follower
                    && state.vote_ref().is_committed()
                    && state
                        .membership_state
                        .effective()
                        .voter_ids()
                        .any(|id| id == me),
                last_heard: state.vote_last_modified(),
            })
            .await;
        let Ok(seen) = observed else {
            return; // the core stopped; Consensus::stopped reports it
        };
        if stagger_for.0 != seen.last_heard {
            stagger_for = (seen.last_heard, stagger(min));
        }
        let now = Instant::now();
        match next_step(now, seen, lease, stagger_for.1, campaigned_after, idle) {
            Next::LookAt(at) => tokio::time::sleep_until(at).await,
            Next::Campaign if pause.is_paused() => tokio::time::sleep(idle).await,
            Next::Campaign => {
                campaigned_after = seen.last_heard;
                let silent = seen.last_heard.map(|heard| now - heard);
                tracing::info!(?silent, ?lease, "leader silent past its lease: campaigning");
                if raft.trigger().elect().await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn follower(heard: Instant) -> Observed {
        Observed {
            following: true,
            last_heard: Some(heard),
        }
    }

    #[test]
    fn waits_out_the_lease_and_the_stagger_then_campaigns() {
        let heard = Instant::now();
        let step = |now| next_step(now, follower(heard), 300 * MS, 20 * MS, None, 100 * MS);
        assert_eq!(step(heard), Next::LookAt(heard + 320 * MS));
        assert_eq!(step(heard + 319 * MS), Next::LookAt(heard + 320 * MS));
        assert_eq!(step(heard + 320 * MS), Next::Campaign);
        assert_eq!(step(heard + 900 * MS), Next::Campaign);
    }

    #[test]
    fn never_before_the_lease_whatever_the_stagger() {
        let heard = Instant::now();
        for lease_ms in [50u32, 150, 300, 1000] {
            for now_ms in 0..lease_ms {
                let step = next_step(
                    heard + now_ms * MS,
                    follower(heard),
                    lease_ms * MS,
                    stagger(150 * MS),
                    None,
                    100 * MS,
                );
                assert_ne!(step, Next::Campaign, "lease {lease_ms} ms, at {now_ms} ms");
            }
        }
    }

    #[test]
    fn campaigns_once_per_silence() {
        let heard = Instant::now();
        let later = heard + 500 * MS;
        let again = next_step(later, follower(heard), 300 * MS, MS, Some(heard), 100 * MS);
        assert_eq!(again, Next::LookAt(later + 100 * MS));
        // A new word from a leader starts a new silence.
        let next = heard + 400 * MS;
        let step = next_step(later, follower(next), 300 * MS, MS, Some(heard), 100 * MS);
        assert_eq!(step, Next::LookAt(next + 301 * MS));
    }

    #[test]
    fn leaves_leaders_candidates_and_learners_alone() {
        let heard = Instant::now();
        let late = heard + 10_000 * MS;
        let not_following = Observed {
            following: false,
            last_heard: Some(heard),
        };
        let step = next_step(late, not_following, 300 * MS, MS, None, 100 * MS);
        assert_eq!(step, Next::LookAt(late + 100 * MS));
        let never_heard = Observed {
            following: true,
            last_heard: None,
        };
        let step = next_step(late, never_heard, 300 * MS, MS, None, 100 * MS);
        assert_eq!(step, Next::LookAt(late + 100 * MS));
    }

    #[test]
    fn stagger_stays_within_a_third_of_the_shortest_timeout() {
        for _ in 0..1_000 {
            assert!(stagger(150 * MS) <= 50 * MS);
        }
        assert_eq!(stagger(Duration::ZERO), Duration::ZERO);
    }
}
