//! Compiles the `.proto` files with protox (pure Rust, no system protoc) and generates prost/tonic code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tianshan/v1/observation.proto",
        "proto/tianshan/v1/warning.proto",
        "proto/tianshan/v1/warnings_service.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
