//! openraft's own storage conformance suite against the sled log and state machine.

use goproxy_consensus::log_store::LogStore;
use goproxy_consensus::state_machine::StateMachine;
use goproxy_consensus::TypeConfig;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct SledStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for SledStores {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let io = |e: std::io::Error| {
            StorageError::from_io_error(
                openraft::ErrorSubject::Store,
                openraft::ErrorVerb::Write,
                e,
            )
        };
        let dir = tempfile::tempdir().map_err(io)?;
        let db = sled::open(dir.path()).map_err(|e| io(std::io::Error::other(e)))?;
        let log = LogStore::open(&db)
            .map_err(|e| io(std::io::Error::other(e)))?
            .durable_in(dir.path());
        let sm = StateMachine::open(&db, dir.path().join("snapshots"))
            .map_err(|e| io(std::io::Error::other(e)))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(SledStores).unwrap();
}
