//! Is the cluster healthy enough to lose its leader on purpose, and which node should take
//! over? Pure: it judges the [`NodeStatus`] of every member (`goproxy-ha drill`).
//!
//! A drill moves the VIP under live traffic; doing that while a follower lags, while
//! acknowledged blobs are short of replicas, or while the VIP is not where it should be turns a
//! rehearsal into an incident. So every problem found is reported (all at once) and the drill
//! does not start.

use crate::{MemberView, NodeStatus, ReplicationMode, Role};

/// What the drill will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The leader now.
    pub leader: u64,
    /// Its Raft address (where the transfer is asked for).
    pub leader_raft: String,
    /// The member that will lead.
    pub target: u64,
    /// The target's GOPROXY address.
    pub target_http: String,
    /// Whether the cluster manages a VIP (then the target must end up holding it).
    pub vip: bool,
}

/// Checks every member and picks the target: `to`, or the follower with the most entries
/// applied (the lowest id on a tie). `max_lag` bounds how many entries any member may be
/// behind the leader's log.
pub fn assess(members: &[MemberView], to: Option<u64>, max_lag: u64) -> Result<Plan, Vec<String>> {
    let mut problems = Vec::new();
    if members.len() < 2 {
        problems.push(format!(
            "the cluster has {} member(s): there is nobody to hand over to",
            members.len()
        ));
    }
    let mut up = Vec::new();
    for member in members {
        match &member.status {
            Ok(status) => up.push((member, status)),
            Err(why) => problems.push(format!(
                "node {} ({}) is unreachable: {why}",
                member.id, member.http_addr
            )),
        }
    }
    let leaders: Vec<_> = up.iter().filter(|(_, s)| s.state == Role::Leader).collect();
    let leader = match leaders.as_slice() {
        [one] => Some(*one),
        [] => {
            problems.push("no member reports itself as leader".into());
            None
        }
        many => {
            let ids: Vec<u64> = many.iter().map(|(m, _)| m.id).collect();
            problems.push(format!(
                "several members report themselves as leader: {ids:?}"
            ));
            None
        }
    };
    if let Some((leader, leader_status)) = leader {
        for (member, status) in &up {
            if status.current_leader != Some(leader.id) {
                problems.push(format!(
                    "node {} follows {:?}, not node {}",
                    member.id, status.current_leader, leader.id
                ));
            }
            let last = leader_status.last_log_index.unwrap_or(0);
            let lag = last.saturating_sub(status.last_applied.unwrap_or(0));
            if lag > max_lag {
                problems.push(format!(
                    "node {} lags the leader by {lag} entries (max {max_lag})",
                    member.id
                ));
            }
        }
    }
    for (member, status) in &up {
        if status.replication_mode != ReplicationMode::Sync || status.backlog_blobs > 0 {
            problems.push(format!(
                "node {}: replication {}, {} blob(s) short of replicas",
                member.id, status.replication_mode, status.backlog_blobs
            ));
        }
        if status.missing_blobs > 0 {
            problems.push(format!(
                "node {} still lacks {} committed blob(s) (catching up from peers)",
                member.id, status.missing_blobs
            ));
        }
    }
    let vip = up.iter().any(|(_, s)| s.vip_held.is_some());
    if vip {
        for (member, status) in &up {
            let leads = leader.is_some_and(|(l, _)| l.id == member.id);
            match (leads, status.vip_held) {
                (true, Some(true)) | (false, Some(false)) => {}
                (true, _) => problems.push(format!(
                    "the leader (node {}) does not hold the VIP",
                    member.id
                )),
                (false, Some(true)) => problems.push(format!(
                    "node {} holds the VIP but does not lead",
                    member.id
                )),
                (false, None) => problems.push(format!("node {} has no VIP configured", member.id)),
            }
        }
    }
    let target = pick_target(&up, leader.map(|(l, _)| l.id), to, &mut problems);
    match (leader, target) {
        (Some((leader, _)), Some(target)) if problems.is_empty() => Ok(Plan {
            leader: leader.id,
            leader_raft: leader.raft_addr.clone(),
            target: target.id,
            target_http: target.http_addr.clone(),
            vip,
        }),
        _ => Err(problems),
    }
}

fn pick_target<'a>(
    up: &[(&'a MemberView, &NodeStatus)],
    leader: Option<u64>,
    to: Option<u64>,
    problems: &mut Vec<String>,
) -> Option<&'a MemberView> {
    let followers = up
        .iter()
        .filter(|(m, s)| Some(m.id) != leader && s.state == Role::Follower);
    match to {
        Some(id) => {
            let found = followers.clone().find(|(m, _)| m.id == id).map(|(m, _)| *m);
            if found.is_none() {
                problems.push(match up.iter().find(|(m, _)| m.id == id) {
                    Some((_, s)) => format!("node {id} cannot take over: it is {}", s.state),
                    None => format!("node {id} is not a reachable member"),
                });
            }
            found
        }
        None => {
            let best = followers
                .max_by_key(|(m, s)| (s.last_applied.unwrap_or(0), std::cmp::Reverse(m.id)))
                .map(|(m, _)| *m);
            if best.is_none() && leader.is_some() {
                problems.push("no follower can take over".into());
            }
            best
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: Role, leader: u64, applied: u64) -> NodeStatus {
        NodeStatus {
            node_id: 0,
            state,
            current_leader: Some(leader),
            current_term: 3,
            last_log_index: Some(applied),
            last_applied: Some(applied),
            snapshot: None,
            millis_since_quorum_ack: None,
            index_entries: 0,
            members: Vec::new(),
            replication_mode: ReplicationMode::Sync,
            backlog_blobs: 0,
            backlog_bytes: 0,
            missing_blobs: 0,
            vip_held: Some(state == Role::Leader),
            retired: None,
            checksum_databases: Vec::new(),
            storage: None,
            snapshots: None,
        }
    }

    fn member(id: u64, mut status: NodeStatus) -> MemberView {
        status.node_id = id;
        MemberView {
            id,
            http_addr: format!("10.0.0.{id}:8080"),
            raft_addr: format!("10.0.0.{id}:7080"),
            status: Ok(status),
        }
    }

    fn healthy() -> Vec<MemberView> {
        vec![
            member(1, status(Role::Leader, 1, 40)),
            member(2, status(Role::Follower, 1, 39)),
            member(3, status(Role::Follower, 1, 40)),
        ]
    }

    #[test]
    fn a_healthy_cluster_hands_over_to_the_most_caught_up_follower() {
        let plan = assess(&healthy(), None, 10).unwrap();
        assert_eq!((plan.leader, plan.target), (1, 3));
        assert_eq!(plan.leader_raft, "10.0.0.1:7080");
        assert!(plan.vip);
        assert_eq!(assess(&healthy(), Some(2), 10).unwrap().target, 2);
    }

    #[test]
    fn a_lagging_follower_stops_the_drill() {
        let mut members = healthy();
        members[1].status.as_mut().unwrap().last_applied = Some(5);
        let problems = assess(&members, None, 10).unwrap_err();
        assert_eq!(problems, ["node 2 lags the leader by 35 entries (max 10)"]);
    }

    #[test]
    fn degraded_replication_and_an_unreachable_member_are_all_reported() {
        let mut members = healthy();
        let s = members[0].status.as_mut().unwrap();
        s.replication_mode = ReplicationMode::Degraded;
        s.backlog_blobs = 3;
        members[2].status = Err("connection refused".into());
        let problems = assess(&members, None, 10).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("node 3 (10.0.0.3:8080) is unreachable"));
        assert!(problems[1].contains("node 1: replication degraded, 3 blob(s)"));
    }

    #[test]
    fn a_member_still_catching_up_on_blobs_stops_the_drill() {
        let mut members = healthy();
        members[2].status.as_mut().unwrap().missing_blobs = 7;
        assert_eq!(
            assess(&members, None, 10).unwrap_err(),
            ["node 3 still lacks 7 committed blob(s) (catching up from peers)"]
        );
    }

    #[test]
    fn the_vip_must_be_on_the_leader_only() {
        let mut members = healthy();
        members[2].status.as_mut().unwrap().vip_held = Some(true);
        members[0].status.as_mut().unwrap().vip_held = Some(false);
        let problems = assess(&members, None, 10).unwrap_err();
        assert!(problems
            .iter()
            .any(|p| p.contains("leader (node 1) does not hold the VIP")));
        assert!(problems
            .iter()
            .any(|p| p.contains("node 3 holds the VIP but does not lead")));
    }

    #[test]
    fn without_a_vip_nobody_is_asked_to_hold_one() {
        let mut members = healthy();
        for m in &mut members {
            m.status.as_mut().unwrap().vip_held = None;
        }
        assert!(!assess(&members, None, 10).unwrap().vip);
    }

    #[test]
    fn the_target_must_be_a_follower_other_than_the_leader() {
        assert_eq!(
            assess(&healthy(), Some(1), 10).unwrap_err(),
            ["node 1 cannot take over: it is Leader"]
        );
        assert_eq!(
            assess(&healthy(), Some(9), 10).unwrap_err(),
            ["node 9 is not a reachable member"]
        );
        let mut members = healthy();
        members[1].status.as_mut().unwrap().state = Role::Learner;
        assert_eq!(
            assess(&members, Some(2), 10).unwrap_err(),
            ["node 2 cannot take over: it is Learner"]
        );
    }

    #[test]
    fn no_leader_or_two_leaders_stop_the_drill() {
        let mut members = healthy();
        members[0].status.as_mut().unwrap().state = Role::Candidate;
        members[0].status.as_mut().unwrap().vip_held = Some(false);
        let problems = assess(&members, None, 10).unwrap_err();
        assert!(problems.contains(&"no member reports itself as leader".to_string()));
        let mut members = healthy();
        members[2].status.as_mut().unwrap().state = Role::Leader;
        let problems = assess(&members, None, 10).unwrap_err();
        assert!(problems[0].contains("several members report themselves as leader: [1, 3]"));
    }
}
