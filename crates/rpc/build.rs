//! Compiles every file of `proto/` with protox (pure Rust: no system `protoc` needed).

/// The node-to-node services.
const PROTOS: [&str; 3] = ["raft.proto", "blob.proto", "admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it is compiled: cargo reuses a compiled build
    // script for another checkout sharing CARGO_TARGET_DIR, whose baked-in path would be stale.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let proto_dir = format!("{manifest_dir}/../../proto");
    let proto_dir = proto_dir.as_str();
    let files: Vec<String> = PROTOS.iter().map(|p| format!("{proto_dir}/{p}")).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(&files, [proto_dir])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
