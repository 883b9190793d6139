//! In-process hot paths, for docs/benchmarks.md: key validation and
//! encoding, and the one-pass document pipeline (JSON check + MD5 + copy) in
//! MB/s against MD5 alone, the JSON check alone (also in CPU time), and
//! the copy that only hashes.
//!
//! Run with `cargo bench --bench pipeline`; scripts/bench.sh runs it too.

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etagstore::document;
use etagstore::key::Key;
use md5::{Digest, Md5};

/// Keys of the shapes scripts use: plain, path-like, and mostly encoded.
const KEYS: [(&str, &str); 3] = [
    ("plain", "blogpost"),
    ("path", "users/alice/settings.v2"),
    ("unicode", "café menu/été 2026 → ☀"),
];

fn key_encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("key");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(2));
    for (name, key) in KEYS {
        group.bench_function(name, |b| {
            b.iter(|| Key::new(black_box(key)).unwrap().encoded())
        });
    }
    group.finish();
}

/// A ~16 MiB document of typical JSON: objects of strings, numbers,
/// booleans, nested arrays, some escapes and some non-ASCII text.
fn sample_document() -> Vec<u8> {
    const TARGET: usize = 16 * 1024 * 1024;
    let mut doc = Vec::with_capacity(TARGET + 1024);
    doc.extend_from_slice(b"{\"items\": [\n");
    let mut i = 0u64;
    while doc.len() < TARGET {
        if i > 0 {
            doc.extend_from_slice(b",\n");
        }
        let item = format!(
            "  {{\"id\": {i}, \"name\": \"item number {i}\", \"price\": {}.{:02}, \
             \"active\": {}, \"tags\": [\"a\", \"b\\n\", \"caf\u{e9}\"], \
             \"note\": \"a \\\"quoted\\\" word and \\u00e9\", \"ratio\": -1.5e-3, \
             \"parent\": null, \"dims\": {{\"w\": 12, \"h\": 7}}}}",
            i * 7 % 1000,
            i % 100,
            i.is_multiple_of(2),
        );
        doc.extend_from_slice(item.as_bytes());
        i += 1;
    }
    doc.extend_from_slice(b"\n]}\n");
    document::validate(&doc).expect("the sample document is valid JSON");
    doc
}

/// CPU time this thread has used (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to; the clock always exists on Linux.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn pipeline(c: &mut Criterion) {
    let doc = sample_document();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Bytes(doc.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("md5_only", |b| b.iter(|| Md5::digest(black_box(&doc[..]))));
    group.bench_function("copy_hashed", |b| {
        b.iter(|| document::copy_hashed(&mut black_box(&doc[..]), &mut io::sink()).unwrap())
    });
    // The JSON checker alone, on the whole document at once.
    group.bench_function("validate_only", |b| {
        b.iter(|| document::validate(black_box(&doc[..])).unwrap())
    });
    // The same, timed in this thread's CPU time instead of wall time: on a
    // machine busy with other work it still says what the checker costs.
    group.bench_function("validate_only_cpu", |b| {
        b.iter_custom(|iters| {
            let start = thread_cpu_time();
            for _ in 0..iters {
                document::validate(black_box(&doc[..])).unwrap();
            }
            thread_cpu_time() - start
        })
    });
    group.bench_function("copy_validated", |b| {
        b.iter(|| document::copy_validated(&mut black_box(&doc[..]), &mut io::sink()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, key_encoding, pipeline);
criterion_main!(benches);
