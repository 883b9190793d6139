//! The requests sent here rather than through object_store: List Blobs
//! with a prefix that is not a whole path segment (object_store 0.14 lists
//! by segment only), and how they and the conditional DELETE are
//! authorised (the Shared Key signer is shared_key.rs).
//!
//! They go through object_store's HTTP client, signed with the Shared Key
//! (or carrying the SAS token) the store was opened with; with other
//! credentials (Entra ID) the store uses object_store's listing instead.

use std::time::Duration;

use base64::Engine;
use http::{Method, StatusCode};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{HttpClient, HttpRequestBody};
use serde::Deserialize;

use super::shared_key::{self, EMULATOR_KEY, VERSION};

/// How a listing request is authorised.
pub enum ListAuth {
    SharedKey(Vec<u8>),
    Sas(Vec<(String, String)>),
}

impl ListAuth {
    /// The credential object_store will use, in its order (key, token,
    /// SAS), when it is one this module can use.
    pub fn from_config(builder: &MicrosoftAzureBuilder, emulator: bool) -> Option<ListAuth> {
        let value = |key| builder.get_config_value(&key).filter(|v| !v.is_empty());
        if let Some(key) = value(AzureConfigKey::AccessKey) {
            return base64::engine::general_purpose::STANDARD
                .decode(key)
                .ok()
                .map(ListAuth::SharedKey);
        }
        if value(AzureConfigKey::Token).is_some() {
            return None;
        }
        if let Some(sas) = value(AzureConfigKey::SasKey) {
            let sas = percent_encoding::percent_decode_str(&sas)
                .decode_utf8()
                .ok()?;
            let pairs = sas
                .trim_start_matches('?')
                .split('&')
                .filter(|pair| !pair.trim().is_empty())
                .map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    Some((k.to_string(), v.to_string()))
                })
                .collect::<Option<Vec<_>>>()?;
            return Some(ListAuth::Sas(pairs));
        }
        if emulator {
            return base64::engine::general_purpose::STANDARD
                .decode(EMULATOR_KEY)
                .ok()
                .map(ListAuth::SharedKey);
        }
        None
    }
}

/// Why a listing failed, for the caller's one-line message.
pub enum ListError {
    ContainerMissing,
    Refused(String),
    Other(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    next_marker: Option<String>,
    blobs: Blobs,
}

#[derive(Deserialize)]
struct Blobs {
    #[serde(rename = "Blob", default)]
    blobs: Vec<Blob>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Blob {
    name: String,
}

/// The name of every blob that starts with `prefix`, all pages. Transport
/// errors and 5xx answers are retried up to `retries` times (a listing is
/// a read).
pub async fn list(
    http: &HttpClient,
    auth: &ListAuth,
    container_url: &str,
    account: &str,
    prefix: &str,
    retries: usize,
) -> Result<Vec<String>, ListError> {
    let mut listed = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = page_with_retries(
            http,
            auth,
            container_url,
            account,
            prefix,
            marker.as_deref(),
            retries,
        )
        .await?;
        listed.extend(page.blobs.blobs.into_iter().map(|blob| blob.name));
        match page.next_marker.filter(|m| !m.is_empty()) {
            Some(next) => marker = Some(next),
            None => return Ok(listed),
        }
    }
}

async fn page_with_retries(
    http: &HttpClient,
    auth: &ListAuth,
    container_url: &str,
    account: &str,
    prefix: &str,
    marker: Option<&str>,
    retries: usize,
) -> Result<Page, ListError> {
    let mut pause = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match page(http, auth, container_url, account, prefix, marker).await {
            Err(Retry::Yes(_)) if attempt < retries => {
                attempt += 1;
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(Retry::Yes(why)) => return Err(ListError::Other(why)),
            Err(Retry::No(error)) => return Err(error),
            Ok(page) => return Ok(page),
        }
    }
}

enum Retry {
    Yes(String),
    No(ListError),
}

async fn page(
    http: &HttpClient,
    auth: &ListAuth,
    container_url: &str,
    account: &str,
    prefix: &str,
    marker: Option<&str>,
) -> Result<Page, Retry> {
    let other = |why: String| Retry::No(ListError::Other(why));
    let mut url = url::Url::parse(container_url).map_err(|e| other(e.to_string()))?;
    // Sorted by name: the Shared Key signature lists them in this order.
    let mut query = vec![("comp", "list")];
    if let Some(marker) = marker {
        query.push(("marker", marker));
    }
    if !prefix.is_empty() {
        query.push(("prefix", prefix));
    }
    query.push(("restype", "container"));
    url.query_pairs_mut().extend_pairs(&query);
    let mut request = http::Request::builder()
        .method(Method::GET)
        .header("x-ms-version", VERSION);
    match auth {
        ListAuth::Sas(pairs) => {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        ListAuth::SharedKey(key) => {
            let (date, authorization) = shared_key::sign(
                key,
                account,
                &shared_key::Request {
                    method: "GET",
                    url: &url,
                    content_length: 0,
                    if_match: "",
                    headers: &[],
                },
            );
            request = request
                .header("x-ms-date", date)
                .header("Authorization", authorization);
        }
    }
    let request = request
        .uri(url.as_str())
        .body(HttpRequestBody::empty())
        .map_err(|e| other(e.to_string()))?;
    let response = http
        .execute(request)
        .await
        .map_err(|e| Retry::Yes(super::chain(&e)))?;
    let status = response.status();
    let code = response
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response
        .into_body()
        .bytes()
        .await
        .map_err(|e| Retry::Yes(super::chain(&e)))?;
    match status {
        StatusCode::OK => quick_xml::de::from_reader(body.as_ref())
            .map_err(|e| other(format!("cannot read the listing: {e}"))),
        StatusCode::NOT_FOUND => Err(Retry::No(ListError::ContainerMissing)),
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Err(Retry::No(ListError::Refused(
            format!("HTTP {status} {code}"),
        ))),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            Err(Retry::Yes(format!("HTTP {status} {code}")))
        }
        _ => Err(other(format!("HTTP {status} {code}"))),
    }
}
