//! The same scenarios on every backend: a directory, a fresh Azurite
//! container and a fresh bucket of the local S3 server. Each scenario is
//! one function taking a `TestStore`; the `every_backend!` macro makes a
//! `dir`, an `azurite` and an `s3` test of it. Then what only Azure has: URLs, a missing container, bad credentials, a stopped service.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::azurite;
use crate::common::{line, md5_hex, one_error_line, race, TestStore};

/// `mod NAME { dir, azurite, s3 }`: the scenario `NAME` on each backend.
macro_rules! every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn dir() {
                super::$name(&crate::common::TestStore::new());
            }

            #[test]
            fn azurite() {
                if let Some(env) = crate::common::TestStore::azurite() {
                    super::$name(&env);
                }
            }

            #[test]
            fn s3() {
                if let Some(env) = crate::common::TestStore::s3() {
                    super::$name(&env);
                }
            }
        }
    )*};
}

every_backend!(
    preconditions_hold_on_set,
    delete_is_conditional,
    list_shows_original_keys_under_a_prefix,
    awkward_keys_round_trip_and_bad_keys_exit_2,
    invalid_documents_write_nothing,
    of_eight_racing_writers_exactly_one_wins,
    four_times_fifty_jq_edits_make_200,
    a_100_mib_document_round_trips,
);

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn preconditions_hold_on_set(env: &TestStore) {
    let v1 = "{\"v\": 1}";
    let e1 = md5_hex(v1.as_bytes());
    env.cmd()
        .args(["set", "k", v1, "--etag", ""])
        .assert()
        .success()
        .stdout(line(&e1))
        .stderr("");
    // Create-only again: the key exists now.
    env.cmd()
        .args(["set", "k", "{}", "--etag", ""])
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains(format!(
            "\"k\": --etag \"\" but the current ETag is \"{e1}\""
        )));
    // The current ETag: written.
    let v2 = "[2]";
    let e2 = md5_hex(v2.as_bytes());
    env.cmd()
        .args(["set", "k", v2, "--etag", &e1])
        .assert()
        .success()
        .stdout(line(&e2))
        .stderr("");
    // A stale ETag: exit 3, names both. A quoted one: exit 2 (malformed).
    env.cmd()
        .args(["set", "k", "{}", "--etag", &e1])
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains(format!(
            "--etag \"{e1}\" but the current ETag is \"{e2}\""
        )));
    env.cmd()
        .args(["set", "k", "{}", "--etag", &format!("\"{e2}\"")])
        .assert()
        .code(2)
        .stdout("")
        .stderr(one_error_line().and(predicate::str::contains("drop the quotes")));
    env.cmd()
        .args(["get", "k"])
        .assert()
        .success()
        .stdout(v2)
        .stderr("");
    // '*': any version, only if it exists.
    let v3 = "\"three\"\n";
    env.cmd()
        .args(["set", "k", "--etag", "*"])
        .write_stdin(v3)
        .assert()
        .success()
        .stdout(line(&md5_hex(v3.as_bytes())))
        .stderr("");
    for etag in ["*", e2.as_str()] {
        env.cmd()
            .args(["set", "missing", "1", "--etag", etag])
            .assert()
            .code(3)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains("the key does not exist"));
    }
    // Reads: one read gives the value and its ETag.
    env.cmd()
        .args(["get", "k", "--json"])
        .assert()
        .success()
        .stdout(format!(
            "{{\"key\":\"k\",\"etag\":\"{}\",\"value\":\"three\"}}\n",
            md5_hex(v3.as_bytes())
        ))
        .stderr("");
    env.cmd()
        .args(["etag", "k"])
        .assert()
        .success()
        .stdout(line(&md5_hex(v3.as_bytes())))
        .stderr("");
    env.cmd()
        .args(["get", "missing"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(one_error_line());
    env.cmd()
        .args(["get", "missing", "--default", "{}", "--json"])
        .assert()
        .success()
        .stdout("{\"key\":\"missing\",\"etag\":\"\",\"value\":{}}\n")
        .stderr("");
    // set-unsafe: last writer wins.
    env.cmd()
        .args(["set-unsafe", "k", "null"])
        .assert()
        .success()
        .stdout(line(&md5_hex(b"null")))
        .stderr("");
}

fn delete_is_conditional(env: &TestStore) {
    let etag = env.put("k", "{\"a\": 1}");
    for wrong in ["", "0123456789abcdef0123456789abcdef"] {
        env.cmd()
            .args(["delete", "k", "--etag", wrong])
            .assert()
            .code(3)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(&etag));
    }
    env.cmd()
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("{\"a\": 1}");
    env.cmd()
        .args(["delete", "k", "--etag", &etag])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    env.cmd().args(["get", "k"]).assert().code(4).stdout("");
    // Missing: '' holds, '*' and an ETag do not.
    env.cmd()
        .args(["delete", "k", "--etag", ""])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    for etag in ["*", etag.as_str()] {
        env.cmd()
            .args(["delete", "k", "--etag", etag])
            .assert()
            .code(3)
            .stdout("")
            .stderr(one_error_line());
    }
    env.put("k", "2");
    env.cmd()
        .args(["delete", "k", "--etag", "*"])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    env.cmd().args(["list"]).assert().success().stdout("");
}

fn list_shows_original_keys_under_a_prefix(env: &TestStore) {
    env.cmd()
        .args(["list"])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    let alice = env.put("users/alice", "{\"name\":\"Alice\"}");
    let bob = env.put("users/bob", "{\"name\":\"Bob\"}");
    env.put("greeting", "\"hi\"");
    env.put("users", "[]");
    env.cmd()
        .args(["list"])
        .assert()
        .success()
        .stdout("greeting\nusers\nusers/alice\nusers/bob\n")
        .stderr("");
    env.cmd()
        .args(["list", "users/"])
        .assert()
        .success()
        .stdout("users/alice\nusers/bob\n")
        .stderr("");
    let long = env
        .cmd()
        .args(["list", "-l", "users/"])
        .assert()
        .success()
        .stderr("");
    let long = text(&long.get_output().stdout);
    let lines: Vec<Vec<&str>> = long.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{long}");
    assert_eq!(
        (lines[0][0], lines[0][1], lines[0][3]),
        (alice.as_str(), "16", "users/alice")
    );
    assert_eq!(
        (lines[1][0], lines[1][1], lines[1][3]),
        (bob.as_str(), "14", "users/bob")
    );
    for fields in &lines {
        let time = fields[2];
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
    }
    let json = env
        .cmd()
        .args(["list", "--json", "users/a"])
        .assert()
        .success()
        .stderr("");
    let json = text(&json.get_output().stdout);
    let value: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(value["key"], "users/alice");
    assert_eq!(value["etag"], alice.as_str());
    assert_eq!(value["size"], 16);
    assert_eq!(json.lines().count(), 1);
    env.cmd()
        .args(["list", "nobody"])
        .assert()
        .success()
        .stdout("");
}

fn awkward_keys_round_trip_and_bad_keys_exit_2(env: &TestStore) {
    let keys = [
        ".hidden",
        "..",
        "a/b/../c",
        "café menu",
        "100%",
        "/etc/passwd",
        "x.json",
    ];
    for (i, key) in keys.iter().enumerate() {
        let doc = format!("{{\"i\": {i}}}");
        env.cmd()
            .args(["set", key, &doc, "--etag", ""])
            .assert()
            .success()
            .stdout(line(&md5_hex(doc.as_bytes())));
        env.cmd().args(["get", key]).assert().success().stdout(doc);
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    let listing: String = sorted.iter().map(|k| format!("{k}\n")).collect();
    env.cmd().args(["list"]).assert().success().stdout(listing);
    // PREFIX is a prefix of the key, whatever its encoding.
    let dotted = env
        .cmd()
        .args(["list", "-l", "."])
        .assert()
        .success()
        .stderr("");
    let dotted = text(&dotted.get_output().stdout);
    let dotted: Vec<&str> = dotted
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect();
    assert_eq!(dotted, ["..", ".hidden"]);
    env.cmd()
        .args(["list", "--json", "caf\u{e9}"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"key\":\"caf\u{e9} menu\""));
    let long_key = "k".repeat(201);
    for bad in ["", "a\nb", "nul\u{7f}", long_key.as_str()] {
        env.cmd()
            .args(["set", bad, "1", "--etag", ""])
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line());
        env.cmd().args(["get", bad]).assert().code(2).stdout("");
    }
}

fn invalid_documents_write_nothing(env: &TestStore) {
    let etag = env.put("k", "{\"ok\": true}");
    for bad in ["{oops", "", "1 2", "[", "\u{feff}{}"] {
        env.cmd()
            .args(["set", "k", "--etag", &etag])
            .write_stdin(bad)
            .assert()
            .code(6)
            .stdout("")
            .stderr(one_error_line());
    }
    env.cmd()
        .args(["set", "new", "--etag", ""])
        .write_stdin("{\"a\":")
        .assert()
        .code(6);
    env.cmd()
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("{\"ok\": true}");
    env.cmd().args(["list"]).assert().success().stdout("k\n");
}

fn of_eight_racing_writers_exactly_one_wins(env: &TestStore) {
    let mut etag = env.put("k", "{\"writer\": null}");
    for round in 0..3 {
        let docs: Vec<String> = (0..8)
            .map(|i| format!("{{\"round\": {round}, \"writer\": {i}}}"))
            .collect();
        let outputs = race(env, &["set", "k", "--etag", &etag], &docs);
        let winners: Vec<usize> = (0..8)
            .filter(|&i| outputs[i].status.code() == Some(0))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outputs:?}");
        let winner = winners[0];
        let doc = format!("{{\"round\": {round}, \"writer\": {winner}}}");
        assert_eq!(
            text(&outputs[winner].stdout),
            line(&md5_hex(doc.as_bytes()))
        );
        for (i, output) in outputs.iter().enumerate() {
            if i != winner {
                assert_eq!(output.status.code(), Some(3), "{output:?}");
                assert!(output.stdout.is_empty());
                assert_eq!(text(&output.stderr).lines().count(), 1);
            }
        }
        env.cmd()
            .args(["get", "k"])
            .assert()
            .success()
            .stdout(doc.clone());
        etag = md5_hex(doc.as_bytes());
    }
}

fn four_times_fifty_jq_edits_make_200(env: &TestStore) {
    env.put("counter", "{\"n\": 0}");
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
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
        .stdout("{\n  \"n\": 200\n}\n");
}

fn a_100_mib_document_round_trips(env: &TestStore) {
    // ["xxxx…", "xxxx…", …]: 100 MiB of valid JSON.
    let item = format!("\"{}\"", "x".repeat(1022));
    let count = 100 * 1024 * 1024 / 1024;
    let mut doc = Vec::with_capacity(count * 1025 + 2);
    doc.push(b'[');
    for i in 0..count {
        if i > 0 {
            doc.push(b',');
        }
        doc.extend_from_slice(item.as_bytes());
    }
    doc.push(b']');
    let etag = md5_hex(&doc);
    let input = env.root().join("big.json");
    fs::write(&input, &doc).unwrap();
    env.cmd()
        .args(["set", "big", "--etag", ""])
        .arg("-f")
        .arg(&input)
        .timeout(Duration::from_secs(120))
        .assert()
        .success()
        .stdout(line(&etag))
        .stderr("");
    let output = env.root().join("out.json");
    env.cmd()
        .args(["get", "big", "-o"])
        .arg(&output)
        .timeout(Duration::from_secs(120))
        .assert()
        .success()
        .stdout(line(&etag))
        .stderr("");
    assert!(
        fs::read(&output).unwrap() == doc,
        "the document came back changed"
    );
    env.cmd()
        .args(["list", "-l"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "{etag}\t{}\t",
            doc.len()
        )));
}

// Azure only.

#[test]
fn store_urls_that_are_malformed_exit_2() {
    let env = TestStore::new();
    for url in [
        "az://Bad_Name",
        "az://ok-name/a//b",
        "https://example.com/c",
    ] {
        env.cmd_without_store()
            .args(["--store", url, "list"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line());
    }
}

#[test]
fn an_azure_store_without_an_account_is_exit_1_saying_what_to_set() {
    TestStore::new()
        .cmd_without_store()
        .args(["--store", "az://docs", "get", "k"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains(
            "cannot open the Azure container 'docs', no storage account is set; set AZURE_STORAGE_ACCOUNT_NAME",
        ));
}

#[test]
fn a_missing_container_is_exit_1_naming_account_and_container() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    for args in [
        vec!["get", "k"],
        vec!["set", "k", "1", "--etag", ""],
        vec!["set-unsafe", "k", "1"],
        vec!["list"],
        vec!["delete", "k", "--etag", ""],
    ] {
        env.cmd_without_store()
            .args(["--store", "az://no-such-container"])
            .args(&args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(
                "the container 'no-such-container' does not exist in the Azure storage account 'devstoreaccount1'",
            ));
    }
}

/// In emulator mode a key other than the emulator's is refused before
/// anything is sent (issue 11, item 8; more in outcomes.rs).
#[test]
fn bad_credentials_in_emulator_mode_are_exit_2_before_sending() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let wrong_key = "d3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmc=";
    for args in [
        vec!["get", "k"],
        vec!["set", "k", "1", "--etag", ""],
        vec!["list"],
    ] {
        env.cmd()
            .env("AZURE_STORAGE_ACCOUNT_KEY", wrong_key)
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(
                "a key other than the emulator's is refused",
            ));
    }
}

#[test]
fn a_sas_token_works_for_every_command_including_conditional_delete() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let sas = |cmd: &mut assert_cmd::Command| {
        cmd.env_remove("AZURE_STORAGE_ACCOUNT_KEY")
            .env("AZURE_STORAGE_SAS_KEY", azurite::account_sas());
    };
    let mut cmd = env.cmd();
    sas(&mut cmd);
    cmd.args(["set", "k", "[1]", "--etag", ""])
        .assert()
        .success()
        .stdout(line(&md5_hex(b"[1]")))
        .stderr("");
    let mut cmd = env.cmd();
    sas(&mut cmd);
    cmd.args(["delete", "k", "--etag", &md5_hex(b"[2]")])
        .assert()
        .code(3)
        .stdout("")
        .stderr(one_error_line());
    let mut cmd = env.cmd();
    sas(&mut cmd);
    cmd.args(["list", "-l"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(md5_hex(b"[1]")));
    let mut cmd = env.cmd();
    sas(&mut cmd);
    cmd.args(["delete", "k", "--etag", &md5_hex(b"[1]")])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    env.cmd().args(["get", "k"]).assert().code(4).stdout("");
}

#[test]
fn a_blob_written_by_another_tool_is_hashed_on_read() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let azurite = env.azurite_store().unwrap().clone();
    let doc = b"{\"from\": \"another tool\"}\n";
    let etag = md5_hex(doc);
    azurite::put_blob(azurite.port, &azurite.container, "other.json", doc);
    env.cmd()
        .args(["etag", "other"])
        .assert()
        .success()
        .stdout(line(&etag));
    env.cmd()
        .args(["list", "-l"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "{etag}\t{}\t",
            doc.len()
        )));
    env.cmd()
        .args(["set", "other", "--etag", &md5_hex(b"stale")])
        .write_stdin("1")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "the current ETag is \"{etag}\""
        )));
    env.cmd()
        .args(["set", "other", "2", "--etag", &etag])
        .assert()
        .success()
        .stdout(line(&md5_hex(b"2")));
    // Not a key: another tool's blob whose name no key encodes to.
    azurite::put_blob(azurite.port, &azurite.container, "notes.txt", b"hi");
    env.cmd()
        .args(["list"])
        .assert()
        .success()
        .stdout("other\n");
}

/// Why `set --etag E` on Azure reads the bytes (a GET) where S3 needs only
/// a HEAD (docs/azure.md, "Requests per command"): committing a block list
/// with the blob's own properties and metadata kept, as the SDK's
/// `upload_blob` does for a large blob given `content_settings=` and
/// `metadata=` from `get_blob_properties()`, leaves `Content-MD5` and
/// `etagstore_md5` both at the old MD5 over new bytes. A rule that trusted
/// the two agreeing would let the old ETag pass.
#[test]
fn content_md5_and_metadata_kept_over_new_blocks_never_let_a_stale_etag_pass() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-sdk/bin/python");
    if !python.exists() {
        crate::common::skip(&format!(
            "{} is missing (run scripts/python-sdk.sh)",
            python.display()
        ));
        return;
    }
    let azurite = env.azurite_store().unwrap().clone();
    let v1 = "{\"v\": 1}";
    let e1 = env.put("k", v1);
    let v2 = "{\"v\": 2, \"by\": \"blocks\"}";
    let e2 = md5_hex(v2.as_bytes());
    let script = r#"
import os, sys
from azure.storage.blob import BlobServiceClient
conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        + os.environ["AZ_KEY"] + ";BlobEndpoint=http://127.0.0.1:"
        + os.environ["AZ_PORT"] + "/devstoreaccount1;")
service = BlobServiceClient.from_connection_string(conn, api_version="2021-08-06")
b = service.get_container_client(os.environ["AZ_CONTAINER"]).get_blob_client("k.json")
p = b.get_blob_properties()
b.stage_block("AAAA", sys.argv[1].encode())
b.commit_block_list(["AAAA"], metadata=p.metadata, content_settings=p.content_settings)
q = b.get_blob_properties()
print(bytes(q.content_settings.content_md5).hex(), q.metadata["etagstore_md5"])
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(v2)
        .env("AZ_KEY", azurite::KEY)
        .env("AZ_PORT", azurite.port.to_string())
        .env("AZ_CONTAINER", &azurite.container)
        .output()
        .unwrap();
    assert!(out.status.success(), "python: {out:?}");
    // The test is about something: both headers name the old bytes.
    assert_eq!(text(&out.stdout).trim(), format!("{e1} {e1}"));
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

#[test]
fn a_prefix_keeps_stores_apart_in_one_container() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let container = env.azurite_store().unwrap().container.clone();
    let store = |prefix: &str| format!("az://{container}/{prefix}");
    env.cmd_without_store()
        .args(["--store", &store("team/a"), "set", "k", "1", "--etag", ""])
        .assert()
        .success();
    env.cmd_without_store()
        .args(["--store", &store("team/b/"), "set", "k", "2", "--etag", ""])
        .assert()
        .success();
    env.cmd_without_store()
        .args(["--store", &store("team/a"), "get", "k"])
        .assert()
        .success()
        .stdout("1");
    // The container's root holds no key directly, only the two prefixes.
    env.cmd().args(["list"]).assert().success().stdout("");
    env.cmd_without_store()
        .args(["--store", &store("team/b"), "list", "-l"])
        .assert()
        .success()
        .stdout(predicate::str::ends_with("\tk\n"));
}

#[test]
fn a_stopped_azurite_gives_exit_1_and_no_false_success() {
    if TestStore::azurite().is_none() {
        return; // no Azurite installed here: see TestStore::azurite
    }
    let private = azurite::Private::start(10_101);
    let env = TestStore::on_azurite(private.port);
    let etag = env.put("k", "{\"n\": 1}");
    env.cmd().args(["get", "k"]).assert().success();
    private.stop();
    let started = Instant::now();
    for args in [
        vec!["set", "k", "{\"n\": 2}", "--etag", etag.as_str()],
        vec!["set", "new", "1", "--etag", ""],
        vec!["set-unsafe", "k", "3"],
        vec!["delete", "k", "--etag", etag.as_str()],
        vec!["edit", "k", "--jq", ".n += 1"],
        vec!["get", "k"],
        vec!["etag", "k"],
        vec!["list", "-l"],
    ] {
        let before = Instant::now();
        env.cmd()
            .args(&args)
            .timeout(Duration::from_secs(60))
            .assert()
            .code(1)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains("devstoreaccount1"));
        assert!(
            before.elapsed() < Duration::from_secs(30),
            "{args:?} took {:?}",
            before.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(120));
}
