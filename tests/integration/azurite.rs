//! Azurite for the tests: is it up, a fresh container per test (etagstore
//! has no command that creates one), and a private instance to stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
#[cfg(feature = "azure")]
use etagstore::store::azure::shared_key;

/// The port `scripts/azurite.sh start` uses.
pub const PORT: u16 = 10000;
/// Azurite's well-known development account and key.
pub const ACCOUNT: &str = "devstoreaccount1";
#[cfg(feature = "azure")]
pub const KEY: &str = shared_key::EMULATOR_KEY;
/// Without the azure feature no Azure test can pass (`az://` is exit 2):
/// the module only has to compile.
#[cfg(not(feature = "azure"))]
pub const KEY: &str = "";

/// True if something answers HTTP on 127.0.0.1:`port`.
pub fn answers(port: u16) -> bool {
    request_raw(port, "GET", &format!("/{ACCOUNT}?comp=list"), &[], b"").is_ok()
}

/// Creates a container with a name no other test uses; returns the name.
pub fn create_container(port: u16) -> String {
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
    let target = format!("/{ACCOUNT}/{name}?restype=container");
    let status = signed(port, "PUT", &target, &[], b"").expect("Azurite answers");
    assert!(status.contains(" 201 "), "create container: {status}");
    name
}

/// Uploads a block blob the way another tool would: no etagstore metadata.
pub fn put_blob(port: u16, container: &str, name: &str, body: &[u8]) {
    let target = format!("/{ACCOUNT}/{container}/{name}");
    let headers = [("x-ms-blob-type", "BlockBlob")];
    let status = signed(port, "PUT", &target, &headers, body).expect("Azurite answers");
    assert!(status.contains(" 201 "), "put blob: {status}");
}

/// An account SAS for the emulator's account that allows everything on
/// blobs until 2099, as a query string without the `?`.
pub fn account_sas() -> String {
    let (permissions, services, types, expiry, protocols, version) = (
        "rwdlac",
        "b",
        "sco",
        "2099-01-01T00:00:00Z",
        "https,http",
        "2021-08-06",
    );
    // Account SAS, version 2020-12-06 and later: the last line is the
    // (empty) encryption scope.
    let to_sign = format!(
        "{ACCOUNT}\n{permissions}\n{services}\n{types}\n\n{expiry}\n\n{protocols}\n{version}\n\n"
    );
    let signature = sign(&to_sign);
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "sv={version}&ss={services}&srt={types}&sp={permissions}&se={}&spr={}&sig={}",
        encode(expiry),
        encode(protocols),
        encode(&signature)
    )
}

/// Sends one request signed with the emulator's Shared Key by etagstore's
/// own signer (the repository has no other); `headers` are `x-ms-` headers
/// in lower case. Returns the status line.
#[cfg(not(feature = "azure"))]
fn signed(
    _port: u16,
    _method: &str,
    _target: &str,
    _headers: &[(&str, &str)],
    _body: &[u8],
) -> std::io::Result<String> {
    Err(std::io::Error::other(
        "the Azure tests need the azure feature",
    ))
}

#[cfg(feature = "azure")]
fn signed(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<String> {
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}{target}")).unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    let request = shared_key::Request {
        method,
        url: &url,
        content_length: body.len(),
        if_match: "",
        headers,
    };
    let (date, authorization) = shared_key::sign(&key, ACCOUNT, &request);
    let mut all = headers.to_vec();
    all.extend([
        ("x-ms-date", date.as_str()),
        ("x-ms-version", shared_key::VERSION),
        ("Authorization", authorization.as_str()),
    ]);
    request_raw(port, method, target, &all, body)
}

/// Base64 of the HMAC-SHA256 of `text` under the emulator's key: the
/// signature of an account SAS (etagstore itself never makes one).
fn sign(text: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        text.as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Sends one request; returns the status line.
fn request_raw(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<String> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut text = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    match response.lines().next() {
        Some(line) if line.starts_with("HTTP/") => Ok(line.to_string()),
        _ => Err(std::io::Error::other("no HTTP answer")),
    }
}

/// `scripts/azurite.sh` of this repository.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/azurite.sh")
}

/// scripts/azurite.sh creates containers with a constant account SAS (the
/// emulator's key is public), so that it needs no signer of its own: it
/// must be the one computed here.
#[test]
fn the_script_creates_containers_with_the_account_sas() {
    let text = std::fs::read_to_string(script()).unwrap();
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("sas='"))
        .expect("a sas='…' line in scripts/azurite.sh");
    assert_eq!(line.trim_end_matches('\''), account_sas());
    assert!(
        !text.contains("createHmac"),
        "a second signer in the script"
    );
}

/// An Azurite of the test's own on `port`, stopped when dropped.
pub struct Private {
    pub port: u16,
}

impl Private {
    pub fn start(port: u16) -> Private {
        let private = Private { port };
        private.run("start");
        private
    }

    pub fn stop(&self) {
        self.run("stop");
    }

    fn run(&self, action: &str) {
        let status = std::process::Command::new("bash")
            .arg(script())
            .arg(action)
            .env("AZURITE_PORT", self.port.to_string())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "scripts/azurite.sh {action} on port {}",
            self.port
        );
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .arg("stop")
            .env("AZURITE_PORT", self.port.to_string())
            .status();
    }
}
