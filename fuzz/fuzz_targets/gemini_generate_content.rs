#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    baton_codec_fuzz::check(baton::codec::CodecKind::GeminiGenerateContent, data);
});
