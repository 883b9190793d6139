//! The Azure Blob Storage store: one block blob per document, written with
//! the service's conditional requests.
//!
//! The ETag users see is the MD5 of the bytes, as on the file store. The
//! service's own ETag (an opaque version) stays inside: a write with
//! `--etag E` reads the blob's properties, compares their MD5 with `E`, then
//! writes with `If-Match: <service ETag>`, so nothing can land in between.
//! The MD5 travels with the blob as the metadata `etagstore_md5`; a blob
//! without it (written by another tool) is hashed when it is read.
//!
//! object_store does the requests, credentials and retries. It runs on a
//! current-thread tokio runtime that exists only in this store, so the file
//! store never starts one. The one request object_store 0.14 cannot send, a
//! DELETE with `If-Match`, goes through its HTTP client with a SAS URL from
//! its own `Signer` (docs/azure.md explains the choice).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use http::{Method, StatusCode};
use md5::{Digest, Md5};
use object_store::azure::{AzureConfigKey, AzureCredential, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::path::Path as BlobPath;
use object_store::signer::Signer;
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

use crate::document::{self, CopyError};
use crate::error::Error;
use crate::key::Key;
use crate::store::{Details, Entry, Precondition, Store};

/// The metadata name that holds the document's MD5 (lower-case hex).
const MD5_METADATA: &str = "etagstore_md5";
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
/// How long a SAS URL for one DELETE stays valid.
const SAS_LIFETIME: Duration = Duration::from_secs(300);
/// Concurrent property reads of `list -l`.
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
    /// How `list -l` signs its own List Blobs request; `None`: one
    /// properties read a key instead.
    list_auth: Option<listing::ListAuth>,
}

/// What a properties read found: the blob's MD5 and the service's ETag.
struct Current {
    md5: String,
    service_etag: String,
    size: u64,
    modified: SystemTime,
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
        })
    }

    fn blob(&self, key: &Key) -> BlobPath {
        let name = if self.prefix.is_empty() {
            key.file_name()
        } else {
            format!("{}/{}", self.prefix, key.file_name())
        };
        BlobPath::parse(name).expect("an encoded key is one valid path segment")
    }

    /// The blob's properties now, `None` if it does not exist. A blob
    /// without the MD5 metadata is read and hashed.
    async fn current(&self, path: &BlobPath) -> Result<Option<Current>> {
        let head = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = match self.reads.get_opts(path, head).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return self.not_found().await,
            Err(e) => return Err(self.error(e, "read", path)),
        };
        let md5 = result
            .attributes
            .get(&Attribute::Metadata(MD5_METADATA.into()))
            .map(|value| value.to_string())
            .filter(|md5| is_md5(md5));
        let meta = &result.meta;
        let service_etag = meta
            .e_tag
            .clone()
            .ok_or_else(|| anyhow!("the service sent no ETag for '{path}'"))?;
        if let Some(md5) = md5 {
            return Ok(Some(Current {
                md5,
                service_etag,
                size: meta.size,
                modified: meta.last_modified.into(),
            }));
        }
        // Written by another tool: hash the bytes of exactly that version.
        let get = GetOptions {
            if_match: Some(service_etag.clone()),
            ..GetOptions::default()
        };
        let result = match self.reads.get_opts(path, get).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return self.not_found().await,
            // Replaced since the HEAD: read the new version.
            Err(object_store::Error::Precondition { .. }) => {
                return Box::pin(self.current(path)).await
            }
            Err(e) => return Err(self.error(e, "read", path)),
        };
        let (size, modified) = (result.meta.size, result.meta.last_modified.into());
        let mut stream = result.into_stream();
        let mut md5 = Md5::new();
        while let Some(chunk) = stream.next().await {
            md5.update(&chunk.map_err(|e| self.error(e, "read", path))?);
        }
        Ok(Some(Current {
            md5: document::hex(&md5.finalize()),
            service_etag,
            size,
            modified,
        }))
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
    /// delete, so the request is authorised by a short-lived SAS URL from its
    /// `Signer` (or the SAS token the store was opened with) and sent through
    /// the same HTTP client, with no retry: a 412 then says what happened.
    async fn delete_if_match(&self, path: &BlobPath, service_etag: &str) -> Result<Deleted> {
        let credential = self
            .writes
            .credentials()
            .get_credential()
            .await
            .map_err(|e| self.error(e, "delete", path))?;
        let url = match credential.as_ref() {
            AzureCredential::SASToken(pairs) => {
                let mut url = url::Url::parse(&format!("{}/", self.container_url))
                    .context("the container URL")?;
                url.path_segments_mut()
                    .map_err(|()| anyhow!("the container URL cannot hold a path"))?
                    .pop_if_empty()
                    .extend(path.parts().map(|part| part.as_ref().to_string()));
                url.query_pairs_mut().extend_pairs(pairs);
                url
            }
            _ => self
                .writes
                .signed_url(Method::DELETE, path, SAS_LIFETIME)
                .await
                .map_err(|e| self.error(e, "delete", path))?,
        };
        let request = http::Request::builder()
            .method(Method::DELETE)
            .uri(url.as_str())
            .header("If-Match", service_etag)
            .header("x-ms-version", "2021-08-06")
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
        for _ in 0..CAS_ROUNDS {
            let mode = match precondition {
                Precondition::Any => PutMode::Overwrite,
                Precondition::Missing => PutMode::Create,
                Precondition::Exists | Precondition::Matches(_) => {
                    let current = self.current(&path).await?;
                    precondition.check(key, current.as_ref().map(|c| c.md5.as_str()))?;
                    let current = current.expect("the precondition needs a document");
                    PutMode::Update(UpdateVersion {
                        e_tag: Some(current.service_etag),
                        version: None,
                    })
                }
            };
            let options = PutOptions {
                mode,
                attributes: Attributes::from_iter([
                    (Attribute::ContentType, "application/json".to_string()),
                    (Attribute::Metadata(MD5_METADATA.into()), etag.to_string()),
                ]),
                ..PutOptions::default()
            };
            match self.writes.put_opts(&path, payload.clone(), options).await {
                Ok(_) => return Ok(()),
                // Someone wrote first: look again, and go on only if the
                // precondition still holds (the same bytes written again).
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    let current = self.current(&path).await?;
                    precondition.check(key, current.as_ref().map(|c| c.md5.as_str()))?;
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
        for _ in 0..CAS_ROUNDS {
            let current = self.current(&path).await?;
            precondition.check(key, current.as_ref().map(|c| c.md5.as_str()))?;
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
        if let (true, Some(auth)) = (details, &self.list_auth) {
            return self.list_with_details(auth, prefix).await;
        }
        let root = (!self.prefix.is_empty()).then(|| BlobPath::from(self.prefix.as_str()));
        let listed: Vec<object_store::ObjectMeta> = self
            .reads
            .list(root.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.error(e, "list", root.as_ref().unwrap_or(&BlobPath::default())))?;
        let mut keys: Vec<Key> = listed
            .iter()
            .filter_map(|meta| self.key_of(meta.location.as_ref(), prefix))
            .collect();
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

    /// `list -l` from the listing itself: MD5 (metadata), size and time of
    /// each blob come from the same entry of one List Blobs response.
    async fn list_with_details(
        &self,
        auth: &listing::ListAuth,
        prefix: &str,
    ) -> Result<Vec<Entry>> {
        // A key starts with PREFIX exactly when its encoding starts with
        // PREFIX's encoding, so the service can filter.
        let blob_prefix = if self.prefix.is_empty() {
            crate::key::encode(prefix)
        } else {
            format!("{}/{}", self.prefix, crate::key::encode(prefix))
        };
        let listed = listing::list(
            &self.http,
            auth,
            &self.container_url,
            &self.account,
            &blob_prefix,
            MD5_METADATA,
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
        })?;
        let mut entries = Vec::new();
        let mut unhashed = Vec::new();
        for blob in listed {
            let Some(key) = self.key_of(&blob.name, prefix) else {
                continue;
            };
            match blob.md5.filter(|md5| is_md5(md5)) {
                Some(md5) => entries.push(Entry {
                    key,
                    details: Some(Details {
                        etag: md5,
                        size: blob.size,
                        modified: blob.modified,
                    }),
                }),
                // Written by another tool: read and hash it.
                None => unhashed.push(key),
            }
        }
        entries.extend(self.read_details(unhashed).await?);
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
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

    /// ETag, size and time of each key from a properties read (hashing the
    /// blob if it has no MD5), a few at a time, in the order given. A key
    /// deleted meanwhile is left out.
    async fn read_details(&self, keys: Vec<Key>) -> Result<Vec<Entry>> {
        let entries: Vec<Option<Entry>> = futures_util::stream::iter(keys)
            .map(|key| async move {
                let current = self.current(&self.blob(&key)).await?;
                Ok::<_, anyhow::Error>(current.map(|current| Entry {
                    key,
                    details: Some(Details {
                        etag: current.md5,
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
            Box::new(BlobReader {
                runtime: Arc::clone(&self.runtime),
                stream: result.into_stream(),
                chunk: Bytes::new(),
                name,
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
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => {
                    return Err(io::Error::other(format!(
                        "cannot read {}: {}",
                        self.name,
                        short(&one_line(&chain(&e)))
                    )))
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

fn is_md5(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
