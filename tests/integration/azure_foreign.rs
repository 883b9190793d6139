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
use crate::common::{line, md5_hex, one_error_line, TestStore};

/// The SDK's Python, or `None` (with SKIPPED on standard error) when
/// scripts/python-sdk.sh has not been run; CI=true makes that a failure.
fn python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-sdk/bin/python");
    if python.exists() {
        return Some(python);
    }
    let message = format!(
        "{} is missing (run scripts/python-sdk.sh)",
        python.display()
    );
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{message}; CI=true, so this test fails instead of skipping");
    }
    eprintln!("SKIPPED: {message}");
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
        assert_eq!(on_azure.stdout.is_empty(), on_dir.stdout.is_empty(), "{args:?}");
    }
}
