//! The Azure Blob Storage store: one block blob per document, written with
//! the service's conditional requests.
//!
//! The ETag users see is the MD5 of the bytes, as on the file store. The
//! service's own ETag (an opaque version) stays inside: a write with
//! `--etag E` reads the blob (GET: the bytes and the service ETag of that
//! one version), hashes the bytes, compares with `E`, then writes with
//! `If-Match: <service ETag>`, so nothing can land in between. Nothing a
//! client can set (the `etagstore_md5` metadata etagstore still writes,
//! `Content-MD5`) decides a precondition: docs/azure.md says why.
//!
//! object_store does the requests, credentials and retries. It runs on a
//! current-thread tokio runtime that exists only in this store, so the file
//! store never starts one. The one request object_store 0.14 cannot send, a
//! DELETE with `If-Match`, goes through its HTTP client, signed here
//! (docs/azure.md explains the choice).

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use http::{Method, StatusCode};
use md5::{Digest, Md5};
use object_store::azure::{AzureConfigKey, AzureCredential, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::path::Path as BlobPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientConfigKey, ClientOptions, GetOptions, ObjectStore,
    ObjectStoreExt, PutMode, PutOptions, PutPayload, PutPayloadMut, RetryConfig, UpdateVersion,
};
use tokio::runtime::Runtime;

mod address;
mod emulator;
mod listing;
mod outcome;
mod timeout;

pub use address::Address;

use crate::backoff::Backoff;
use crate::document::{self, CopyError};
use crate::error::Error;
use crate::key::Key;
use crate::store::{Details, Entry, Precondition, Store, Waiter};

/// The metadata name under which a write records the document's MD5, for
/// information only: other clients can leave it stale, so it is never read.
const MD5_METADATA: &str = "etagstore_md5";
/// A document up to this size is hashed while `open` streams it, so that a
/// write conditioned on what was read (`edit`) needs no second GET.
const REMEMBER_UP_TO: u64 = 16 << 20;
/// How often a compare-and-swap re-reads after the service refused it
/// (412) although the document still matched: the same content written
/// again in between. Each round re-checks, none is a blind retry.
const CAS_ROUNDS: usize = 10;
/// Reads retried on a transport error or a 5xx, within this long.
const READ_RETRIES: usize = 3;
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest document an Azure store takes (docs/azure.md): the whole
/// document is held in memory before it is sent.
const MAX_DOCUMENT: u64 = 256 * 1024 * 1024;
/// Concurrent GETs of `list -l`, each hashing one document.
const LIST_CONCURRENCY: usize = 16;
/// The emulator's account, for messages.
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";

pub struct AzureStore {
    runtime: Arc<Runtime>,
    /// For reads: bounded retries with backoff.
    reads: MicrosoftAzure,
    /// For writes: no retry inside object_store, so a write whose outcome is
    /// unknown is reported, never sent a second time blindly.
    writes: MicrosoftAzure,
    http: HttpClient,
    prefix: String,
    account: String,
    container: String,
    /// The container's URL, for the requests object_store cannot send.
    container_url: String,
    /// How the requests sent here (List Blobs, the conditional DELETE) are
    /// signed; `None`: Entra ID, through object_store's credential.
    list_auth: Option<listing::ListAuth>,
    /// The last version `open` read whole in this process, with the MD5 of
    /// its bytes: the base of a write that follows (`edit`).
    read: Arc<Mutex<Option<Current>>>,
}

/// One version of a blob, as a read found it.
struct Current {
    path: BlobPath,
    /// The MD5 of the bytes of exactly this version; `None` after a HEAD.
    md5: Option<String>,
    service_etag: String,
    size: u64,
    modified: SystemTime,
    /// Metadata and content headers, kept by a write that replaces it.
    attributes: Attributes,
}

impl Current {
    /// The ETag for a precondition check: the MD5 of the bytes (a HEAD,
    /// which has none, only answers "exists").
    fn etag(&self) -> &str {
        self.md5.as_deref().unwrap_or_default()
    }
}

impl AzureStore {
    /// Opens the store; nothing is sent until a command needs it.
    pub fn open(address: Address) -> Result<AzureStore> {
        // ring for TLS; an error only means a provider is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime for the Azure store")?;

        let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(&address.container);
        if let Some(account) = &address.account {
            builder = builder.with_account(account);
        }
        // The same spellings object_store accepts for true.
        let emulator = builder
            .get_config_value(&AzureConfigKey::UseEmulator)
            .is_some_and(|value| {
                matches!(
                    value.to_ascii_lowercase().as_str(),
                    "1" | "true" | "on" | "yes" | "y"
                )
            });
        if emulator {
            emulator::check(&builder, &address)?;
        }
        let account = builder
            .get_config_value(&AzureConfigKey::AccountName)
            .or_else(|| emulator.then(|| EMULATOR_ACCOUNT.to_string()))
            .unwrap_or_default();
        let container_url = if emulator {
            let base = std::env::var("AZURITE_BLOB_STORAGE_URL")
                .unwrap_or_else(|_| emulator::DEFAULT_URL.to_string());
            format!(
                "{}/{account}/{}",
                base.trim_end_matches('/'),
                address.container
            )
        } else {
            let base = builder
                .get_config_value(&AzureConfigKey::Endpoint)
                .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
            format!("{}/{}", base.trim_end_matches('/'), address.container)
        };

        let list_auth = listing::ListAuth::from_config(&builder, emulator);

        // Bounded timeouts by default (see timeout.rs): no whole-request
        // timeout, which would cut a big body; client settings from the
        // environment (AZURE_TIMEOUT, AZURE_PROXY_URL, AZURE_ALLOW_HTTP, …)
        // still apply on top.
        let request_timeout = timeout::from_env()?;
        let mut options = ClientOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout_disabled()
            .with_allow_http(emulator);
        // As from_env() reads them: AZURE_ + the setting's name.
        for (name, value) in std::env::vars() {
            let name = name.to_ascii_lowercase();
            let key = name
                .strip_prefix("azure_")
                .map(str::parse::<ClientConfigKey>);
            if let Some(Ok(key)) = key {
                options = options.with_config(key, value);
            }
        }
        // One client, so reads and writes share connections. Building it
        // needs the runtime's context (hyper looks for a reactor).
        let http = {
            let _guard = runtime.enter();
            let inner = ReqwestConnector::default()
                .connect(&options)
                .context("cannot set up the HTTP client for the Azure store")?;
            HttpClient::new(timeout::Timed {
                inner,
                timeout: request_timeout,
            })
        };
        let build = |max_retries| {
            let retry = RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries,
                retry_timeout: RETRY_TIMEOUT,
            };
            builder
                .clone()
                .with_client_options(options.clone())
                .with_retry(retry)
                .with_http_connector(Shared(http.clone()))
                .build()
                .map_err(|e| {
                    let what = if account.is_empty() {
                        "no storage account is set".to_string()
                    } else {
                        format!("account '{account}': {}", one_line(&e.to_string()))
                    };
                    anyhow!(
                        "cannot open the Azure container '{}', {what}; \
                         set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY \
                         (or a SAS token, or AZURE_STORAGE_USE_EMULATOR=true for Azurite)",
                        address.container,
                    )
                })
        };
        let reads = build(READ_RETRIES)?;
        let writes = build(0)?;
        Ok(AzureStore {
            runtime: Arc::new(runtime),
            reads,
            writes,
            http,
            prefix: address.prefix,
            account,
            container: address.container,
            container_url,
            list_auth,
            read: Arc::new(Mutex::new(None)),
        })
    }

    /// The blob name of `tail` (an encoded key, or the start of one) under
    /// the store's prefix: the one place where blob names are made, for
    /// writes, reads and listings alike. Nothing is percent-encoded here;
    /// the URL encodes the name once, as it does every blob name.
    fn blob_name(&self, tail: &str) -> String {
        if self.prefix.is_empty() {
            tail.to_string()
        } else {
            format!("{}/{tail}", self.prefix)
        }
    }

    fn blob(&self, key: &Key) -> BlobPath {
        BlobPath::parse(self.blob_name(&key.file_name()))
            .expect("a checked prefix and an encoded key make a valid path")
    }

    /// The blob now, `None` if it does not exist (and the container does).
    async fn current(&self, path: &BlobPath, hash: bool) -> Result<Option<Current>> {
        match self.version(path, hash).await? {
            Some(current) => Ok(Some(current)),
            None => self.not_found().await,
        }
    }

    /// One version of the blob, `None` on a 404. With `hash`, one GET whose
    /// bytes are hashed: the MD5 of exactly the version the service ETag
    /// names. Without, a HEAD (service ETag, metadata and headers only).
    async fn version(&self, path: &BlobPath, hash: bool) -> Result<Option<Current>> {
        let options = GetOptions {
            head: !hash,
            ..GetOptions::default()
        };
        let result = match self.reads.get_opts(path, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(e, "read", path)),
        };
        let meta = &result.meta;
        let mut current = Current {
            path: path.clone(),
            md5: None,
            service_etag: meta
                .e_tag
                .clone()
                .ok_or_else(|| anyhow!("the service sent no ETag for '{path}'"))?,
            size: meta.size,
            modified: meta.last_modified.into(),
            attributes: result.attributes.clone(),
        };
        if hash {
            let mut stream = result.into_stream();
            let mut md5 = Md5::new();
            while let Some(chunk) = stream.next().await {
                md5.update(&chunk.map_err(|e| self.error(e, "read", path))?);
            }
            current.md5 = Some(document::hex(&md5.finalize()));
        }
        Ok(Some(current))
    }

    /// The version `open` read whole in this process, if it is of `path`
    /// and its bytes hash to the ETag the write is conditioned on: then it
    /// is the base of the write, with no second GET.
    fn read_before(&self, path: &BlobPath, precondition: &Precondition) -> Option<Current> {
        let Precondition::Matches(etag) = precondition else {
            return None;
        };
        let read = self.read.lock().ok()?.take()?;
        (read.path == *path && read.md5.as_deref() == Some(etag.as_str())).then_some(read)
    }

    /// A 404 means "no such blob" only if the container exists.
    async fn not_found<T>(&self) -> Result<Option<T>> {
        let probe = BlobPath::from("etagstore-container-probe");
        match self.reads.list_with_delimiter(Some(&probe)).await {
            Ok(_) => Ok(None),
            Err(e) => Err(self.error(e, "list", &probe)),
        }
    }

    /// One line that says what failed, with the account and container, and
    /// what to do about it.
    fn error(&self, error: object_store::Error, action: &str, path: &BlobPath) -> anyhow::Error {
        let (account, container) = (&self.account, &self.container);
        let text = one_line(&chain(&error));
        let kind = match &error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => "auth",
            // object_store keeps these statuses only as text.
            _ if text.contains("ContainerNotFound")
                || (action == "list" && text.contains("404 Not Found")) =>
            {
                "container"
            }
            _ if text.contains("401 Unauthorized") || text.contains("403 Forbidden") => "auth",
            _ => "other",
        };
        match kind {
            "container" => self.container_missing(),
            "auth" => self.refused(&text),
            _ => anyhow!(
                "cannot {action} '{path}' in the Azure container '{container}' of account \
                 '{account}': {}",
                short(&text)
            ),
        }
    }

    fn container_missing(&self) -> anyhow::Error {
        let (account, container) = (&self.account, &self.container);
        anyhow!(
            "the container '{container}' does not exist in the Azure storage account \
             '{account}'; create it (az storage container create --account-name {account} \
             --name {container}) or fix --store"
        )
    }

    fn refused(&self, detail: &str) -> anyhow::Error {
        anyhow!(
            "the Azure storage account '{}' refused access to the container '{}' ({}); \
             check AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY or the SAS token",
            self.account,
            self.container,
            short(detail)
        )
    }

    /// A write of the document with ETag `etag` failed: nothing was sent,
    /// the service said no (exit 1), or its outcome is unknown (exit 8; see
    /// outcome.rs).
    fn write_error(&self, error: object_store::Error, key: &Key, etag: &str) -> anyhow::Error {
        let path = self.blob(key);
        let outcome = outcome::of_write(&error);
        let error = self.error(error, "write", &path);
        match outcome {
            outcome::Outcome::Refused => error,
            outcome::Outcome::Unsent => anyhow!("{error:#}; nothing was written"),
            outcome::Outcome::Unknown => anyhow::Error::new(Error::OutcomeUnknown {
                key: key.as_str().to_string(),
                etag: etag.to_string(),
                detail: format!("{error:#}"),
            }),
        }
    }

    /// Sends `DELETE` with `If-Match`. object_store 0.14 has no conditional
    /// delete, so the request is made here, for the blob name exactly as
    /// every other request names it, and sent through the same HTTP client
    /// with no retry: a 412 then says what happened. It is signed with the
    /// Shared Key (`listing::shared_key`), carries the SAS token, or the
    /// Entra ID bearer token object_store holds.
    async fn delete_if_match(&self, path: &BlobPath, service_etag: &str) -> Result<Deleted> {
        let mut url =
            url::Url::parse(&format!("{}/", self.container_url)).context("the container URL")?;
        url.path_segments_mut()
            .map_err(|()| anyhow!("the container URL cannot hold a path"))?
            .pop_if_empty()
            .extend(path.parts().map(|part| part.as_ref().to_string()));
        let mut request = http::Request::builder()
            .method(Method::DELETE)
            .header("If-Match", service_etag)
            .header("x-ms-version", listing::VERSION);
        match &self.list_auth {
            Some(listing::ListAuth::SharedKey(key)) => {
                let (date, authorization) =
                    listing::shared_key(key, &self.account, "DELETE", service_etag, &url);
                request = request
                    .header("x-ms-date", date)
                    .header("Authorization", authorization);
            }
            Some(listing::ListAuth::Sas(pairs)) => {
                url.query_pairs_mut().extend_pairs(pairs);
            }
            None => {
                let credential = self
                    .writes
                    .credentials()
                    .get_credential()
                    .await
                    .map_err(|e| self.error(e, "delete", path))?;
                match credential.as_ref() {
                    AzureCredential::BearerToken(token) => {
                        request = request.header("Authorization", format!("Bearer {token}"));
                    }
                    AzureCredential::SASToken(pairs) => {
                        url.query_pairs_mut().extend_pairs(pairs);
                    }
                    // A key is always found by ListAuth::from_config.
                    _ => return Err(anyhow!("no way to sign the DELETE of '{path}'")),
                }
            }
        }
        let request = request
            .uri(url.as_str())
            .body(HttpRequestBody::empty())
            .context("cannot build the DELETE request")?;
        let response = self.http.execute(request).await.map_err(|e| {
            let detail = format!(
                "cannot delete '{path}' in the Azure container '{}' of account '{}': {}",
                self.container,
                self.account,
                short(&one_line(&chain(&e)))
            );
            match outcome::of_transport(&e) {
                outcome::Outcome::Unsent => anyhow!("{detail}; nothing was deleted"),
                _ => self.delete_unknown(path, detail),
            }
        })?;
        let status = response.status();
        match status {
            s if s.is_success() => Ok(Deleted::Yes),
            StatusCode::PRECONDITION_FAILED => Ok(Deleted::Changed),
            StatusCode::NOT_FOUND => Ok(Deleted::Changed),
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Err(anyhow!(
                "the Azure storage account '{}' refused to delete from the container '{}' \
                 (HTTP {status}); check the credentials",
                self.account,
                self.container
            )),
            _ => {
                let code = response
                    .headers()
                    .get("x-ms-error-code")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let detail = format!(
                    "cannot delete '{path}' in the Azure container '{}' of account '{}': \
                     HTTP {status} {code}",
                    self.container, self.account
                );
                if status.is_server_error() {
                    // As for a write (outcome.rs): a 5xx may come after the delete.
                    Err(self.delete_unknown(path, detail))
                } else {
                    Err(anyhow!(detail))
                }
            }
        }
    }

    /// A DELETE whose outcome is unknown: if it happened, the key is gone.
    fn delete_unknown(&self, path: &BlobPath, detail: String) -> anyhow::Error {
        let key = path
            .filename()
            .and_then(Key::from_file_name)
            .map_or_else(|| path.to_string(), |key| key.as_str().to_string());
        anyhow::Error::new(Error::OutcomeUnknown {
            key,
            etag: String::new(),
            detail,
        })
    }

    async fn put_async(
        &self,
        key: &Key,
        payload: PutPayload,
        etag: &str,
        precondition: &Precondition,
    ) -> Result<()> {
        let path = self.blob(key);
        let mut base = self.read_before(&path, precondition);
        for _ in 0..CAS_ROUNDS {
            let (mode, kept) = match precondition {
                Precondition::Missing => (PutMode::Create, Attributes::new()),
                // No condition, but what others set on the blob is kept.
                Precondition::Any => {
                    let current = self.version(&path, false).await.map_err(unwritten)?;
                    let kept = current.map(|c| c.attributes).unwrap_or_default();
                    (PutMode::Overwrite, kept)
                }
                Precondition::Exists | Precondition::Matches(_) => {
                    let current = match base.take() {
                        Some(base) => Some(base),
                        None => self
                            .current(&path, needs_bytes(precondition))
                            .await
                            .map_err(unwritten)?,
                    };
                    precondition.check(key, current.as_ref().map(Current::etag))?;
                    let current = current.expect("the precondition needs a document");
                    let mode = PutMode::Update(UpdateVersion {
                        e_tag: Some(current.service_etag),
                        version: None,
                    });
                    (mode, current.attributes)
                }
            };
            let options = PutOptions {
                mode,
                attributes: written(&kept, etag),
                ..PutOptions::default()
            };
            match self.writes.put_opts(&path, payload.clone(), options).await {
                Ok(_) => return Ok(()),
                // Someone wrote first: look again, and go on only if the
                // precondition still holds (the same bytes written again).
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    let current = self
                        .current(&path, needs_bytes(precondition))
                        .await
                        .map_err(unwritten)?;
                    precondition.check(key, current.as_ref().map(Current::etag))?;
                    base = current;
                }
                Err(object_store::Error::NotFound { .. }) => {
                    // A PUT finds no blob only when the container is missing.
                    self.not_found::<()>().await?;
                    precondition.check(key, None)?;
                }
                Err(e) => return Err(self.write_error(e, key, etag)),
            }
        }
        Err(conflict(key, precondition))
    }

    async fn delete_async(&self, key: &Key, precondition: &Precondition) -> Result<()> {
        let path = self.blob(key);
        let mut base = self.read_before(&path, precondition);
        for _ in 0..CAS_ROUNDS {
            let current = match base.take() {
                Some(base) => Some(base),
                None => self
                    .current(&path, needs_bytes(precondition))
                    .await
                    .map_err(unwritten)?,
            };
            precondition.check(key, current.as_ref().map(Current::etag))?;
            let Some(current) = current else {
                return Ok(()); // nothing to delete, and that was the condition
            };
            match self.delete_if_match(&path, &current.service_etag).await? {
                Deleted::Yes => return Ok(()),
                Deleted::Changed => continue,
            }
        }
        Err(conflict(key, precondition))
    }

    async fn list_async(&self, prefix: &str, details: bool) -> Result<Vec<Entry>> {
        let mut keys = self.list_keys(prefix).await?;
        keys.sort();
        if details {
            self.read_details(keys).await
        } else {
            Ok(keys
                .into_iter()
                .map(|key| Entry { key, details: None })
                .collect())
        }
    }

    /// The keys that start with `prefix`. With a Shared Key or a SAS token,
    /// one List Blobs request per page, filtered on the service (a key
    /// starts with PREFIX exactly when its encoding starts with PREFIX's
    /// encoding); with Entra ID, object_store's listing of the store's prefix.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<Key>> {
        let names: Vec<String> = match &self.list_auth {
            Some(auth) => listing::list(
                &self.http,
                auth,
                &self.container_url,
                &self.account,
                &self.blob_name(&crate::key::encode(prefix)),
                READ_RETRIES,
            )
            .await
            .map_err(|e| match e {
                listing::ListError::ContainerMissing => self.container_missing(),
                listing::ListError::Refused(detail) => self.refused(&detail),
                listing::ListError::Other(why) => anyhow!(
                    "cannot list the Azure container '{}' of account '{}': {}",
                    self.container,
                    self.account,
                    short(&one_line(&why))
                ),
            })?,
            None => {
                let root = (!self.prefix.is_empty()).then(|| {
                    BlobPath::parse(&self.prefix).expect("Address::parse checked the prefix")
                });
                let listed: Vec<object_store::ObjectMeta> = self
                    .reads
                    .list(root.as_ref())
                    .try_collect()
                    .await
                    .map_err(|e| {
                        self.error(e, "list", root.as_ref().unwrap_or(&BlobPath::default()))
                    })?;
                listed
                    .into_iter()
                    .map(|meta| meta.location.to_string())
                    .collect()
            }
        };
        Ok(names
            .iter()
            .filter_map(|name| self.key_of(name, prefix))
            .collect())
    }

    /// The key a blob name under the store's prefix stands for, if it
    /// starts with `prefix`: only blobs directly under the store's prefix,
    /// named as a key encodes, are keys.
    fn key_of(&self, name: &str, prefix: &str) -> Option<Key> {
        let name = if self.prefix.is_empty() {
            name
        } else {
            name.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?
        };
        Key::from_file_name(name).filter(|key| key.as_str().starts_with(prefix))
    }

    /// ETag, size and time of each key from one GET of it (the MD5 of its
    /// bytes, as `etag` prints it), a few at a time, in the order given. A
    /// key deleted meanwhile is left out.
    async fn read_details(&self, keys: Vec<Key>) -> Result<Vec<Entry>> {
        let entries: Vec<Option<Entry>> = futures_util::stream::iter(keys)
            .map(|key| async move {
                let current = self.version(&self.blob(&key), true).await?;
                Ok::<_, anyhow::Error>(current.map(|current| Entry {
                    key,
                    details: Some(Details {
                        etag: current.etag().to_string(),
                        size: current.size,
                        modified: current.modified,
                    }),
                }))
            })
            .buffered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(entries.into_iter().flatten().collect())
    }
}

impl Store for AzureStore {
    fn open(&self, key: &Key) -> Result<Option<Box<dyn Read>>> {
        let path = self.blob(key);
        let result = self.runtime.block_on(async {
            match self.reads.get(&path).await {
                Ok(result) => Ok(Some(result)),
                Err(object_store::Error::NotFound { .. }) => self.not_found().await,
                Err(e) => Err(self.error(e, "read", &path)),
            }
        })?;
        Ok(result.map(|result| {
            let name = format!(
                "'{path}' in the Azure container '{}' of account '{}'",
                self.container, self.account
            );
            let meta = &result.meta;
            let remember = match &meta.e_tag {
                Some(service_etag) if meta.size <= REMEMBER_UP_TO => Some(Remember {
                    slot: Arc::clone(&self.read),
                    md5: Md5::new(),
                    current: Current {
                        path: path.clone(),
                        md5: None,
                        service_etag: service_etag.clone(),
                        size: meta.size,
                        modified: meta.last_modified.into(),
                        attributes: result.attributes.clone(),
                    },
                }),
                _ => None,
            };
            Box::new(BlobReader {
                runtime: Arc::clone(&self.runtime),
                stream: result.into_stream(),
                chunk: Bytes::new(),
                name,
                remember,
            }) as Box<dyn Read>
        }))
    }

    fn put(&self, key: &Key, input: &mut dyn Read, precondition: &Precondition) -> Result<String> {
        // The whole document is held in memory: object_store sends one body,
        // and the write must not start before the input is known to be valid.
        // Reading stops past MAX_DOCUMENT bytes, so memory stays bounded.
        let mut payload = PayloadWriter {
            payload: PutPayloadMut::new().with_block_size(document::CHUNK),
            len: 0,
        };
        let copied = document::copy_validated(input, &mut payload).map_err(|e| match e {
            CopyError::Invalid(e) => anyhow::Error::new(e),
            CopyError::Write(e) if e.get_ref().is_some_and(|e| e.is::<TooLarge>()) => {
                anyhow::Error::new(Error::InvalidDocument(format!(
                    "larger than {} MiB ({MAX_DOCUMENT} bytes), the most an Azure store takes; \
                     nothing was written",
                    MAX_DOCUMENT / (1024 * 1024)
                )))
            }
            CopyError::Read(e) | CopyError::Write(e) => anyhow::Error::new(e),
        })?;
        let payload = payload.payload.freeze();
        self.runtime
            .block_on(self.put_async(key, payload, &copied.etag, precondition))?;
        Ok(copied.etag)
    }

    fn delete(&self, key: &Key, precondition: &Precondition) -> Result<()> {
        self.runtime.block_on(self.delete_async(key, precondition))
    }

    fn list(&self, prefix: &str, details: bool) -> Result<Vec<Entry>> {
        self.runtime.block_on(self.list_async(prefix, details))
    }

    /// Polls with HEAD: a wake-up means the service's ETag changed, so the
    /// body is read again only then.
    fn watch(&self, key: &Key) -> Result<Box<dyn Waiter>> {
        let path = self.blob(key);
        let version = self
            .runtime
            .block_on(self.version(&path, false))?
            .map(|current| current.service_etag);
        Ok(Box::new(VersionPoller {
            runtime: Arc::clone(&self.runtime),
            reads: self.reads.clone(),
            name: format!(
                "'{path}' in the Azure container '{}' of account '{}'",
                self.container, self.account
            ),
            path,
            version,
            backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(500)),
        }))
    }
}

/// Waits for the service's ETag of one blob to change (or the blob to
/// appear or go), one HEAD a poll, with backoff from 20 ms to 500 ms.
struct VersionPoller {
    runtime: Arc<Runtime>,
    reads: MicrosoftAzure,
    path: BlobPath,
    name: String,
    /// The service's ETag at the last look, `None`: no blob.
    version: Option<String>,
    backoff: Backoff,
}

impl Waiter for VersionPoller {
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(self.backoff.next_pause().min(left));
            let head = GetOptions {
                head: true,
                ..GetOptions::default()
            };
            let now = match self.runtime.block_on(self.reads.get_opts(&self.path, head)) {
                Ok(result) => result.meta.e_tag,
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => {
                    return Err(anyhow!(
                        "cannot read {}: {}",
                        self.name,
                        short(&one_line(&chain(&e)))
                    ))
                }
            };
            if now != self.version {
                self.version = now;
                return Ok(());
            }
        }
    }
}

enum Deleted {
    Yes,
    /// The blob changed or went away since its properties were read.
    Changed,
}

/// The precondition kept holding while the service kept refusing: the
/// document was rewritten with the same bytes over and over.
fn conflict(key: &Key, precondition: &Precondition) -> anyhow::Error {
    anyhow::Error::new(Error::PreconditionFailed {
        key: key.as_str().to_string(),
        given: precondition.as_flag().to_string(),
        found: precondition.as_flag().to_string(),
    })
    .context(format!(
        "the document kept changing during {CAS_ROUNDS} attempts"
    ))
}

/// object_store's builder takes a connector; this one hands out the shared client.
#[derive(Debug)]
struct Shared(HttpClient);

impl HttpConnector for Shared {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(self.0.clone())
    }
}

/// Collects the validated input in blocks, without copying it twice, up
/// to MAX_DOCUMENT bytes.
struct PayloadWriter {
    payload: PutPayloadMut,
    len: u64,
}

/// The input went past MAX_DOCUMENT.
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the document is too large")
    }
}

impl std::error::Error for TooLarge {}

impl Write for PayloadWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.len += buf.len() as u64;
        if self.len > MAX_DOCUMENT {
            return Err(io::Error::other(TooLarge));
        }
        self.payload.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blob's body as a `Read`: one GET response, streamed.
struct BlobReader {
    runtime: Arc<Runtime>,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    name: String,
    remember: Option<Remember>,
}

/// Hashes a body as it streams; read to its end, the version and its MD5
/// go to the store's `read` slot.
struct Remember {
    slot: Arc<Mutex<Option<Current>>>,
    md5: Md5,
    current: Current,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => {
                    if let Some(mut remember) = self.remember.take() {
                        remember.current.md5 = Some(document::hex(&remember.md5.finalize()));
                        if let Ok(mut slot) = remember.slot.lock() {
                            *slot = Some(remember.current);
                        }
                    }
                    return Ok(0);
                }
                Some(Ok(chunk)) => {
                    if let Some(remember) = &mut self.remember {
                        remember.md5.update(&chunk);
                    }
                    self.chunk = chunk
                }
                Some(Err(e)) => {
                    self.remember = None;
                    return Err(io::Error::other(format!(
                        "cannot read {}: {}",
                        self.name,
                        short(&one_line(&chain(&e)))
                    )));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Whether a precondition is decided by the MD5 of the bytes (`--etag ''`
/// too: its refusal names the ETag found); `'*'` only needs a HEAD.
fn needs_bytes(precondition: &Precondition) -> bool {
    matches!(
        precondition,
        Precondition::Matches(_) | Precondition::Missing
    )
}

/// What a write sets: the metadata and content headers others set on the
/// version it replaces, a JSON Content-Type (theirs if it names JSON), and
/// the MD5 as `etagstore_md5`, for information. Content-Encoding is not
/// kept: etagstore writes plain bytes.
fn written(kept: &Attributes, etag: &str) -> Attributes {
    let mut attributes = Attributes::new();
    for (name, value) in kept.iter() {
        let keep = match name {
            Attribute::CacheControl
            | Attribute::ContentDisposition
            | Attribute::ContentLanguage => true,
            Attribute::ContentType => is_json_type(value),
            Attribute::Metadata(name) => !name.eq_ignore_ascii_case(MD5_METADATA),
            _ => false,
        };
        if keep {
            attributes.insert(name.clone(), value.clone());
        }
    }
    if attributes.get(&Attribute::ContentType).is_none() {
        attributes.insert(Attribute::ContentType, "application/json".into());
    }
    attributes.insert(
        Attribute::Metadata(MD5_METADATA.into()),
        etag.to_string().into(),
    );
    attributes
}

/// `application/json` or `…+json`, with or without parameters.
fn is_json_type(value: &str) -> bool {
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json") || media.to_ascii_lowercase().ends_with("+json")
}

/// An error and its causes, each cause once: object_store's own message
/// says "error sending request", its source says "connection refused".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// Error text from the service may hold XML and newlines; an error is one
/// line, and of an XML error body only its code is kept.
fn one_line(text: &str) -> String {
    let text = match (text.find("<?xml"), text.find("<Code>")) {
        (Some(start), Some(code)) => {
            let code = &text[code + "<Code>".len()..];
            let code = code.split('<').next().unwrap_or("");
            format!("{}{code}", &text[..start])
        }
        _ => text.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most 500 characters of a service error.
fn short(text: &str) -> String {
    match text.char_indices().nth(500) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A read failed on the way to a write, before the write was sent: say
/// so, since the same words after a sent write would mean "unknown".
fn unwritten(error: anyhow::Error) -> anyhow::Error {
    if crate::error::exit_code(&error) == 1 {
        anyhow!("{error:#}; nothing was written")
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_name_a_container_and_a_prefix() {
        let parse = |s: &str| Address::parse(s).map(|r| r.map_err(|e| e.exit_code()));
        assert_eq!(parse("_filestore"), None);
        assert_eq!(parse("/tmp/az://x"), None);
        assert_eq!(
            parse("az://docs"),
            Some(Ok(Address {
                account: None,
                container: "docs".into(),
                prefix: String::new()
            }))
        );
        assert_eq!(
            parse("https://acct1.blob.core.windows.net/docs/team/a/"),
            Some(Ok(Address {
                account: Some("acct1".into()),
                container: "docs".into(),
                prefix: "team/a".into()
            }))
        );
        for bad in [
            "az://",
            "az://Docs",
            "az://a",
            "az://do--cs",
            "az://docs/a//b",
            "az://docs/../x",
            "https://example.com/docs",
            "https://.blob.core.windows.net/docs",
        ] {
            assert_eq!(parse(bad), Some(Err(2)), "{bad}");
        }
    }

    #[test]
    fn errors_from_the_service_become_one_short_line() {
        assert_eq!(one_line("a\n  <b>\r\nc"), "a <b> c");
        assert_eq!(
            one_line("403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>AuthorizationFailure</Code><Message>long\n</Message></Error>"),
            "403 Forbidden: AuthorizationFailure"
        );
        assert_eq!(short(&"x".repeat(600)).chars().count(), 501);
    }
}
