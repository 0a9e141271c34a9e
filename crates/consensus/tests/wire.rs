//! The gRPC framing of openraft messages: snapshot chunks travel as raw bytes.

use goproxy_consensus::wire;
use goproxy_consensus::TypeConfig;
use openraft::raft::InstallSnapshotRequest;
use openraft::{SnapshotMeta, Vote};

#[test]
fn snapshot_chunk_bytes_travel_outside_the_json_payload() {
    let chunk: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let request = InstallSnapshotRequest::<TypeConfig> {
        vote: Vote::new_committed(3, 1),
        meta: SnapshotMeta {
            last_log_id: Some(openraft::testing::log_id(3, 1, 42)),
            last_membership: Default::default(),
            snapshot_id: "3-42".into(),
        },
        offset: 4096,
        data: chunk.clone(),
        done: false,
    };
    let frame = wire::snapshot_request(request.clone()).unwrap();
    assert_eq!(frame.data, chunk);
    assert!(
        frame.payload.len() < 1_000,
        "chunk bytes leaked into the JSON payload"
    );
    assert_eq!(wire::parse_snapshot_request(frame).unwrap(), request);
}

#[test]
fn results_round_trip_including_remote_errors() {
    type Reply = Result<u64, String>;
    let ok = wire::reply::<u64, String>(&Ok(7)).unwrap();
    assert_eq!(wire::parse_reply::<u64, String>(&ok).unwrap(), Reply::Ok(7));
    let err = wire::reply::<u64, String>(&Err("fatal".into())).unwrap();
    assert_eq!(
        wire::parse_reply::<u64, String>(&err).unwrap(),
        Reply::Err("fatal".into())
    );
}
