//! One pool of node-to-node channels for every service (Raft, blobs, admin calls): a peer is
//! dialed once per address and expected identity, over the cluster's [`Transport`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::transport::Channel;

use crate::transport::{PeerName, Transport, TransportError};

/// Lazily connected channels by peer. Cheap to clone.
#[derive(Clone)]
pub struct Channels {
    transport: Transport,
    open: Arc<Mutex<HashMap<(String, PeerName), Channel>>>,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Channels {
    /// An empty pool dialing over `transport`.
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            open: Arc::default(),
        }
    }

    /// The transport the pool dials over.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The channel to `peer` at `addr` (`host:port`), created on first use. tonic reconnects
    /// a channel by itself; [`forget`](Self::forget) drops one whose peer moved or died.
    pub fn get(&self, addr: &str, peer: PeerName) -> Result<Channel, TransportError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let key = (addr.to_string(), peer);
        if let Some(channel) = open.get(&key) {
            return Ok(channel.clone());
        }
        let channel = self.transport.endpoint(addr, &key.1)?.connect_lazy();
        open.insert(key, channel.clone());
        Ok(channel)
    }

    /// Drops the channels to `addr`, so the next call dials afresh.
    pub fn forget(&self, addr: &str) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(a, _), _| a != addr);
    }
}
