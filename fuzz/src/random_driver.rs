//! A libFuzzer-free randomized driver: mutates the seed corpus (fuzz/corpus/<target>/) with a
//! small xorshift generator and runs the same checks as the libFuzzer targets.
//! Usage: random_driver [seconds] [target...]

use std::time::{Duration, Instant};

use baton::codec::CodecKind;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let names: Vec<&str> =
        if args.len() > 1 { args[1..].iter().map(String::as_str).collect() } else { CodecKind::ALL.iter().map(|k| k.name()).collect() };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for name in names {
        let kind: CodecKind = name.parse().expect("a codec name");
        let dir = format!("{}/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
        let seeds: Vec<Vec<u8>> =
            std::fs::read_dir(&dir).map(|d| d.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect()).unwrap_or_default();
        let seeds = if seeds.is_empty() { vec![b"{}".to_vec()] } else { seeds };
        let (start, mut runs) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(secs) {
            let mut data = seeds[(next() % seeds.len() as u64) as usize].clone();
            for _ in 0..(next() % 8) {
                if data.is_empty() {
                    break;
                }
                let at = (next() % data.len() as u64) as usize;
                match next() % 4 {
                    0 => data[at] = next() as u8,
                    1 => {
                        data.remove(at);
                    }
                    2 => data.insert(at, b"{}[]\",:0-.e"[(next() % 11) as usize]),
                    _ => data.truncate(at),
                }
            }
            baton_codec_fuzz::check(kind, &data);
            runs += 1;
        }
        println!("{name}: {runs} runs in {secs}s, no failure");
    }
}
