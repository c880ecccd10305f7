#![no_main]
use libfuzzer_sys::fuzz_target;

// Detection must never panic, and a detected codec must decode what it claimed.
fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Some(k) = baton::codec::detect_request(&v) {
        let _ = baton::codec::decode_request(k, &v);
    }
    if let Some(k) = baton::codec::detect_response(&v) {
        let _ = baton::codec::decode_response(k, &v);
    }
});
