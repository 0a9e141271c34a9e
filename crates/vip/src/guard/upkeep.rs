//! The guard's upkeep: removal with retries, the stale-address sweep at start, re-announcement
//! and the announcement bursts themselves.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Guard;
use crate::error::VipError;

/// Removal attempts before the guard reports the address as stuck.
const REMOVE_ATTEMPTS: u32 = 5;
/// Pause between two removal attempts.
const REMOVE_RETRY_PAUSE: Duration = Duration::from_millis(20);

impl Guard<'_> {
    /// A VIP already on the interface when the guard starts was left by someone not entitled now.
    pub(super) async fn remove_stale(&mut self) -> Result<(), VipError> {
        let removed = self.remove_with_retries().await?;
        if removed > 0 {
            tracing::warn!(address = %self.cfg.address, interface = %self.cfg.interface, "removed a stale vip found at guard start");
        }
        Ok(())
    }

    pub(super) async fn remove_with_retries(&self) -> Result<usize, VipError> {
        let mut attempt = 1;
        loop {
            match self
                .netlink
                .remove(self.link.index, self.cfg.address.ip())
                .await
            {
                Ok(removed) => return Ok(removed),
                Err(last) if attempt >= REMOVE_ATTEMPTS => {
                    return Err(VipError::RemoveFailed {
                        address: self.cfg.address.to_string(),
                        interface: self.cfg.interface.clone(),
                        attempts: attempt,
                        last: Box::new(last),
                    })
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "removing the vip failed; retrying");
                    tokio::time::sleep(REMOVE_RETRY_PAUSE).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Re-announces, and puts the address back if something else removed it behind our back.
    pub(super) async fn refresh(&mut self) {
        self.refresh_at = Some(Instant::now() + self.cfg.garp_refresh);
        let (index, address) = (self.link.index, self.cfg.address);
        match self.netlink.has_address(index, address).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%address, "the vip vanished from the interface; adding it back");
                if let Err(error) = self.netlink.add(index, address).await {
                    tracing::warn!(%error, %address, "could not add the vip back");
                }
            }
            Err(error) => tracing::warn!(%error, "could not check the vip is still present"),
        }
        self.announce(1);
    }

    /// Starts `rounds` announcement rounds in the background, replacing any burst in flight.
    pub(super) fn announce(&mut self, rounds: u32) {
        if let Some(burst) = self.burst.take() {
            burst.abort();
        }
        let announcer = Arc::clone(&self.announcer);
        let interval = self.cfg.garp_interval;
        self.burst = Some(tokio::spawn(async move {
            if let Err(error) = announcer.burst(rounds, interval).await {
                tracing::warn!(%error, "vip announcement failed");
            }
        }));
    }
}
