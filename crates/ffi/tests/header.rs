//! The header drift check: `include/baton.h` must equal what cbindgen generates from this
//! crate. `BATON_UPDATE_HEADER=1 cargo test -p baton-ffi --test header` rewrites it.

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = std::fs::read_to_string(env!("BATON_GENERATED_HEADER")).expect("generated header");
    let committed_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/baton.h");
    if std::env::var_os("BATON_UPDATE_HEADER").is_some() {
        std::fs::write(&committed_path, &generated).expect("write include/baton.h");
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/baton.h is out of date with crates/ffi: run `BATON_UPDATE_HEADER=1 cargo test -p baton-ffi --test header` and commit it"
    );
}
