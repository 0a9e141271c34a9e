//! Keeps a live, authenticated connection to every member, followers included.
//!
//! Followers never talk to each other until one campaigns, and then the vote request first
//! has to connect and finish a TLS handshake; meanwhile the other follower's own election
//! timer may fire too, and a split vote costs one more election timeout. In the namespace
//! lab (`make failover-bench`, 20 power-loss rounds each) 2 to 3 rounds in 20 took 510–580 ms
//! (p99 581 ms) without this, and none over 353 ms with it (p50 ~300 ms both ways). So every
//! member asks every other member for its membership every [`WARM_INTERVAL`]: a tiny call
//! that opens the connection (and reopens it after a peer restarts) before it is needed.

use std::time::Duration;

use goproxy_rpc::{Channels, PeerName};

use crate::types::{NodeId, Raft};
use crate::wire::admin::{self, admin_service_client::AdminServiceClient};

/// How often each peer connection is exercised.
pub const WARM_INTERVAL: Duration = Duration::from_secs(2);
/// Bound on one warming call.
const WARM_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs until the Raft core stops.
pub async fn run(raft: Raft, me: NodeId, channels: Channels) {
    let mut ticks = tokio::time::interval(WARM_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let peers: Vec<(NodeId, String)> = {
            let metrics = raft.metrics();
            let m = metrics.borrow();
            if m.running_state.is_err() {
                return;
            }
            m.membership_config
                .membership()
                .nodes()
                .filter(|(id, _)| **id != me)
                .map(|(id, node)| (*id, node.raft_addr.clone()))
                .collect()
        };
        for (id, addr) in peers {
            let Ok(channel) = channels.get(&addr, PeerName::Node(id)) else {
                continue;
            };
            let mut client = AdminServiceClient::new(channel);
            let call = client.membership(admin::MembershipRequest {});
            let _ = tokio::time::timeout(WARM_TIMEOUT, call).await;
        }
    }
}
