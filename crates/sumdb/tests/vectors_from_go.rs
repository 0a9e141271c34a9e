//! The committed test vectors are what the Go implementation (golang.org/x/mod/sumdb, from
//! Debian's golang-golang-x-mod-dev) produces today: the Rust code is checked against Go,
//! not against a file that could drift.

use std::process::Command;

#[test]
fn the_committed_vectors_are_what_go_produces() {
    let gen = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/gen");
    let gocache = tempfile_dir();
    let out = Command::new("go")
        .args(["run", "main.go"])
        .current_dir(gen)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &gocache)
        .env("GOFLAGS", "")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run go ({e}): apt-get install golang-go golang-golang-x-mod-dev")
        });
    assert!(
        out.status.success(),
        "go run failed (apt-get install golang-golang-x-mod-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/vectors.json"
    ))
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "testdata/vectors.json differs from what testdata/gen writes now"
    );
    let _ = std::fs::remove_dir_all(gocache);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("goproxy-sumdb-gocache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
