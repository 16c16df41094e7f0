//! Compiles the `.proto` files with protox (pure Rust, no system protoc), generates prost/tonic
//! code, and writes the encoded file descriptor set that server reflection serves.

use std::path::PathBuf;

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tianshan/v1/observation.proto",
        "proto/tianshan/v1/warning.proto",
        "proto/tianshan/v1/warnings_service.proto",
        "proto/tianshan/peer/v1/peer.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("tianshan_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
