//! Compiles every file of `proto/` with protox (pure Rust: no system `protoc` needed).

/// The node-to-node services.
const PROTOS: [&str; 3] = ["raft.proto", "blob.proto", "admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
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
