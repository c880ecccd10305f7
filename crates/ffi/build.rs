//! Generates the C header with cbindgen into `$OUT_DIR/baton.h`. The committed copy,
//! `include/baton.h`, is compared with it by `tests/header.rs` (the drift check); run
//! `BATON_UPDATE_HEADER=1 cargo test -p baton-ffi --test header` to rewrite it.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("baton.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&out);
    println!("cargo:rustc-env=BATON_GENERATED_HEADER={}", out.display());
}
