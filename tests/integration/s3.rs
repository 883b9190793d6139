//! The S3 backend against moto's S3 server (scripts/s3-server.sh; a test
//! double of S3, not S3: docs/s3.md). The backend-independent scenarios run
//! on it from azure.rs; here: races that need the service's own If-Match on
//! PutObject and DeleteObject, and objects written by another client
//! (boto3, from the server's venv): single-part, multipart, and with
//! metadata copied from an older version.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use predicates::prelude::*;

use crate::common::{line, md5_hex, one_error_line, Pause, TestStore};

/// The port `scripts/s3-server.sh start` uses.
pub const PORT: u16 = 5000;

/// Without the server (or its venv): a note, or a failure under CI=true.
pub fn missing(message: &str) {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{message}; CI=true, so this S3 test fails instead of skipping");
    }
    eprintln!("SKIPPED: {message}: skipping this S3 test");
}

/// True if something answers HTTP on 127.0.0.1:`port`.
pub fn answers(port: u16) -> bool {
    request(port, "GET", "/").is_ok()
}

/// Creates a bucket with a name no other test uses; returns the name.
/// (moto checks no signature, so a bare PUT does it.)
pub fn create_bucket(port: u16) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!(
        "t{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let status = request(port, "PUT", &format!("/{name}")).expect("the S3 server answers");
    assert!(status.contains(" 200 "), "create bucket: {status}");
    name
}

/// Writes an object the way another tool would: one PutObject, no
/// etagstore metadata. (moto checks no signature, so a bare PUT does it.)
pub fn put_object(port: u16, bucket: &str, name: &str, body: &[u8]) {
    let status = request_with(port, "PUT", &format!("/{bucket}/{name}"), body)
        .expect("the S3 server answers");
    assert!(status.contains(" 200 "), "put object: {status}");
}

fn request(port: u16, method: &str, target: &str) -> std::io::Result<String> {
    request_with(port, method, target, b"")
}

fn request_with(port: u16, method: &str, target: &str, body: &[u8]) -> std::io::Result<String> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    match response.lines().next() {
        Some(line) if line.starts_with("HTTP/") => Ok(line.to_string()),
        _ => Err(std::io::Error::other("no HTTP answer")),
    }
}

/// The venv's python (boto3 comes with moto), if scripts/s3-server.sh made it.
fn python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-s3/bin/python");
    if python.exists() {
        Some(python)
    } else {
        missing("no .venv-s3/bin/python (run scripts/s3-server.sh start)");
        None
    }
}

/// Runs `script` with boto3 on the test's bucket: `s3` and `bucket` are
/// set, the arguments follow in sys.argv[1:]. Returns its standard output.
fn boto3(env: &TestStore, python: &PathBuf, script: &str, args: &[&str]) -> String {
    let bucket = env.s3_store().unwrap();
    let prelude = format!(
        "import sys, boto3\n\
         s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{}', \
         aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1')\n\
         bucket = '{}'\n",
        bucket.port, bucket.bucket
    );
    let output = Command::new(python)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "boto3: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Eight processes with the same `--etag E`, each held (test-hooks pause
/// `BEFORE_SEND`) after its read and check until all eight are there, then
/// let go at once: only the service's If-Match can pick one winner.
fn eight_held_then_released(env: &TestStore, args: impl Fn(usize) -> Vec<String>) -> Vec<Output> {
    let pauses: Vec<Pause> = (0..8)
        .map(|_| Pause::new(env.root(), "BEFORE_SEND"))
        .collect();
    let mut children: Vec<Child> = pauses
        .iter()
        .enumerate()
        .map(|(i, pause)| {
            let mut cmd = env.process();
            cmd.args(args(i))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            pause.arm(&mut cmd);
            cmd.spawn().unwrap()
        })
        .collect();
    for (pause, child) in pauses.iter().zip(&mut children) {
        pause.wait_for(child);
    }
    for pause in &pauses {
        pause.release();
    }
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Eight `set --etag E` sent together on one version: PutObject with
/// If-Match lets exactly one through, the others exit 3.
#[test]
fn of_eight_writers_sent_together_exactly_one_wins() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    for round in 0..3 {
        let etag = env.put("k", format!("{{\"round\": {round}}}"));
        let outputs = eight_held_then_released(&env, |i| {
            let doc = format!("{{\"round\": {round}, \"writer\": {i}}}");
            ["set", "k", &doc, "--etag", &etag]
                .map(String::from)
                .to_vec()
        });
        let winners: Vec<usize> = (0..8).filter(|&i| outputs[i].status.success()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outputs:?}");
        let doc = format!("{{\"round\": {round}, \"writer\": {}}}", winners[0]);
        for (i, output) in outputs.iter().enumerate() {
            if i != winners[0] {
                assert_eq!(output.status.code(), Some(3), "{output:?}");
                assert_eq!(text(&output.stderr).lines().count(), 1, "{output:?}");
            }
        }
        env.cmd().args(["get", "k"]).assert().success().stdout(doc);
    }
}

/// Eight `delete --etag E` sent together on one version: DeleteObject with
/// If-Match lets exactly one through (without it, all eight succeed: a
/// DELETE of a missing object is a 204), the others exit 3.
#[test]
fn of_eight_deletes_sent_together_exactly_one_wins() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    for round in 0..3 {
        let etag = env.put("k", format!("{{\"round\": {round}}}"));
        let outputs = eight_held_then_released(&env, |_| {
            ["delete", "k", "--etag", &etag].map(String::from).to_vec()
        });
        let winners = outputs.iter().filter(|o| o.status.success()).count();
        assert_eq!(winners, 1, "round {round}: {outputs:?}");
        for output in outputs.iter().filter(|o| !o.status.success()) {
            assert_eq!(output.status.code(), Some(3), "{output:?}");
            assert_eq!(text(&output.stderr).lines().count(), 1, "{output:?}");
        }
        env.cmd().args(["get", "k"]).assert().code(4);
    }
}

/// Four processes, 25 `edit --jq '.n += 1'` each: no update is lost.
#[test]
fn four_times_twenty_five_jq_edits_make_100() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    env.put("counter", "{\"n\": 0}");
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..25 {
                    let output = env
                        .process()
                        .args(["edit", "counter", "--retries", "1000", "--jq", ".n += 1"])
                        .output()
                        .unwrap();
                    assert!(output.status.success(), "{output:?}");
                }
            });
        }
    });
    env.cmd()
        .args(["get", "counter"])
        .assert()
        .success()
        .stdout("{\n  \"n\": 100\n}\n")
        .stderr("");
}

/// A single-part upload by boto3 (no etagstore metadata, S3's ETag is the
/// MD5) and a multipart one (S3's ETag is "MD5-OF-MD5S-2", not the MD5 of
/// the bytes): both read, list and compare-and-swap by the MD5 of their bytes.
#[test]
fn objects_written_by_boto3_single_part_and_multipart_work_like_any_other() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    let Some(python) = python() else {
        return;
    };
    let small = "{\"from\": \"boto3\"}";
    // Two parts: 5 MiB (the smallest a non-last part may be) and the rest.
    let big = format!("[\"{}\"]", "x".repeat(6 * 1024 * 1024));
    let dir = env.root();
    std::fs::write(dir.join("small.json"), small).unwrap();
    std::fs::write(dir.join("big.json"), &big).unwrap();
    let s3_etags = boto3(
        &env,
        &python,
        "small, big = (open(p, 'rb').read() for p in sys.argv[1:3])\n\
         s3.put_object(Bucket=bucket, Key='small.json', Body=small)\n\
         up = s3.create_multipart_upload(Bucket=bucket, Key='big.json')\n\
         cut = 5 * 1024 * 1024\n\
         parts = []\n\
         for n, chunk in ((1, big[:cut]), (2, big[cut:])):\n\
         \x20   r = s3.upload_part(Bucket=bucket, Key='big.json', PartNumber=n, UploadId=up['UploadId'], Body=chunk)\n\
         \x20   parts.append({'PartNumber': n, 'ETag': r['ETag']})\n\
         s3.complete_multipart_upload(Bucket=bucket, Key='big.json', UploadId=up['UploadId'], MultipartUpload={'Parts': parts})\n\
         for k in ('small.json', 'big.json'):\n\
         \x20   print(s3.head_object(Bucket=bucket, Key=k)['ETag'].strip('\"'))\n",
        &[
            dir.join("small.json").to_str().unwrap(),
            dir.join("big.json").to_str().unwrap(),
        ],
    );
    let (small_etag, big_etag) = (md5_hex(small.as_bytes()), md5_hex(big.as_bytes()));
    // What S3 says of them: the MD5 for one part, something else for two.
    let s3_etags: Vec<&str> = s3_etags.lines().collect();
    assert_eq!(s3_etags[0], small_etag);
    assert!(s3_etags[1].ends_with("-2"), "{s3_etags:?}");

    env.cmd()
        .args(["get", "small"])
        .assert()
        .success()
        .stdout(small)
        .stderr("");
    env.cmd()
        .args(["etag", "big"])
        .assert()
        .success()
        .stdout(line(&big_etag))
        .stderr("");
    let listed = env.cmd().args(["list", "-l"]).assert().success().stderr("");
    let listed = text(&listed.get_output().stdout);
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!((rows[0][0], rows[0][3]), (big_etag.as_str(), "big"));
    assert_eq!((rows[1][0], rows[1][3]), (small_etag.as_str(), "small"));

    // S3's own ETag of the multipart object is no etagstore ETag.
    env.cmd()
        .args(["set", "big", "[1]", "--etag", s3_etags[1]])
        .assert()
        .code(2);
    // The MD5 of the bytes is; a stale one is exit 3 and changes nothing.
    let stale = md5_hex(b"[0]");
    env.cmd()
        .args(["set", "big", "[1]", "--etag", &stale])
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains(format!(
            "--etag \"{stale}\" but the current ETag is \"{big_etag}\""
        )));
    env.cmd()
        .args(["set", "big", "[1]", "--etag", &big_etag])
        .assert()
        .success()
        .stdout(line(&md5_hex(b"[1]")))
        .stderr("");
    env.cmd()
        .args(["delete", "small", "--etag", &small_etag])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    env.cmd().args(["list"]).assert().success().stdout("big\n");
}

/// Another client replaces a document and copies the metadata of the
/// version before (etagstore_md5 included, and Content-MD5 of nothing):
/// the old ETag must not pass, the new one must.
#[test]
fn metadata_copied_from_an_older_version_never_lets_a_stale_etag_pass() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    let Some(python) = python() else {
        return;
    };
    let v1 = "{\"v\": 1}";
    let e1 = env.put("k", v1);
    let v2 = "{\"v\": 2, \"by\": \"boto3\"}";
    let copied = boto3(
        &env,
        &python,
        "old = s3.head_object(Bucket=bucket, Key='k.json')\n\
         s3.put_object(Bucket=bucket, Key='k.json', Body=sys.argv[1].encode(), \
         Metadata=old['Metadata'], ContentType=old['ContentType'])\n\
         print(s3.head_object(Bucket=bucket, Key='k.json')['Metadata'].get('etagstore_md5'))\n",
        &[v2],
    );
    // The test is about something: the stale MD5 is on the new version.
    assert_eq!(copied.trim(), e1);
    let e2 = md5_hex(v2.as_bytes());
    env.cmd()
        .args(["etag", "k"])
        .assert()
        .success()
        .stdout(line(&e2));
    for args in [
        vec!["set", "k", "{\"v\": 3}", "--etag", &e1],
        vec!["delete", "k", "--etag", &e1],
    ] {
        env.cmd()
            .args(&args)
            .assert()
            .code(3)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(format!(
                "the current ETag is \"{e2}\""
            )));
    }
    env.cmd().args(["get", "k"]).assert().success().stdout(v2);
    env.cmd()
        .args(["set", "k", "{\"v\": 3}", "--etag", &e2])
        .assert()
        .success()
        .stdout(line(&md5_hex(b"{\"v\": 3}")));
}

/// `set --etag E` learns the MD5 from a HEAD (S3's ETag equals the
/// recorded MD5), then another client replaces the document, copying the
/// old metadata along, before the PUT is sent: the PUT's If-Match on the
/// HEAD's version fails, the look after it (a HEAD that now proves
/// nothing, then a GET) finds the new bytes, and the command exits 3
/// naming their ETag. The other client's document stays.
#[cfg(feature = "test-hooks")]
#[test]
fn a_write_between_the_head_and_the_put_is_never_overwritten() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    let Some(python) = python() else {
        return;
    };
    let e1 = env.put("k", "{\"v\": 1}");
    let pause = Pause::new(env.root(), "BEFORE_SEND");
    let mut cmd = env.process();
    cmd.args(["set", "k", "{\"v\": 3}", "--etag", &e1])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    pause.arm(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    pause.wait_for(&mut child);
    let v2 = "{\"v\": 2, \"by\": \"boto3\"}";
    let copied = boto3(
        &env,
        &python,
        "old = s3.head_object(Bucket=bucket, Key='k.json')\n\
         s3.put_object(Bucket=bucket, Key='k.json', Body=sys.argv[1].encode(), \
         Metadata=old['Metadata'], ContentType=old['ContentType'])\n\
         print(s3.head_object(Bucket=bucket, Key='k.json')['Metadata'].get('etagstore_md5'))\n",
        &[v2],
    );
    assert_eq!(copied.trim(), e1);
    pause.release();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let e2 = md5_hex(v2.as_bytes());
    assert!(
        stderr.contains(&format!("the current ETag is \"{e2}\"")),
        "{stderr}"
    );
    env.cmd().args(["get", "k"]).assert().success().stdout(v2);
}

/// A missing bucket and a bad URL: exit 1 naming the bucket, exit 2.
#[test]
fn a_missing_bucket_is_exit_1_and_a_bad_url_exit_2() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    for args in [
        vec!["get", "k"],
        vec!["set", "k", "1", "--etag", ""],
        vec!["list"],
        vec!["delete", "k", "--etag", ""],
    ] {
        env.cmd_without_store()
            .args(["--store", "s3://no-such-bucket-here"])
            .args(&args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(
                "the S3 bucket 'no-such-bucket-here' does not exist",
            ));
    }
    env.cmd_without_store()
        .args(["--store", "s3://Bad_Bucket", "get", "k"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(one_error_line());
}

/// A prefix keeps two stores apart in one bucket; the same key encoding
/// and object names as every backend (`KEY.json` under the prefix);
/// ETAGSTORE_DIR works as --store.
#[test]
fn a_prefix_keeps_stores_apart_and_names_objects_as_every_backend_does() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    let Some(python) = python() else {
        return;
    };
    let bucket = env.s3_store().unwrap().bucket.clone();
    let team = format!("s3://{bucket}/team/a");
    env.cmd_without_store()
        .args(["--store", &team, "set", "k", "1", "--etag", ""])
        .assert()
        .success();
    env.cmd().args(["list"]).assert().success().stdout("");
    env.cmd_without_store()
        .args(["--store", &team, "list"])
        .assert()
        .success()
        .stdout("k\n");
    // ETAGSTORE_DIR names an S3 store as --store does.
    env.cmd_without_store()
        .env("ETAGSTORE_DIR", &team)
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("1")
        .stderr("");
    let names = boto3(
        &env,
        &python,
        "for o in s3.list_objects_v2(Bucket=bucket)['Contents']: print(o['Key'])\n",
        &[],
    );
    assert_eq!(names, "team/a/k.json\n");
}

/// A write whose answer is lost is exit 8 naming the ETag it would have,
/// on S3 as on Azure: through the fault proxy, for a compare-and-swap, a
/// create-only write and a conditional delete, both when the request
/// landed (answer dropped) and when it never did (closed unforwarded);
/// an answer later than ETAGSTORE_TIMEOUT is unknown too; `edit` resolves
/// a lost answer itself and increments exactly once.
#[test]
fn a_lost_answer_is_exit_8_and_edit_resolves_it() {
    use crate::fault_proxy::{Fault, Only, Proxy};
    let Some(env) = TestStore::s3() else {
        return;
    };
    let (old, new) = ("{\"n\": 1}", "{\"n\": 2}");
    let new_etag = md5_hex(new.as_bytes());
    let stored = |key: &str| {
        let out = env.cmd().args(["get", key]).output().unwrap();
        match out.status.code() {
            Some(0) => Some(text(&out.stdout)),
            Some(4) => None,
            other => panic!("get {key}: {other:?} {}", text(&out.stderr)),
        }
    };
    let through = |proxy: &Proxy| {
        let mut cmd = env.cmd();
        cmd.env("AWS_ENDPOINT_URL", proxy.url())
            .env("ETAGSTORE_TIMEOUT", "2");
        cmd
    };
    let faults = [
        (Fault::Drop, true),
        (Fault::Close, false),
        (Fault::Delay(Duration::from_secs(6)), true),
    ];
    for (round, (fault, landed)) in faults.into_iter().enumerate() {
        // set --etag E
        let etag = env.put("k", old);
        let proxy = Proxy::start(PORT, fault.clone(), Only::Writes, 1);
        through(&proxy)
            .args(["set", "k", new, "--etag", &etag])
            .assert()
            .code(8)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(format!(
                "if it did, its ETag is \"{new_etag}\""
            )));
        assert_eq!(proxy.broken(), 1);
        // A delayed answer arrives after the client gave up: wait for it.
        if let Fault::Delay(delay) = fault {
            thread::sleep(delay);
        }
        let expected = if landed { new } else { old };
        assert_eq!(stored("k").as_deref(), Some(expected), "{fault:?}");

        // set --etag ''
        let created = format!("c{round}");
        let proxy = Proxy::start(PORT, fault.clone(), Only::Writes, 1);
        through(&proxy)
            .args(["set", &created, new, "--etag", ""])
            .assert()
            .code(8)
            .stderr(one_error_line());
        if let Fault::Delay(delay) = fault {
            thread::sleep(delay);
        }
        assert_eq!(
            stored(&created).as_deref(),
            landed.then_some(new),
            "{fault:?}"
        );

        // delete --etag E
        let etag = env.put("d", old);
        let proxy = Proxy::start(PORT, fault.clone(), Only::Writes, 1);
        through(&proxy)
            .args(["delete", "d", "--etag", &etag])
            .assert()
            .code(8)
            .stderr(one_error_line())
            .stderr(predicate::str::contains("if it did, the key is gone"));
        if let Fault::Delay(delay) = fault {
            thread::sleep(delay);
        }
        assert_eq!(
            stored("d").as_deref(),
            (!landed).then_some(old),
            "{fault:?}"
        );
    }
    for fault in [Fault::Drop, Fault::Close] {
        env.put("counter", "{\"n\": 0}");
        let proxy = Proxy::start(PORT, fault.clone(), Only::Writes, 1);
        through(&proxy)
            .args(["edit", "counter", "--jq", ".n += 1"])
            .assert()
            .success()
            .stdout(line(&md5_hex(b"{\n  \"n\": 1\n}\n")));
        assert_eq!(proxy.broken(), 1);
        assert_eq!(
            stored("counter").as_deref(),
            Some("{\n  \"n\": 1\n}\n"),
            "{fault:?}"
        );
    }
}

/// `watch` polls S3 with HEAD and wakes on a write by another process
/// with the new ETag (a write of the same bytes before it, a new S3
/// version with the same ETag, must not end it early), and `--etag ''`
/// waits for a key to appear.
#[test]
fn watch_wakes_on_a_change_and_not_on_the_same_bytes() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    let etag = env.put("k", "{\"v\": 1}");
    let watcher = env
        .process()
        .args(["watch", "k", "--etag", &etag, "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The same bytes again: a new S3 version, the same etagstore ETag.
    env.put("k", "{\"v\": 1}");
    let new = env.put("k", "{\"v\": 2}");
    let output = watcher.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), line(&new));
    assert_eq!(text(&output.stderr), "");

    let appear = env
        .process()
        .args(["watch", "fresh", "--etag", "", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fresh = env.put("fresh", "[]");
    let output = appear.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), line(&fresh));
}

/// S3's 409 ConditionalRequestConflict (conditional writes on one key in
/// flight at once; moto never sends it, so the fault proxy does, in place
/// of the first write) is no failure: etagstore reads again, the
/// precondition still holds, the write is sent again and lands. The same
/// for a conditional delete and a create-only write.
#[test]
fn a_409_conditional_request_conflict_reads_again_and_retries() {
    use crate::fault_proxy::{Fault, Only, Proxy};
    let Some(env) = TestStore::s3() else {
        return;
    };
    let conflict = || {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>\
                    <Code>ConditionalRequestConflict</Code>\
                    <Message>A conflicting conditional operation is currently in progress</Message></Error>";
        Fault::Answer(
            format!(
                "HTTP/1.1 409 Conflict\r\nContent-Type: application/xml\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    };
    let etag = env.put("k", "[1]");
    let etag2 = md5_hex(b"[2]");
    let cases = [
        vec!["set", "k", "[2]", "--etag", &etag],
        vec!["set", "new", "[3]", "--etag", ""],
        vec!["delete", "k", "--etag", &etag2],
    ];
    for args in &cases {
        let proxy = Proxy::start(PORT, conflict(), Only::Writes, 1);
        env.cmd()
            .env("AWS_ENDPOINT_URL", proxy.url())
            .args(args)
            .assert()
            .success()
            .stderr("");
        assert_eq!(proxy.broken(), 1, "{args:?}");
    }
    env.cmd().args(["get", "k"]).assert().code(4);
    env.cmd()
        .args(["get", "new"])
        .assert()
        .success()
        .stdout("[3]");
}

/// An `http://` endpoint without AWS_ALLOW_HTTP=true: the HTTP client
/// refuses to send anything, so this is a usage error (exit 2) naming the
/// fix, before any request, never "outcome unknown" (exit 8).
#[test]
fn an_http_endpoint_without_aws_allow_http_is_exit_2_before_sending() {
    let Some(env) = TestStore::s3() else {
        return;
    };
    for args in [
        vec!["set", "k", "1", "--etag", ""],
        vec!["get", "k"],
        vec!["delete", "k", "--etag", "*"],
    ] {
        env.cmd()
            .env_remove("AWS_ALLOW_HTTP")
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains("AWS_ALLOW_HTTP=true"));
    }
    env.cmd().args(["get", "k"]).assert().code(4);
}

/// Instance credentials (EC2's metadata service, plain HTTP on a
/// link-local address) are fetched even though the S3 endpoint is https
/// and AWS_ALLOW_HTTP is not set: object_store asks for a client of its own
/// for them. Here a fake metadata service on 127.0.0.1 hands out
/// credentials; the https endpoint is a closed port, so the command then
/// fails to connect (exit 1), after the credentials were fetched.
#[test]
fn instance_credentials_come_over_http_while_the_endpoint_is_https() {
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    let env = TestStore::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let imds = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            let body = if target.ends_with("/api/token") {
                "token".to_string()
            } else if target.ends_with("/security-credentials/") {
                "role".to_string()
            } else if target.ends_with("/security-credentials/role") {
                counter.fetch_add(1, Ordering::SeqCst);
                "{\"AccessKeyId\":\"AKIDEXAMPLE\",\"SecretAccessKey\":\"secret\",\
                 \"Token\":\"session\",\"Expiration\":\"2099-01-01T00:00:00Z\"}"
                    .to_string()
            } else {
                String::new()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let closed = crate::fault_proxy::closed_port();
    let output = env
        .cmd_without_store()
        .env("AWS_ENDPOINT_URL", format!("https://127.0.0.1:{closed}"))
        .env("AWS_METADATA_ENDPOINT", format!("http://127.0.0.1:{imds}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .args(["--store", "s3://some-bucket", "get", "k"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_error_line())
        .get_output()
        .clone();
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("URL scheme is not allowed"), "{stderr}");
    assert!(served.load(Ordering::SeqCst) >= 1, "{stderr}");
}
