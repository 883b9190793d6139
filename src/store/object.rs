//! The store over any object service object_store speaks (Azure Blob
//! Storage, S3): one object per document, written with the service's
//! conditional requests. A backend (azure.rs, s3.rs) adds only what
//! differs: its address, its builder, its conditional delete, its error
//! wording and, where it has one, a better listing.
//!
//! The ETag users see is the MD5 of the bytes, as on the file store. The
//! service's own ETag (a version) stays inside: a write with `--etag E`
//! learns the MD5 of one version, compares it with `E`, then writes with
//! `If-Match: <service ETag of that version>`, so nothing can land in
//! between. The MD5 comes from hashing the bytes of a GET, or, where the
//! service vouches for it, from a HEAD (S3: its own ETag, which no client
//! can set, equal to the MD5 etagstore recorded; docs/s3.md). Nothing a
//! client can set alone (the `etagstore_md5` metadata, `Content-MD5`)
//! decides a precondition: on Azure both can be carried stale onto new
//! bytes by ordinary SDK code (docs/azure.md), so there it is always a GET.
//!
//! object_store does the requests, credentials and retries. It runs on a
//! current-thread tokio runtime that exists only in this store, so the file
//! store never starts one.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use object_store::client::{HttpClient, HttpConnector, ReqwestConnector};
use object_store::path::Path as BlobPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientConfigKey, ClientOptions, GetOptions, ObjectStore,
    ObjectStoreExt, PutMode, PutOptions, PutPayload, PutPayloadMut, RetryConfig, UpdateVersion,
};
use tokio::runtime::Runtime;

pub mod outcome;
pub mod timeout;

use crate::backoff::Backoff;
use crate::document::{self, CopyError};
use crate::error::Error;
use crate::key::Key;
use crate::store::{Details, Entry, Precondition, Store, Waiter};

/// The metadata name under which a write records the document's MD5, for
/// information only: other clients can leave it stale, so it is never read.
const MD5_METADATA: &str = "etagstore_md5";
/// A document up to this size is hashed while `read` streams it, so that a
/// write conditioned on what was read (`edit`) needs no second GET.
const REMEMBER_UP_TO: u64 = 16 << 20;
/// How often a compare-and-swap re-reads after the service refused it
/// (412, 409) although the document still matched: the same content
/// written again in between. Each round re-checks, none is a blind retry.
const CAS_ROUNDS: usize = 10;
/// Reads retried on a transport error or a 5xx, within this long.
pub const READ_RETRIES: usize = 3;
const RETRY_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest document an object store takes (docs/azure.md, docs/s3.md):
/// the whole document is held in memory before it is sent.
const MAX_DOCUMENT: u64 = 256 * 1024 * 1024;
/// Concurrent GETs of `list -l`, each hashing one document.
const LIST_CONCURRENCY: usize = 16;

/// What differs between object services.
pub trait Backend: Send + Sync {
    /// Where the documents are, for messages: "the Azure container 'c' of
    /// account 'a'".
    fn place(&self) -> String;

    /// What the store is called in the size limit: "an Azure store".
    fn kind(&self) -> &'static str;

    /// One line that says what failed and what to do about it.
    fn error(&self, error: object_store::Error, action: &str, path: &BlobPath) -> anyhow::Error;

    /// Deletes the object if its service ETag is still `service_etag`,
    /// with no retry (object_store 0.14 has no conditional delete).
    fn delete_if_match<'a>(
        &'a self,
        path: &'a BlobPath,
        service_etag: &'a str,
    ) -> BoxFuture<'a, Result<Deleted>>;

    /// The MD5 of the bytes of the version a HEAD describes, when the
    /// service itself vouches for it: its ETag, which no client can set,
    /// is known to be that MD5 (`recorded` is the `etagstore_md5` metadata
    /// of the same answer). `None`: the bytes must be read and hashed.
    fn proven_md5(&self, _service_etag: &str, _recorded: Option<&str>) -> Option<String> {
        None
    }

    /// Whether `proven_md5` can ever answer: then a conditional write
    /// sends a HEAD first and reads the bytes only if it proves nothing.
    fn heads_can_prove_md5(&self) -> bool {
        false
    }

    /// The names of the objects that start with `name_prefix`, if the
    /// backend lists them itself; `None`: object_store's listing of the
    /// store's prefix, filtered here.
    fn list_names<'a>(
        &'a self,
        _name_prefix: &'a str,
    ) -> Option<BoxFuture<'a, Result<Vec<String>>>> {
        None
    }
}

/// What a conditional delete did.
pub enum Deleted {
    Yes,
    /// The object changed or went away since it was read.
    Changed,
}

/// A current-thread runtime for one store.
pub fn runtime(what: &str) -> Result<Runtime> {
    // ring for TLS; an error only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .with_context(|| format!("cannot start the runtime for the {what} store"))
}

/// Bounded timeouts by default (see timeout.rs): no whole-request timeout,
/// which would cut a big body; client settings from the environment
/// (`{env_prefix}TIMEOUT`, `…PROXY_URL`, `…ALLOW_HTTP`, …) still apply on
/// top, as object_store's `from_env()` reads them.
pub fn client_options(env_prefix: &str, allow_http: bool) -> ClientOptions {
    let mut options = ClientOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout_disabled()
        .with_allow_http(allow_http);
    for (name, value) in std::env::vars() {
        let name = name.to_ascii_lowercase();
        let key = name
            .strip_prefix(env_prefix)
            .map(str::parse::<ClientConfigKey>);
        if let Some(Ok(key)) = key {
            options = options.with_config(key, value);
        }
    }
    options
}

/// One HTTP client with the store's timeouts, so reads and writes share
/// connections. Building it needs the runtime's context (hyper looks for a
/// reactor).
pub fn http_client(runtime: &Runtime, options: &ClientOptions, what: &str) -> Result<HttpClient> {
    let request_timeout = timeout::from_env()?;
    let _guard = runtime.enter();
    let inner = ReqwestConnector::default()
        .connect(options)
        .with_context(|| format!("cannot set up the HTTP client for the {what} store"))?;
    Ok(HttpClient::new(timeout::Timed {
        inner,
        timeout: request_timeout,
    }))
}

/// Retries with backoff, at most `max_retries` (0 for writes: a write whose
/// outcome is unknown is reported, never sent a second time blindly).
pub fn retry(max_retries: usize) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries,
        retry_timeout: RETRY_TIMEOUT,
    }
}

/// object_store's builders take a connector; this one hands out the
/// shared client, except where object_store asks for plain HTTP that the
/// store's own options do not allow: the instance-metadata credentials
/// (EC2's and Azure's metadata services are `http://169.254.169.254`) get
/// a client of their own, with the same timeouts.
#[derive(Debug)]
pub struct Shared {
    client: HttpClient,
    allow_http: bool,
}

impl Shared {
    /// `client`, made from `options`.
    pub fn new(client: HttpClient, options: &ClientOptions) -> Shared {
        Shared {
            client,
            allow_http: allows_http(options),
        }
    }
}

impl HttpConnector for Shared {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        if self.allow_http || !allows_http(options) {
            return Ok(self.client.clone());
        }
        let inner = ReqwestConnector::default().connect(options)?;
        let timeout = timeout::from_env().unwrap_or(timeout::DEFAULT);
        Ok(HttpClient::new(timeout::Timed { inner, timeout }))
    }
}

/// Whether `options` allow plain HTTP, with the spellings object_store
/// accepts for true.
pub fn allows_http(options: &ClientOptions) -> bool {
    options
        .get_config_value(&ClientConfigKey::AllowHttp)
        .is_some_and(|value| {
            matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "on" | "yes" | "y"
            )
        })
}

pub struct Objects {
    runtime: Arc<Runtime>,
    /// For reads: bounded retries with backoff.
    reads: Arc<dyn ObjectStore>,
    /// For writes: no retry inside object_store, so a write whose outcome is
    /// unknown is reported, never sent a second time blindly.
    writes: Arc<dyn ObjectStore>,
    /// Object-name prefix without leading or trailing `/`; empty for none.
    prefix: String,
    backend: Box<dyn Backend>,
    /// The last version `read` read whole in this process, with the MD5 of
    /// its bytes: the base of a write that follows (`edit`).
    read: Arc<Mutex<Option<Current>>>,
}

/// One version of an object, as a read found it.
struct Current {
    path: BlobPath,
    /// The MD5 of the bytes of exactly this version; `None` after a HEAD
    /// the service does not vouch for (`Backend::proven_md5`).
    md5: Option<String>,
    service_etag: String,
    size: u64,
    modified: SystemTime,
    /// Metadata and content headers, kept by a write that replaces it.
    attributes: Attributes,
}

impl Current {
    /// The ETag for a precondition check: the MD5 of the bytes (a HEAD
    /// without one only answers "exists").
    fn etag(&self) -> &str {
        self.md5.as_deref().unwrap_or_default()
    }
}

impl Objects {
    /// A store; nothing is sent until a command needs it.
    pub fn new(
        runtime: Runtime,
        reads: Arc<dyn ObjectStore>,
        writes: Arc<dyn ObjectStore>,
        prefix: String,
        backend: Box<dyn Backend>,
    ) -> Objects {
        Objects {
            runtime: Arc::new(runtime),
            reads,
            writes,
            prefix,
            backend,
            read: Arc::new(Mutex::new(None)),
        }
    }

    /// The object name of `tail` (an encoded key, or the start of one)
    /// under the store's prefix: the one place where object names are
    /// made, for writes, reads and listings alike. Nothing is
    /// percent-encoded here; the URL encodes the name once, as it does
    /// every object name.
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

    /// "'PATH' in the Azure container …", for messages.
    fn name(&self, path: &BlobPath) -> String {
        format!("'{path}' in {}", self.backend.place())
    }

    fn error(&self, error: object_store::Error, action: &str, path: &BlobPath) -> anyhow::Error {
        self.backend.error(error, action, path)
    }

    /// The object now, `None` if it does not exist (and the container does).
    /// With `hash`, the MD5 of its bytes: from a HEAD where the service
    /// vouches for it (`Backend::proven_md5`), else from a GET.
    async fn current(&self, path: &BlobPath, hash: bool) -> Result<Option<Current>> {
        let head_first = hash && self.backend.heads_can_prove_md5();
        let found = match self.version(path, !head_first && hash).await? {
            Some(current) if hash && current.md5.is_none() => self.version(path, true).await?,
            found => found,
        };
        match found {
            Some(current) => Ok(Some(current)),
            None => self.not_found().await,
        }
    }

    /// One version of the object, `None` on a 404. With `hash`, one GET
    /// whose bytes are hashed: the MD5 of exactly the version the service
    /// ETag names. Without, a HEAD (service ETag, metadata and headers, and
    /// the MD5 only if the service vouches for it).
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
        if !hash {
            let recorded = current
                .attributes
                .iter()
                .find(|(name, _)| {
                    matches!(name, Attribute::Metadata(name) if name.eq_ignore_ascii_case(MD5_METADATA))
                })
                .map(|(_, value)| value.as_ref());
            current.md5 = self.backend.proven_md5(&current.service_etag, recorded);
        } else {
            let mut stream = result.into_stream();
            let mut md5 = Md5::new();
            while let Some(chunk) = stream.next().await {
                md5.update(&chunk.map_err(|e| self.error(e, "read", path))?);
            }
            current.md5 = Some(document::hex(&md5.finalize()));
        }
        Ok(Some(current))
    }

    /// The version `read` read whole in this process, if it is of `path`
    /// and its bytes hash to the ETag the write is conditioned on: then it
    /// is the base of the write, with no second GET.
    fn read_before(&self, path: &BlobPath, precondition: &Precondition) -> Option<Current> {
        let Precondition::Matches(etag) = precondition else {
            return None;
        };
        let read = self.read.lock().ok()?.take()?;
        (read.path == *path && read.md5.as_deref() == Some(etag.as_str())).then_some(read)
    }

    /// A 404 means "no such object" only if the container exists.
    async fn not_found<T>(&self) -> Result<Option<T>> {
        let probe = BlobPath::from("etagstore-container-probe");
        match self.reads.list_with_delimiter(Some(&probe)).await {
            Ok(_) => Ok(None),
            Err(e) => Err(self.error(e, "list", &probe)),
        }
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
                // No condition, but what others set on the object is kept.
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
            // Tests hold racing writers here, all past their read, so that
            // only the service's condition can pick the winner.
            crate::faults::pause(crate::faults::Pause::BeforeSend);
            match self.writes.put_opts(&path, payload.clone(), options).await {
                Ok(_) => return Ok(()),
                // Someone wrote first (412), or a concurrent conditional
                // write was in flight (S3's 409, object_store's
                // AlreadyExists): look again, and go on only if the
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
                    // A PUT finds no object only when the container is missing.
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
            crate::faults::pause(crate::faults::Pause::BeforeSend);
            match self
                .backend
                .delete_if_match(&path, &current.service_etag)
                .await?
            {
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

    /// The keys that start with `prefix`: the backend's own listing of the
    /// names that start with PREFIX's encoding (a key starts with PREFIX
    /// exactly when its encoding does), or object_store's listing of the
    /// store's prefix.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<Key>> {
        let name_prefix = self.blob_name(&crate::key::encode(prefix));
        let names: Vec<String> = match self.backend.list_names(&name_prefix) {
            Some(listing) => listing.await?,
            None => {
                let root = (!self.prefix.is_empty()).then(|| {
                    BlobPath::parse(&self.prefix).expect("the address parser checked the prefix")
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

    /// The key an object name under the store's prefix stands for, if it
    /// starts with `prefix`: only objects directly under the store's
    /// prefix, named as a key encodes, are keys.
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

impl Store for Objects {
    fn read(&self, key: &Key) -> Result<Option<Box<dyn Read>>> {
        let path = self.blob(key);
        let result = self.runtime.block_on(async {
            match self.reads.get(&path).await {
                Ok(result) => Ok(Some(result)),
                Err(object_store::Error::NotFound { .. }) => self.not_found().await,
                Err(e) => Err(self.error(e, "read", &path)),
            }
        })?;
        Ok(result.map(|result| {
            let name = self.name(&path);
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
                    "larger than {} MiB ({MAX_DOCUMENT} bytes), the most {} takes; \
                     nothing was written",
                    MAX_DOCUMENT / (1024 * 1024),
                    self.backend.kind()
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
            reads: Arc::clone(&self.reads),
            name: self.name(&path),
            path,
            version,
            backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(500)),
        }))
    }
}

/// Waits for the service's ETag of one object to change (or the object to
/// appear or go), one HEAD a poll, with backoff from 20 ms to 500 ms.
struct VersionPoller {
    runtime: Arc<Runtime>,
    reads: Arc<dyn ObjectStore>,
    path: BlobPath,
    name: String,
    /// The service's ETag at the last look, `None`: no object.
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

/// A DELETE whose outcome is unknown: if it happened, the key is gone.
pub fn delete_unknown(path: &BlobPath, detail: String) -> anyhow::Error {
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

/// An object's body as a `Read`: one GET response, streamed.
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
pub fn chain(error: &dyn std::error::Error) -> String {
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
pub fn one_line(text: &str) -> String {
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
pub fn short(text: &str) -> String {
    match text.char_indices().nth(500) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// One segment of a prefix: the characters every object tool and URL
/// carries unchanged, and no `.` or `..` that a client could resolve away.
pub fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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
    fn errors_from_the_service_become_one_short_line() {
        assert_eq!(one_line("a\n  <b>\r\nc"), "a <b> c");
        assert_eq!(
            one_line("403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>AuthorizationFailure</Code><Message>long\n</Message></Error>"),
            "403 Forbidden: AuthorizationFailure"
        );
        assert_eq!(short(&"x".repeat(600)).chars().count(), 501);
    }
}
