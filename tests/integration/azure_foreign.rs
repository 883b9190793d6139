//! Azure with other writers: Microsoft's Python SDK (azure-storage-blob
//! 12.31.1, installed by scripts/python-sdk.sh into .venv-sdk/) against
//! Azurite. Each case of issue 10's Azure section: metadata that lies about
//! the bytes is never trusted, so a stale `--etag` never passes and the right
//! one always does. Then what another writer set is kept, awkward keys and
//! prefixes, and an idle `watch` that does not download the document again.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use predicates::prelude::*;

use crate::azurite;
use crate::common::{line, md5_hex, one_error_line, skip, TestStore};

/// The SDK's Python, or `None` (with SKIPPED on standard error) when
/// scripts/python-sdk.sh has not been run; CI=true makes that a failure.
fn python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-sdk/bin/python");
    if python.exists() {
        return Some(python);
    }
    skip(&format!(
        "{} is missing (run scripts/python-sdk.sh)",
        python.display()
    ));
    None
}

/// An Azurite store and the SDK, or `None` when either is missing.
fn setup() -> Option<(TestStore, Sdk)> {
    let env = TestStore::azurite()?;
    let python = python()?;
    let azurite = env.azurite_store().unwrap().clone();
    Some((
        env,
        Sdk {
            python,
            port: azurite.port,
            container: azurite.container,
        },
    ))
}

/// Runs small Python scripts with a `blob(name)` client of the test's container.
struct Sdk {
    python: PathBuf,
    port: u16,
    container: String,
}

/// What every script starts with. The API version is pinned: the SDK's
/// default is newer than Azurite 3.35.0 accepts without --skipApiVersionCheck.
const PRELUDE: &str = r#"
import hashlib, json, os, sys
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings
conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        + os.environ["AZ_KEY"] + ";BlobEndpoint=http://127.0.0.1:"
        + os.environ["AZ_PORT"] + "/devstoreaccount1;")
service = BlobServiceClient.from_connection_string(conn, api_version="2021-08-06")
container = service.get_container_client(os.environ["AZ_CONTAINER"])
def blob(name):
    return container.get_blob_client(name)
"#;

impl Sdk {
    fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg("-c")
            .arg(format!("{PRELUDE}\n{script}"))
            .env("AZ_KEY", azurite::KEY)
            .env("AZ_PORT", self.port.to_string())
            .env("AZ_CONTAINER", &self.container);
        cmd
    }

    /// Runs `script`; returns its standard output, trimmed. It must succeed.
    fn run(&self, script: &str) -> String {
        let out = self.command(script).output().unwrap();
        assert!(
            out.status.success(),
            "python failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

/// A correct optimistic update by the SDK's own rules that carries the old
/// metadata (and with it the old `etagstore_md5`) along.
fn sdk_update_copying_metadata(sdk: &Sdk, name: &str, doc: &str) {
    sdk.run(&format!(
        r#"
b = blob({name:?})
props = b.get_blob_properties()
b.upload_blob({doc:?}.encode(), overwrite=True, metadata=props.metadata,
              etag=props.etag, match_condition=MatchConditions.IfNotModified)
"#
    ));
}

#[test]
fn after_an_sdk_upload_that_copies_old_metadata_the_old_etag_is_stale() {
    let Some((env, sdk)) = setup() else {
        return;
    };
    let v1 = "{\"n\": 1}";
    let e1 = md5_hex(v1.as_bytes());
    env.cmd()
        .args(["set", "k", v1, "--etag", ""])
        .assert()
        .success()
        .stdout(line(&e1));
    let v2 = "{\"n\": 2}";
    let e2 = md5_hex(v2.as_bytes());
    sdk_update_copying_metadata(&sdk, "k.json", v2);

    // The old ETag is stale: set and delete refuse it, naming the real one.
    for args in [vec!["set", "k", "{\"n\": 9}"], vec!["delete", "k"]] {
        env.cmd()
            .args(&args)
            .args(["--etag", &e1])
            .assert()
            .code(3)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(format!(
                "the current ETag is \"{e2}\""
            )));
    }
    env.cmd().args(["get", "k"]).assert().success().stdout(v2);
    // Every command reports the ETag of the bytes.
    env.cmd()
        .args(["etag", "k"])
        .assert()
        .success()
        .stdout(line(&e2));
    env.cmd()
        .args(["list", "-l"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!("{e2}\t")));
    // The right ETag is accepted.
    let v3 = "{\"n\": 3}";
    env.cmd()
        .args(["set", "k", v3, "--etag", &e2])
        .assert()
        .success()
        .stdout(line(&md5_hex(v3.as_bytes())))
        .stderr("");
    // And edit is never stuck on such a blob.
    sdk_update_copying_metadata(&sdk, "k.json", "{\"n\": 10}");
    env.cmd()
        .args(["edit", "k", "--jq", ".n += 1"])
        .assert()
        .success()
        .stderr("");
    let out = env.cmd().args(["get", "k"]).output().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["n"], 11);
    // A delete with the right ETag deletes.
    let now = String::from_utf8(env.cmd().args(["etag", "k"]).output().unwrap().stdout).unwrap();
    env.cmd()
        .args(["delete", "k", "--etag", now.trim()])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    env.cmd().args(["get", "k"]).assert().code(4);
}

#[test]
fn foreign_etagstore_metadata_is_never_trusted() {
    let Some((env, sdk)) = setup() else {
        return;
    };
    let never = md5_hex(b"{\"never\": \"stored\"}");
    let v1 = "{\"v\": 1}";
    let e1 = md5_hex(v1.as_bytes());
    let v2 = "{\"v\": 2}";
    let e2 = md5_hex(v2.as_bytes());
    // Each case leaves the bytes v2 under metadata that names another MD5.
    let cases = [
        // The MD5 of a document that was never stored.
        format!("blob('k.json').set_blob_metadata({{'etagstore_md5': '{never}'}})"),
        // set_blob_metadata({**stale, ...}) brings an old MD5 back.
        format!(
            "b = blob('k.json')\n\
             b.set_blob_metadata({{**{{'etagstore_md5': '{e1}'}}, 'owner': 'py'}})"
        ),
        // An upper-case name.
        format!(
            "blob('k.json').upload_blob({v2:?}.encode(), overwrite=True, \
             metadata={{'ETAGSTORE_MD5': '{e1}'}})"
        ),
        // A value with a trailing space.
        format!(
            "blob('k.json').upload_blob({v2:?}.encode(), overwrite=True, \
             metadata={{'etagstore_md5': '{e1} '}})"
        ),
    ];
    for case in &cases {
        env.put("k", v1);
        env.cmd()
            .args(["set", "k", v2, "--etag", &e1])
            .assert()
            .success();
        sdk.run(case);
        for lie in [&never, &e1] {
            for args in [vec!["set", "k", "[0]"], vec!["delete", "k"]] {
                env.cmd()
                    .args(&args)
                    .args(["--etag", lie])
                    .assert()
                    .code(3)
                    .stdout("")
                    .stderr(one_error_line())
                    .stderr(predicate::str::contains(format!(
                        "the current ETag is \"{e2}\""
                    )));
            }
        }
        env.cmd().args(["get", "k"]).assert().success().stdout(v2);
        env.cmd()
            .args(["list", "-l"])
            .assert()
            .success()
            .stdout(predicate::str::starts_with(format!("{e2}\t")));
    }
}

#[test]
fn a_mixed_race_of_edit_loops_and_sdk_if_match_workers_loses_no_increment() {
    let Some((env, sdk)) = setup() else {
        return;
    };
    env.put("counter", "{\"n\": 0}");
    // 3 shell loops x 20 edits + 2 Python workers x 20 = 100 increments.
    let bin = TestStore::bin();
    let store = env.store();
    let shells: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(r#"i=0; while [ $i -lt 20 ]; do "$0" --store "$1" edit counter --jq '.n += 1' >/dev/null || exit 1; i=$((i+1)); done"#)
                .arg(bin)
                .arg(&store)
                .env("AZURE_STORAGE_USE_EMULATOR", "true")
                .env("AZURE_STORAGE_ACCOUNT_NAME", azurite::ACCOUNT)
                .env("AZURE_STORAGE_ACCOUNT_KEY", azurite::KEY)
                .env(
                    "AZURITE_BLOB_STORAGE_URL",
                    format!("http://127.0.0.1:{}", sdk.port),
                )
                .stdin(Stdio::null());
            cmd.spawn().unwrap()
        })
        .collect();
    // Read, add one, write back If-Match with the metadata as read (old MD5 included).
    let worker = r#"
b = blob("counter.json")
done = 0
while done < 20:
    d = b.download_blob()
    doc = json.loads(d.readall())
    doc["n"] += 1
    try:
        b.upload_blob(json.dumps(doc).encode(), overwrite=True,
                      metadata=d.properties.metadata, etag=d.properties.etag,
                      match_condition=MatchConditions.IfNotModified)
        done += 1
    except ResourceModifiedError:
        pass
"#;
    let pythons: Vec<_> = (0..2)
        .map(|_| sdk.command(worker).stdin(Stdio::null()).spawn().unwrap())
        .collect();
    for mut child in shells.into_iter().chain(pythons) {
        let status = child.wait().unwrap();
        assert!(status.success(), "a worker failed: {status}");
    }
    let out = env.cmd().args(["get", "counter"]).output().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["n"], 100, "lost increments");
}

#[test]
fn an_etagstore_write_keeps_the_metadata_and_headers_others_set() {
    let Some((env, sdk)) = setup() else {
        return;
    };
    sdk.run(
        r#"
blob("p.json").upload_blob(b'{"n": 1}', metadata={"owner": "py", "Team": "blue"},
    content_settings=ContentSettings(cache_control="max-age=60", content_language="en",
        content_disposition="inline", content_type="application/json; charset=utf-8"))
"#,
    );
    let check = r#"
p = blob("p.json").get_blob_properties()
c = p.content_settings
meta = {k.lower(): v for k, v in p.metadata.items()}
print(meta.get("owner"), meta.get("team"), c.cache_control, c.content_language,
      c.content_disposition, c.content_type, sorted(meta))
"#;
    let kept = "py blue max-age=60 en inline application/json; charset=utf-8 \
                ['etagstore_md5', 'owner', 'team']";
    let etag = md5_hex(b"{\"n\": 1}");
    for args in [
        vec!["set", "p", "{\"n\": 2}", "--etag", etag.as_str()],
        vec!["set", "p", "{\"n\": 3}", "--etag", "*"],
        vec!["edit", "p", "--jq", ".n += 1"],
        vec!["set-unsafe", "p", "{\"n\": 5}"],
    ] {
        env.cmd().args(&args).assert().success().stderr("");
        assert_eq!(sdk.run(check), kept, "after {args:?}");
    }
}

#[test]
fn a_stored_blob_that_is_not_json_gets_the_exit_codes_of_the_directory_store() {
    let Some((env, sdk)) = setup() else {
        return;
    };
    let bytes = b"not json";
    let etag = md5_hex(bytes);
    let cases = [
        vec!["get", "k"],
        vec!["get", "k", "--json"],
        vec!["etag", "k"],
        vec!["edit", "k", "--jq", "."],
        vec!["list", "-l"],
        vec!["watch", "k", "--etag", ""],
        vec!["set", "k", "1", "--etag", etag.as_str()],
        vec!["delete", "k", "--etag", etag.as_str()],
    ];
    for args in cases {
        let dir = TestStore::new();
        std::fs::create_dir_all(dir.store()).unwrap();
        std::fs::write(dir.path("k"), bytes).unwrap();
        let on_dir = dir.cmd().args(&args).output().unwrap();
        sdk.run("blob('k.json').upload_blob(b'not json', overwrite=True)");
        let on_azure = env.cmd().args(&args).output().unwrap();
        assert_eq!(
            on_azure.status.code(),
            on_dir.status.code(),
            "{args:?}: {}",
            String::from_utf8_lossy(&on_azure.stderr)
        );
        assert_eq!(
            on_azure.stdout.is_empty(),
            on_dir.stdout.is_empty(),
            "{args:?}"
        );
    }
}

/// `cmd` authorised by the account SAS instead of the Shared Key.
fn with_sas(mut cmd: assert_cmd::Command) -> assert_cmd::Command {
    cmd.env_remove("AZURE_STORAGE_ACCOUNT_KEY")
        .env("AZURE_STORAGE_SAS_KEY", azurite::account_sas());
    cmd
}

/// Keys whose blob names hold `%` escapes, and a plain one.
const AWKWARD_KEYS: [&str; 7] = [
    "plain",
    "users/alice",
    "with space",
    "ünïcødé",
    "100%",
    "til~de",
    "q?and#hash",
];

#[test]
fn conditional_deletes_of_awkward_keys_work_with_a_shared_key_and_with_sas() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    for sas in [false, true] {
        for key in AWKWARD_KEYS {
            let doc = format!("{{\"key\": {key:?}}}");
            let etag = md5_hex(doc.as_bytes());
            env.put(key, &doc);
            let cmd = |args: &[&str]| {
                let mut cmd = env.cmd();
                cmd.args(args);
                if sas {
                    with_sas(cmd)
                } else {
                    cmd
                }
            };
            cmd(&["delete", key, "--etag", &md5_hex(b"stale")])
                .assert()
                .code(3)
                .stdout("")
                .stderr(one_error_line());
            cmd(&["delete", key, "--etag", &etag])
                .assert()
                .success()
                .stdout("")
                .stderr("");
            cmd(&["get", key]).assert().code(4).stdout("");
            env.put(key, &doc);
            cmd(&["delete", key, "--etag", "*"])
                .assert()
                .success()
                .stderr("");
            cmd(&["get", key]).assert().code(4).stdout("");
        }
    }
}

#[test]
fn a_store_whose_prefix_has_awkward_characters_lists_every_key() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let container = env.azurite_store().unwrap().container.clone();
    let mut keys: Vec<&str> = AWKWARD_KEYS.to_vec();
    keys.sort();
    let mut tested = 0;
    for prefix in [
        "team-a", "tëam", "a%b", "a%2Fb", "a~b", "a#b", "a?b", "x/ü/y", "sp ace",
    ] {
        let store = format!("az://{container}/{prefix}");
        let cmd = |args: &[&str]| {
            let mut cmd = env.cmd_without_store();
            cmd.arg("--store").arg(&store).args(args);
            cmd
        };
        // A prefix the address rules refuse is a usage error, and nothing
        // else happens; the rest must list what they hold.
        let first = cmd(&["set", keys[0], "{}", "--etag", ""]).output().unwrap();
        if first.status.code() == Some(2) {
            eprintln!(
                "prefix {prefix:?} is refused: {}",
                String::from_utf8_lossy(&first.stderr)
            );
            continue;
        }
        assert!(first.status.success(), "{prefix:?}: {first:?}");
        tested += 1;
        for key in &keys[1..] {
            cmd(&["set", key, "{}", "--etag", ""]).assert().success();
        }
        let listed: String = keys.iter().map(|key| format!("{key}\n")).collect();
        cmd(&["list"]).assert().success().stdout(listed).stderr("");
        let long = cmd(&["list", "-l"]).assert().success().stderr("");
        let long = String::from_utf8(long.get_output().stdout.clone()).unwrap();
        assert_eq!(long.lines().count(), keys.len(), "{prefix:?}: {long}");
        for (line, key) in long.lines().zip(&keys) {
            assert!(line.starts_with(&md5_hex(b"{}")), "{prefix:?}: {line}");
            assert!(line.ends_with(&format!("\t{key}")), "{prefix:?}: {line}");
        }
        cmd(&["list", "users/"])
            .assert()
            .success()
            .stdout("users/alice\n");
        let export = cmd(&["export"]).assert().success().stderr("");
        let lines = String::from_utf8(export.get_output().stdout.clone()).unwrap();
        assert_eq!(lines.lines().count(), keys.len(), "{prefix:?}: {lines}");
    }
    assert!(tested >= 1, "no prefix was accepted");
}

/// A TCP proxy on 127.0.0.1 to Azurite that counts the bytes Azurite sends.
fn counting_proxy(port: u16) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let counter = Arc::clone(&counter);
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || {
                let _ = std::io::copy(&mut client_read, &mut server_write);
                let _ = server_write.shutdown(std::net::Shutdown::Write);
            });
            thread::spawn(move || {
                let (mut server, mut client) = (server, client);
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match server.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            if client.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (proxy_port, received)
}

#[test]
fn an_idle_watch_downloads_the_document_at_most_once() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let size = 5 << 20;
    let doc = format!("{{\"s\": \"{}\"}}", "x".repeat(size));
    let etag = env.put("big", &doc);
    let (port, received) = counting_proxy(env.azurite_store().unwrap().port);
    env.cmd()
        .env(
            "AZURITE_BLOB_STORAGE_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .args(["watch", "big", "--timeout", "3"])
        .assert()
        .code(7)
        .stdout("")
        .stderr(one_error_line());
    let received = received.load(Ordering::Relaxed);
    // One body, plus headers of the polls.
    assert!(
        (size as u64..size as u64 + (1 << 20)).contains(&received),
        "an idle watch received {received} bytes for a {size}-byte document"
    );
    // A change is still seen, and its body read.
    let watch = env
        .process()
        .args(["watch", "big", "--etag", &etag])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    env.put("big", "{\"s\": \"changed\"}");
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        out.stdout,
        line(&md5_hex(b"{\"s\": \"changed\"}")).as_bytes()
    );
}

#[test]
fn a_content_md5_set_by_another_client_is_not_trusted_either() {
    let Some((env, sdk)) = setup() else {
        return;
    };
    let doc = "{\"v\": 1}";
    let etag = env.put("k", doc);
    let never = b"{\"never\": \"stored\"}";
    // Set Blob Properties stores any Content-MD5 without looking at the bytes.
    let shown = sdk.run(
        r#"
b = blob("k.json")
b.set_http_headers(ContentSettings(content_type="application/json",
    content_md5=bytearray(hashlib.md5(b'{"never": "stored"}').digest())))
print(bytes(b.get_blob_properties().content_settings.content_md5).hex())
"#,
    );
    assert_eq!(shown, md5_hex(never));
    for args in [vec!["set", "k", "[0]"], vec!["delete", "k"]] {
        env.cmd()
            .args(&args)
            .args(["--etag", &md5_hex(never)])
            .assert()
            .code(3)
            .stderr(predicate::str::contains(format!(
                "the current ETag is \"{etag}\""
            )));
    }
    env.cmd()
        .args(["etag", "k"])
        .assert()
        .success()
        .stdout(line(&etag));
    env.cmd()
        .args(["list", "-l"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!("{etag}\t")));
}

#[test]
fn edit_reads_the_document_once_although_its_write_is_conditioned_on_the_bytes() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let size = 1 << 20;
    env.put(
        "big",
        format!("{{\"n\": 1, \"s\": \"{}\"}}", "x".repeat(size)),
    );
    let (port, received) = counting_proxy(env.azurite_store().unwrap().port);
    env.cmd()
        .env(
            "AZURITE_BLOB_STORAGE_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .args(["edit", "big", "--jq", ".n += 1"])
        .assert()
        .success()
        .stderr("");
    let received = received.load(Ordering::Relaxed);
    assert!(
        (size as u64..size as u64 * 3 / 2).contains(&received),
        "edit received {received} bytes for a {size}-byte document"
    );
}
