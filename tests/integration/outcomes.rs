//! Unknown outcomes (exit 8) through a fault proxy: each way of breaking a
//! write × `set --etag E`, `set --etag ''`, `delete --etag E` and `edit`
//! gives the documented exit code and leaves the state the fault implies
//! (checked directly against Azurite, without the proxy). Then a refused
//! connection (exit 1, nothing written), timeouts, escapes in a server's
//! answer, the 256 MiB limit, and `--store` addresses and the emulator
//! switch.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use predicates::prelude::*;

use crate::azurite;
use crate::common::{line, md5_hex, one_error_line, TestStore};
use crate::fault_proxy::{closed_port, Fault, Only, Proxy};

/// How long etagstore waits in these tests, and how late `Delay` answers.
const TIMEOUT: &str = "3";
const LATE: Duration = Duration::from_secs(8);

/// `etagstore` on `env`'s container, through `proxy`.
fn through(env: &TestStore, url: &str) -> assert_cmd::Command {
    let mut cmd = env.cmd();
    cmd.env("AZURITE_BLOB_STORAGE_URL", url)
        .env("ETAGSTORE_TIMEOUT", TIMEOUT)
        .timeout(Duration::from_secs(120));
    cmd
}

/// The document under `key`, read straight from Azurite (no proxy).
fn stored(env: &TestStore, key: &str) -> Option<String> {
    let out = env.cmd().args(["get", key]).output().unwrap();
    match out.status.code() {
        Some(0) => Some(String::from_utf8(out.stdout).unwrap()),
        Some(4) => None,
        other => panic!(
            "get {key}: {other:?} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn proxy_for(fault: Fault) -> Proxy {
    Proxy::start(azurite::PORT, fault, Only::Writes, 1)
}

const OLD: &str = "{\"n\": 1}";
const NEW: &str = "{\"n\": 2}";

fn set_with_etag(fault: Fault, landed: bool) {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let old_etag = env.put("k", OLD);
    let proxy = proxy_for(fault);
    through(&env, &proxy.url())
        .args(["set", "k", NEW, "--etag", &old_etag])
        .assert()
        .code(8)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains("outcome unknown for key \"k\": "))
        .stderr(predicate::str::contains(format!(
            "if it did, its ETag is \"{}\" (check with: etagstore --store {} etag k)",
            md5_hex(NEW.as_bytes()),
            env.store().display()
        )));
    assert_eq!(proxy.broken(), 1);
    let expected = if landed { NEW } else { OLD };
    assert_eq!(stored(&env, "k").as_deref(), Some(expected));
}

fn create_only(fault: Fault, landed: bool) {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let proxy = proxy_for(fault);
    through(&env, &proxy.url())
        .args(["set", "k", NEW, "--etag", ""])
        .assert()
        .code(8)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains(format!(
            "its ETag is \"{}\"",
            md5_hex(NEW.as_bytes())
        )));
    assert_eq!(proxy.broken(), 1);
    assert_eq!(stored(&env, "k").as_deref(), landed.then_some(NEW));
}

fn delete_with_etag(fault: Fault, landed: bool) {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let etag = env.put("k", OLD);
    let proxy = proxy_for(fault);
    through(&env, &proxy.url())
        .args(["delete", "k", "--etag", &etag])
        .assert()
        .code(8)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains(format!(
            "if it did, the key is gone (check with: etagstore --store {} etag k)",
            env.store().display()
        )));
    assert_eq!(proxy.broken(), 1);
    let expected = (!landed).then_some(OLD);
    assert_eq!(stored(&env, "k").as_deref(), expected);
}

/// Whatever happened to the first write, edit finds out and ends with the
/// increment applied exactly once.
fn edit_increments_once(fault: Fault, _landed: bool) {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    env.put("k", OLD);
    let proxy = proxy_for(fault);
    let out = through(&env, &proxy.url())
        .args(["edit", "k", "--jq", ".n += 1"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    assert_eq!(proxy.broken(), 1);
    let now = stored(&env, "k").unwrap();
    let value: serde_json::Value = serde_json::from_str(&now).unwrap();
    assert_eq!(value["n"], 2, "{now}");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        line(&md5_hex(now.as_bytes()))
    );
}

/// The worst case for `edit`: its write's answer is lost, the key still
/// has the ETag it read (so it tries again), and then the first write lands
/// after all, just before the second. The second write is refused (412);
/// seeing its own first write, edit stops there instead of adding 1 again.
#[test]
fn edit_never_applies_a_change_twice_when_its_first_write_lands_late() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    env.put("k", OLD);
    let proxy = proxy_for(Fault::Late);
    let out = through(&env, &proxy.url())
        .args(["edit", "k", "--jq", ".n += 1"])
        .output()
        .unwrap();
    let now = stored(&env, "k").unwrap();
    let value: serde_json::Value = serde_json::from_str(&now).unwrap();
    assert_eq!(value["n"], 2, "{now}: {out:?}");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        line(&md5_hex(now.as_bytes()))
    );
    assert_eq!(proxy.broken(), 1);
}

/// `mod MODE { set_with_etag, create_only, delete_with_etag, edit }`.
macro_rules! modes {
    ($($name:ident: $fault:expr, landed: $landed:expr;)*) => {$(
        mod $name {
            use super::*;

            #[test]
            fn set_with_etag_is_exit_8() {
                super::set_with_etag($fault, $landed);
            }

            #[test]
            fn create_only_is_exit_8() {
                super::create_only($fault, $landed);
            }

            #[test]
            fn delete_with_etag_is_exit_8() {
                super::delete_with_etag($fault, $landed);
            }

            #[test]
            fn edit_resolves_it_and_increments_once() {
                super::edit_increments_once($fault, $landed);
            }
        }
    )*};
}

modes! {
    answer_dropped_after_the_write: Fault::Drop, landed: true;
    connection_reset_after_the_write: Fault::Reset, landed: true;
    request_never_forwarded: Fault::Close, landed: false;
    answer_later_than_the_timeout: Fault::Delay(LATE), landed: true;
    server_error_500: Fault::Answer(answer(500, "InternalError", "")), landed: false;
}

/// A made-up answer from "Azure".
fn answer(status: u16, code: &str, text: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{text}</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn a_refused_connection_is_exit_1_and_nothing_written_for_every_write() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let etag = env.put("k", OLD);
    let url = format!("http://127.0.0.1:{}", closed_port());
    for (args, says) in [
        (vec!["set", "k", NEW, "--etag", etag.as_str()], ""),
        (vec!["set", "new", NEW, "--etag", ""], "nothing was written"),
        (vec!["set-unsafe", "k", NEW], "nothing was written"),
        (vec!["delete", "k", "--etag", etag.as_str()], ""),
        (vec!["edit", "k", "--jq", ".n += 1"], ""),
    ] {
        through(&env, &url)
            .args(&args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(says));
    }
    assert_eq!(stored(&env, "k").as_deref(), Some(OLD));
    assert_eq!(stored(&env, "new"), None);
}

/// A host that does not resolve: nothing can have been sent (exit 1).
#[test]
fn a_dns_failure_is_exit_1_and_nothing_written() {
    let env = TestStore::new();
    env.cmd_without_store()
        .env("AZURE_STORAGE_ACCOUNT_NAME", "acct1")
        .env("AZURE_STORAGE_ACCOUNT_KEY", azurite::KEY)
        .env("AZURE_STORAGE_ENDPOINT", "http://no-such-host.invalid")
        .env("AZURE_ALLOW_HTTP", "true")
        .args(["--store", "az://docs", "set", "k", "1", "--etag", ""])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains("dns error"))
        .stderr(predicate::str::ends_with("; nothing was written\n"));
}

#[test]
fn a_server_that_never_answers_ends_reads_after_the_timeout() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    env.put("k", OLD);
    let proxy = Proxy::start(azurite::PORT, Fault::Delay(LATE * 4), Only::All, usize::MAX);
    for args in [vec!["get", "k"], vec!["etag", "k"], vec!["list", "-l"]] {
        through(&env, &proxy.url())
            .env("ETAGSTORE_TIMEOUT", "1")
            .args(&args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(
                "no answer within 1 s (set ETAGSTORE_TIMEOUT to wait longer)",
            ));
    }
}

/// The timeout is for silence, not for size: an 8 MiB document written and
/// read at 2 MiB/s (about 4 s each way) with ETAGSTORE_TIMEOUT=1 goes
/// through, because bytes keep moving (a whole-request timeout of 1 s
/// would cut both).
#[test]
fn a_slow_but_moving_transfer_is_not_cut_by_the_timeout() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let doc = format!("\"{}\"", "a".repeat(8 * 1024 * 1024));
    let etag = md5_hex(doc.as_bytes());
    let proxy = Proxy::start(
        azurite::PORT,
        Fault::Slow(2 * 1024 * 1024),
        Only::All,
        usize::MAX,
    );
    through(&env, &proxy.url())
        .env("ETAGSTORE_TIMEOUT", "1")
        .args(["set", "big", "--etag", ""])
        .write_stdin(doc.as_bytes())
        .assert()
        .success()
        .stdout(line(&etag))
        .stderr("");
    let out = through(&env, &proxy.url())
        .env("ETAGSTORE_TIMEOUT", "1")
        .args(["get", "big"])
        .assert()
        .success()
        .stderr("")
        .get_output()
        .stdout
        .clone();
    assert_eq!(md5_hex(&out), etag);
}

#[test]
fn an_invalid_etagstore_timeout_is_exit_2() {
    let env = TestStore::new();
    for bad in ["0", "-1", "soon", "nan", ""] {
        env.cmd_without_store()
            .args(["--store", "az://docs", "get", "k"])
            .env("AZURE_STORAGE_USE_EMULATOR", "true")
            .env("ETAGSTORE_TIMEOUT", bad)
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains("invalid ETAGSTORE_TIMEOUT"));
    }
}

/// Terminal escapes in a server's answer never reach the terminal.
#[test]
fn escapes_in_a_servers_answer_are_shown_not_sent() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let hostile = "\u{1b}]0;pwned\u{7}";
    for (status, args, code) in [
        (403, vec!["get", "k"], 1),
        (400, vec!["set-unsafe", "k", "1"], 1),
        (500, vec!["set", "k", "1", "--etag", ""], 8),
    ] {
        let proxy = Proxy::start(
            azurite::PORT,
            Fault::Answer(answer(status, hostile, hostile)),
            Only::All,
            usize::MAX,
        );
        let out = through(&env, &proxy.url())
            .args(&args)
            .assert()
            .code(code)
            .stdout("")
            .stderr(one_error_line())
            .get_output()
            .stderr
            .clone();
        assert!(
            !out.iter().any(|b| *b == 0x1b || *b == 0x07),
            "{args:?}: {}",
            String::from_utf8_lossy(&out)
        );
    }
}

// The 256 MiB limit.

#[test]
fn a_document_over_256_mib_is_exit_6_and_reading_stops_at_the_limit() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    // A JSON string of 300 MiB, streamed: `"aaaa…"`.
    let mut child = env
        .process()
        .args(["set-unsafe", "big"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1024 * 1024];
        let mut sent = 0u64;
        let _ = stdin.write_all(b"\"");
        for _ in 0..300 {
            if stdin.write_all(&chunk).is_err() {
                return sent; // etagstore stopped reading
            }
            sent += chunk.len() as u64;
        }
        let _ = stdin.write_all(b"\"");
        sent
    });
    let out = child.wait_with_output().unwrap();
    let sent = writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("larger than 256 MiB (268435456 bytes)"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // It stopped reading at the limit: the rest of the 300 MiB was never taken.
    assert!(sent < 300 * 1024 * 1024, "etagstore read all {sent} bytes");
    assert_eq!(stored(&env, "big"), None);
}

// Addresses and the emulator switch.

#[test]
fn a_sas_token_in_store_is_refused_and_never_echoed() {
    let env = TestStore::new();
    for store in [
        "az://docs/team?sv=2021-08-06&ss=b&sig=SECRETSIG",
        "https://acct1.blob.core.windows.net/docs?sv=2021-08-06&sig=SECRETSIG",
        "https://acct1.blob.core.windows.net/docs/?sv=2021-08-06&sig=SECRETSIG",
    ] {
        env.cmd_without_store()
            .args(["--store", store, "list"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains("AZURE_STORAGE_SAS_KEY"))
            .stderr(predicate::str::contains("SECRETSIG").not())
            .stderr(predicate::str::contains("sv=").not());
    }
}

#[test]
fn the_emulator_switch_refuses_real_accounts_and_credentials() {
    let env = TestStore::new();
    let emulator = |cmd: &mut assert_cmd::Command| {
        cmd.env("AZURE_STORAGE_USE_EMULATOR", "true");
    };
    let cases: [(&str, (&str, &str), &str); 7] = [
        (
            "https://acct1.blob.core.windows.net/docs",
            ("AZURE_STORAGE_ACCOUNT_KEY", azurite::KEY),
            "an https:// account address is refused",
        ),
        (
            "az://docs",
            ("AZURE_STORAGE_ACCOUNT_NAME", "realaccount"),
            "an account other than the emulator's",
        ),
        (
            "az://docs",
            (
                "AZURE_STORAGE_ACCOUNT_KEY",
                "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldA==",
            ),
            "a key other than the emulator's",
        ),
        (
            "az://docs",
            (
                "AZURE_STORAGE_SAS_KEY",
                "sv=2021-08-06&ss=b&srt=sco&sp=r&sig=SECRETSIG",
            ),
            "a SAS token not signed with the emulator's key",
        ),
        (
            "az://docs",
            ("AZURE_STORAGE_TOKEN", "SECRETSIG"),
            "a bearer token is refused",
        ),
        (
            "az://docs",
            ("AZURITE_BLOB_STORAGE_URL", "http://10.1.2.3:10000"),
            "AZURITE_BLOB_STORAGE_URL must be",
        ),
        (
            "az://docs",
            (
                "AZURITE_BLOB_STORAGE_URL",
                "http://acct1.blob.core.windows.net",
            ),
            "AZURITE_BLOB_STORAGE_URL must be",
        ),
    ];
    for (store, var, says) in cases {
        let mut cmd = env.cmd_without_store();
        emulator(&mut cmd);
        cmd.env(var.0, var.1);
        cmd.args(["--store", store, "set", "k", "1", "--etag", ""])
            .assert()
            .code(2)
            .stdout("")
            .stderr(one_error_line())
            .stderr(predicate::str::contains(says))
            .stderr(predicate::str::contains("SECRETSIG").not());
    }
}

#[test]
fn the_emulator_switch_accepts_the_emulators_own_settings() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let port = env.azurite_store().unwrap().port;
    for url in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}/"),
    ] {
        env.cmd()
            .env("AZURITE_BLOB_STORAGE_URL", &url)
            .args(["set-unsafe", "k", "1"])
            .assert()
            .success()
            .stdout(line(&md5_hex(b"1")))
            .stderr("");
    }
    env.cmd()
        .env_remove("AZURE_STORAGE_ACCOUNT_KEY")
        .env("AZURE_STORAGE_SAS_KEY", azurite::account_sas())
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("1");
}

/// A listener whose accept queue is full, so new connections are never
/// completed: connecting times out. Returns the port; the sockets live as
/// long as the returned guard.
fn unanswered_port() -> (u16, Vec<std::net::TcpStream>, i32) {
    // SAFETY: plain socket calls on a fresh descriptor we own and close.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        assert_eq!(
            libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut {
                len
            }),
            0
        );
        let port = u16::from_be(addr.sin_port);
        // Fill the queue (never accepted); later SYNs are dropped.
        let fillers = (0..2)
            .filter_map(|_| {
                std::net::TcpStream::connect_timeout(
                    &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                    Duration::from_millis(500),
                )
                .ok()
            })
            .collect();
        (port, fillers, fd)
    }
}

/// A connection that never completes is a connect timeout (5 s): nothing
/// was sent, so a write says so (exit 1), not "outcome unknown" (exit 8).
/// The answer timeout is set longer here, as by default (30 s): one that
/// ends first cannot tell a slow connect from a lost answer.
#[test]
fn a_connect_timeout_is_exit_1_and_nothing_written() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    let (port, _fillers, fd) = unanswered_port();
    let url = format!("http://127.0.0.1:{port}");
    through(&env, &url)
        .env("ETAGSTORE_TIMEOUT", "30")
        .args(["set", "new", NEW, "--etag", ""])
        .assert()
        .code(1)
        .stdout("")
        .stderr(one_error_line().and(predicate::str::contains("nothing was written")));
    // SAFETY: closes the listener made above.
    unsafe { libc::close(fd) };
    assert_eq!(stored(&env, "new"), None);
}

/// The same late write, with one retry left: the retry is refused (412)
/// because the first write landed meanwhile. That is not "gave up" (exit
/// 3, which a script would answer by adding 1 again): edit looks once
/// more, finds its own first write, and succeeds.
#[test]
fn edit_out_of_retries_after_a_late_write_finds_it_instead_of_giving_up() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    env.put("k", OLD);
    let proxy = proxy_for(Fault::Late);
    let out = through(&env, &proxy.url())
        .args(["edit", "k", "--jq", ".n += 1", "--retries", "1"])
        .output()
        .unwrap();
    let now = stored(&env, "k").unwrap();
    let value: serde_json::Value = serde_json::from_str(&now).unwrap();
    assert_eq!(value["n"], 2, "{now}: {out:?}");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        line(&md5_hex(now.as_bytes()))
    );
}

/// A write whose answer was lost, seen not to have landed yet, with no
/// retry left: it may still land, so the answer is exit 8 naming its ETag,
/// never "nothing was written".
#[test]
fn edit_with_no_retry_left_after_a_lost_answer_is_exit_8() {
    let Some(env) = TestStore::azurite() else {
        return;
    };
    env.put("k", OLD);
    let proxy = proxy_for(Fault::Late);
    through(&env, &proxy.url())
        .args(["edit", "k", "--jq", ".n += 1", "--retries", "0"])
        .assert()
        .code(8)
        .stdout("")
        .stderr(one_error_line())
        .stderr(predicate::str::contains(md5_hex(b"{\n  \"n\": 2\n}\n")))
        .stderr(predicate::str::contains("nothing was written").not());
}
