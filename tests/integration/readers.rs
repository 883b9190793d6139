//! Readers under writers: while two writers (`set-unsafe` and a
//! `set --etag` loop) alternate a 1 KiB and a 10 MiB document, every reader
//! (`get`, `get -o`, `get --json`, `etag`, `list -l`) sees one of the two
//! documents whole, and every ETag it prints belongs to the bytes it printed.
//! Bounded: the writers make a fixed number of writes, the readers stop when
//! the writers are done (or after `MAX_READS`).

use std::fs;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::common::{md5_hex, TestStore};

/// Writes per writer, alternating the two documents.
const WRITES: usize = 8;
/// The most reads a reader makes, should the writers never finish.
const MAX_READS: usize = 400;
const WRITERS: usize = 2;

/// One of the two documents: its bytes, ETag and parsed value.
struct Doc {
    bytes: Vec<u8>,
    etag: String,
    value: Value,
}

impl Doc {
    /// `{"size":NAME,"pad":"…"}`, exactly `len` bytes, no surrounding
    /// whitespace (so `get --json`'s value is the document itself).
    fn new(name: &str, len: usize) -> Doc {
        let head = format!("{{\"size\":\"{name}\",\"pad\":\"");
        let pad = "x".repeat(len - head.len() - 2);
        let bytes = format!("{head}{pad}\"}}").into_bytes();
        assert_eq!(bytes.len(), len);
        Doc {
            etag: md5_hex(&bytes),
            value: serde_json::from_slice(&bytes).unwrap(),
            bytes,
        }
    }
}

struct Docs([Doc; 2]);

impl Docs {
    /// The document whose ETag is `etag`; panics if there is none.
    fn by_etag(&self, etag: &str, what: &str) -> &Doc {
        self.0
            .iter()
            .find(|doc| doc.etag == etag)
            .unwrap_or_else(|| panic!("{what}: {etag:?} is the ETag of neither document"))
    }

    fn other(&self, etag: &str) -> &Doc {
        self.0.iter().find(|doc| doc.etag != etag).unwrap()
    }
}

/// Counts a finished writer when dropped, even if the writer panicked, so
/// the readers always stop.
struct Finished<'a>(&'a AtomicUsize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn succeeded(output: Output, what: &str) -> Vec<u8> {
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{what}: {:?} {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn etag_line(stdout: &[u8]) -> &str {
    std::str::from_utf8(stdout)
        .unwrap()
        .strip_suffix('\n')
        .unwrap()
}

/// One read of `k` with `kind`, checked; returns the ETag it saw.
fn read(env: &TestStore, docs: &Docs, kind: &str, out_file: &Path) -> String {
    let run = |args: &[&str]| env.process().args(args).output().unwrap();
    match kind {
        "get" => {
            // Byte equality with a known document: stronger than its MD5.
            let stdout = succeeded(run(&["get", "k"]), kind);
            let doc = docs.0.iter().find(|doc| doc.bytes == stdout);
            assert!(doc.is_some(), "get: {} bytes of neither", stdout.len());
            md5_hex(&stdout)
        }
        "get -o" => {
            let out = env
                .process()
                .args(["get", "k", "-o"])
                .arg(out_file)
                .output();
            let stdout = succeeded(out.unwrap(), kind);
            let etag = etag_line(&stdout);
            let doc = docs.by_etag(etag, kind);
            assert!(
                fs::read(out_file).unwrap() == doc.bytes,
                "get -o: FILE is not {etag}"
            );
            etag.to_string()
        }
        "get --json" => {
            let stdout = succeeded(run(&["get", "k", "--json"]), kind);
            let envelope: Value = serde_json::from_slice(&stdout).unwrap();
            assert_eq!(envelope["key"], "k");
            let etag = envelope["etag"].as_str().unwrap();
            let doc = docs.by_etag(etag, kind);
            assert!(
                envelope["value"] == doc.value,
                "get --json: value is not {etag}"
            );
            let mut expected =
                format!("{{\"key\":\"k\",\"etag\":\"{etag}\",\"value\":").into_bytes();
            expected.extend(&doc.bytes);
            expected.extend(b"}\n");
            assert!(
                stdout == expected,
                "get --json: not the stored bytes of {etag}"
            );
            etag.to_string()
        }
        "etag" => {
            let stdout = succeeded(run(&["etag", "k"]), kind);
            docs.by_etag(etag_line(&stdout), kind).etag.clone()
        }
        "list -l" => {
            let stdout = succeeded(run(&["list", "-l"]), kind);
            let line = etag_line(&stdout);
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 4, "list -l: {line:?}");
            assert_eq!(fields[3], "k", "list -l: {line:?}");
            let doc = docs.by_etag(fields[0], kind);
            assert_eq!(fields[1], doc.bytes.len().to_string(), "list -l: {line:?}");
            doc.etag.clone()
        }
        _ => unreachable!("no reader {kind}"),
    }
}

#[test]
fn readers_under_writers_see_one_whole_document_with_its_own_etag() {
    let env = TestStore::new();
    let docs = Docs([Doc::new("small", 1024), Doc::new("big", 10 << 20)]);
    let files: Vec<_> = docs
        .0
        .iter()
        .map(|doc| {
            let path = env.root().join(format!("{}.json", doc.etag));
            fs::write(&path, &doc.bytes).unwrap();
            path
        })
        .collect();
    let file_of = |doc: &Doc| &files[if doc.etag == docs.0[0].etag { 0 } else { 1 }];
    env.put("k", &docs.0[0].bytes);

    let finished = AtomicUsize::new(0);
    let kinds = ["get", "get -o", "get --json", "etag", "list -l"];
    let (seen, conflicts) = thread::scope(|scope| {
        let readers: Vec<_> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let (env, docs, finished) = (&env, &docs, &finished);
                let out_file = env.root().join(format!("out-{i}.json"));
                scope.spawn(move || {
                    let mut seen = [0usize; 2];
                    for _ in 0..MAX_READS {
                        if finished.load(Ordering::SeqCst) == WRITERS {
                            break;
                        }
                        let etag = read(env, docs, kind, &out_file);
                        seen[usize::from(etag == docs.0[1].etag)] += 1;
                    }
                    (*kind, seen)
                })
            })
            .collect();

        let unsafe_writer = scope.spawn(|| {
            let _finished = Finished(&finished);
            for i in 0..WRITES {
                let doc = &docs.0[(i + 1) % 2];
                let stdout = succeeded(
                    env.process()
                        .args(["set-unsafe", "k", "-f"])
                        .arg(file_of(doc))
                        .output()
                        .unwrap(),
                    "set-unsafe",
                );
                assert_eq!(etag_line(&stdout), doc.etag);
                // Pacing, not timing: a small write replaces the big document
                // within milliseconds; leave it in place for some reads too.
                if doc.bytes.len() > 1024 {
                    thread::sleep(Duration::from_millis(150));
                }
            }
        });
        let cas_writer = scope.spawn(|| {
            let _finished = Finished(&finished);
            let mut conflicts = 0;
            for _ in 0..WRITES {
                let etag = etag_line(&succeeded(
                    env.process().args(["etag", "k"]).output().unwrap(),
                    "etag",
                ))
                .to_string();
                let doc = docs.other(&etag);
                let out = env
                    .process()
                    .args(["set", "k", "--etag", &etag, "-f"])
                    .arg(file_of(doc))
                    .output()
                    .unwrap();
                match out.status.code() {
                    Some(0) => assert_eq!(etag_line(&out.stdout), doc.etag),
                    // set-unsafe wrote in between: a conflict, not a failure.
                    Some(3) => {
                        assert!(out.stdout.is_empty());
                        conflicts += 1;
                    }
                    _ => panic!("set --etag: {out:?}"),
                }
            }
            conflicts
        });
        unsafe_writer.join().unwrap();
        let conflicts = cas_writer.join().unwrap();
        let seen: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        (seen, conflicts)
    });
    for (kind, [small, big]) in &seen {
        eprintln!("{kind}: read the 1 KiB document {small} times, the 10 MiB one {big} times");
    }
    eprintln!("set --etag: {conflicts} of {WRITES} writes conflicted with set-unsafe");
    // The store ends with one of the two documents, whole.
    let last = env.file("k").unwrap();
    assert!(docs.0.iter().any(|doc| doc.bytes == last));
    assert!(env.temp_files().is_empty());
}
