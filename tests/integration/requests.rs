//! How many requests each command sends to Azure (Azurite) and S3 (moto),
//! counted by a recording proxy on 127.0.0.1 between etagstore and the real
//! server: every request is forwarded whole, its method, target, status and
//! the size of its answer written down. The counts are the ones
//! docs/azure.md, docs/s3.md and docs/benchmarks.md show.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::common::{md5_hex, one_error_line, TestStore};
use crate::fault_proxy::{connection_close, read_request};

/// One request the proxy forwarded.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// The request target (path and query).
    target: String,
    status: u16,
    /// The bytes of the answer's body.
    body: usize,
}

/// Forwards every request to 127.0.0.1:`upstream`, one request per
/// connection (`Connection: close` both ways), and records it.
struct Recorder {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    fn start(upstream: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (Arc::clone(&stop), Arc::clone(&seen));
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let seen = Arc::clone(&seen2);
                thread::spawn(move || {
                    let _ = forward(client, upstream, &seen);
                });
            }
        });
        Recorder { port, stop, seen }
    }

    /// The requests recorded since the last call, in the order answered.
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn forward(mut client: TcpStream, upstream: u16, seen: &Mutex<Vec<Seen>>) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (head, body) = read_request(&mut client, None)?;
    let mut words = head.split(' ');
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    server.write_all(connection_close(&head).as_bytes())?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |end| end + 4);
    let answer_head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = answer_head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    seen.lock().unwrap().push(Seen {
        method,
        target,
        status,
        body: answer.len() - end,
    });
    client.write_all(connection_close(&answer_head).as_bytes())?;
    client.write_all(&answer[end..])?;
    client.shutdown(Shutdown::Both)
}

/// A store on Azurite or moto and a recorder in front of its server.
struct Counted {
    env: TestStore,
    recorder: Recorder,
}

impl Counted {
    fn azurite() -> Option<Counted> {
        let env = TestStore::azurite()?;
        let recorder = Recorder::start(env.azurite_store().unwrap().port);
        Some(Counted { env, recorder })
    }

    fn s3() -> Option<Counted> {
        let env = TestStore::s3()?;
        let recorder = Recorder::start(env.s3_store().unwrap().port);
        Some(Counted { env, recorder })
    }

    /// etagstore on this store, through the recorder.
    fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cmd();
        if self.env.s3_store().is_some() {
            cmd.env("AWS_ENDPOINT_URL", self.recorder.url());
        } else {
            cmd.env("AZURITE_BLOB_STORAGE_URL", self.recorder.url());
        }
        cmd
    }

    /// The requests since the last look, in order, as the docs' tables
    /// name them: the method, `LIST` for a listing, and the status when it
    /// is not a success (`GET 404`).
    fn requests(&self) -> Vec<String> {
        self.recorder
            .take()
            .into_iter()
            .map(|seen| {
                let listing =
                    seen.target.contains("comp=list") || seen.target.contains("list-type=2");
                let method = if listing { "LIST" } else { &seen.method };
                if (200..300).contains(&seen.status) {
                    method.to_string()
                } else {
                    format!("{method} {}", seen.status)
                }
            })
            .collect()
    }

    /// The methods of the requests since the last look, in order.
    fn methods(&self) -> Vec<String> {
        self.recorder.take().into_iter().map(|s| s.method).collect()
    }

    /// Writes `doc` under `key` as another tool would: one request, no
    /// etagstore metadata.
    fn foreign_put(&self, key: &str, doc: &str) {
        let name = format!("{key}.json");
        if let Some(s3) = self.env.s3_store() {
            crate::s3::put_object(s3.port, &s3.bucket, &name, doc.as_bytes());
        } else {
            let azurite = self.env.azurite_store().unwrap();
            crate::azurite::put_blob(azurite.port, &azurite.container, &name, doc.as_bytes());
        }
    }
}

/// Each command of the docs' request tables, run once through the
/// recorder: (the command, its exit code, the requests it sent).
fn requests_per_command(store: &Counted) -> Vec<(String, i32, Vec<String>)> {
    let mut table = Vec::new();
    let mut run = |label: &str, args: &[&str]| {
        let out = store.cmd().args(args).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        table.push((label.to_string(), code, store.requests()));
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end()
            .to_string()
    };
    let a = run(
        "set k A --etag ''",
        &["set", "k", "{\"n\": 1}", "--etag", ""],
    );
    run("get k", &["get", "k"]);
    run("etag k", &["etag", "k"]);
    run("get of a missing key", &["get", "nothing"]);
    let b = run(
        "set k B --etag E",
        &["set", "k", "{\"n\": 2}", "--etag", &a],
    );
    run(
        "set k C --etag STALE",
        &["set", "k", "{\"n\": 3}", "--etag", &a],
    );
    run(
        "set k C --etag ''",
        &["set", "k", "{\"n\": 3}", "--etag", ""],
    );
    run(
        "set k C --etag '*'",
        &["set", "k", "{\"n\": 3}", "--etag", "*"],
    );
    run("set-unsafe k D", &["set-unsafe", "k", "{\"n\": 4}"]);
    let e = run("edit k --jq '.n += 1'", &["edit", "k", "--jq", ".n += 1"]);
    run("delete k --etag STALE", &["delete", "k", "--etag", &b]);
    run("delete k --etag E", &["delete", "k", "--etag", &e]);
    store.foreign_put("f", "{\"by\": \"another tool\"}");
    store.requests();
    let f = md5_hex(b"{\"by\": \"another tool\"}");
    run(
        "set f B --etag E (f written by another tool)",
        &["set", "f", "{}", "--etag", &f],
    );
    run("list", &["list"]);
    run("list -l (1 key)", &["list", "-l"]);
    assert_eq!(a, md5_hex(b"{\"n\": 1}"), "set --etag ''");
    assert_eq!(b, md5_hex(b"{\"n\": 2}"), "set --etag E");
    table
}

/// The table as the docs show it, one line a command.
fn show(table: &[(String, i32, Vec<String>)]) -> String {
    table
        .iter()
        .map(|(label, code, requests)| format!("{label}: exit {code}: {}\n", requests.join(", ")))
        .collect()
}

/// docs/azure.md, "Requests per command": the GET of `set --etag E` is
/// what makes the condition exact (no header Azure keeps can prove the MD5).
#[test]
fn on_azurite_each_command_sends_the_requests_the_docs_show() {
    let Some(store) = Counted::azurite() else {
        return;
    };
    let expected = "\
set k A --etag '': exit 0: PUT
get k: exit 0: GET
etag k: exit 0: GET
get of a missing key: exit 4: GET 404, LIST
set k B --etag E: exit 0: GET, PUT
set k C --etag STALE: exit 3: GET
set k C --etag '': exit 3: PUT 409, GET
set k C --etag '*': exit 0: HEAD, PUT
set-unsafe k D: exit 0: HEAD, PUT
edit k --jq '.n += 1': exit 0: GET, PUT
delete k --etag STALE: exit 3: GET
delete k --etag E: exit 0: GET, DELETE
set f B --etag E (f written by another tool): exit 0: GET, PUT
list: exit 0: LIST
list -l (1 key): exit 0: LIST, GET
";
    assert_eq!(show(&requests_per_command(&store)), expected);
}

/// docs/s3.md, "Requests per command": a document etagstore wrote last is
/// compare-and-swapped after a HEAD (S3's ETag equals the MD5 it recorded),
/// one written by another tool after a GET of its bytes.
#[test]
fn on_s3_each_command_sends_the_requests_the_docs_show() {
    let Some(store) = Counted::s3() else {
        return;
    };
    let expected = "\
set k A --etag '': exit 0: PUT
get k: exit 0: GET
etag k: exit 0: GET
get of a missing key: exit 4: GET 404, LIST
set k B --etag E: exit 0: HEAD, PUT
set k C --etag STALE: exit 3: HEAD
set k C --etag '': exit 3: PUT 412, HEAD
set k C --etag '*': exit 0: HEAD, PUT
set-unsafe k D: exit 0: HEAD, PUT
edit k --jq '.n += 1': exit 0: GET, PUT
delete k --etag STALE: exit 3: HEAD
delete k --etag E: exit 0: HEAD, DELETE
set f B --etag E (f written by another tool): exit 0: HEAD, GET, PUT
list: exit 0: LIST
list -l (1 key): exit 0: LIST, GET
";
    assert_eq!(show(&requests_per_command(&store)), expected);
}

/// The bytes of the answers to one `set --etag E` of a 1 MiB document that
/// etagstore wrote last.
fn answer_bytes_of_a_set(store: &Counted) -> usize {
    let doc = format!("{{\"s\": \"{}\"}}", "x".repeat(1 << 20));
    let etag = store.env.put("big", &doc);
    store.recorder.take();
    store
        .cmd()
        .args(["set", "big", "{}", "--etag", &etag])
        .assert()
        .success()
        .stderr("");
    store.recorder.take().iter().map(|s| s.body).sum()
}

#[test]
fn on_s3_a_set_etag_of_etagstores_own_document_downloads_none_of_it() {
    let Some(store) = Counted::s3() else {
        return;
    };
    let received = answer_bytes_of_a_set(&store);
    assert!(received < 64 * 1024, "received {received} bytes");
}

fn get_is_one_get_and_set_etag_at_most_two_requests(store: &Counted) {
    let doc = "{\"n\": 1}";
    let etag = store.env.put("k", doc);
    store.recorder.take();

    store
        .cmd()
        .args(["get", "k"])
        .assert()
        .success()
        .stdout(doc)
        .stderr("");
    assert_eq!(store.methods(), ["GET"], "get");

    // The document etagstore wrote last, with its ETag: at most 2 requests.
    let next = "{\"n\": 2}";
    store
        .cmd()
        .args(["set", "k", next, "--etag", &etag])
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(next.as_bytes())))
        .stderr("");
    let seen = store.recorder.take();
    assert!(
        seen.len() <= 2 && seen.last().is_some_and(|s| s.method == "PUT"),
        "set --etag E sent {seen:?}"
    );

    // A stale ETag: exit 3 naming the current one, and no write sent.
    store
        .cmd()
        .args(["set", "k", "{\"n\": 3}", "--etag", &etag])
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicates::str::contains(md5_hex(next.as_bytes())));
    let seen = store.recorder.take();
    assert!(
        seen.iter().all(|s| s.method != "PUT"),
        "a stale set --etag sent {seen:?}"
    );
    store
        .env
        .cmd()
        .args(["get", "k"])
        .assert()
        .success()
        .stdout(next);
}

#[test]
fn on_azurite_get_is_one_get_and_set_etag_at_most_two_requests() {
    if let Some(store) = Counted::azurite() {
        get_is_one_get_and_set_etag_at_most_two_requests(&store);
    }
}

#[test]
fn on_s3_get_is_one_get_and_set_etag_at_most_two_requests() {
    if let Some(store) = Counted::s3() {
        get_is_one_get_and_set_etag_at_most_two_requests(&store);
    }
}
