//! The Azure Blob Storage store: one block blob per document, on the
//! object-store layer (object.rs), which decides every precondition by the
//! MD5 of the bytes of the exact version it conditions on (docs/azure.md
//! says why metadata never does).
//!
//! What is Azure's own: the address (`az://…`, address.rs), the builder and
//! its emulator rules (emulator.rs), the error wording, the listing of a
//! prefix that is not a whole path segment (listing.rs), and the one
//! request object_store 0.14 cannot send, a DELETE with `If-Match`, which
//! goes through its HTTP client, signed here (docs/azure.md explains the
//! choice).

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use futures_util::future::BoxFuture;
use http::{Method, StatusCode};
use object_store::azure::{AzureConfigKey, AzureCredential, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::client::{HttpClient, HttpRequestBody};
use object_store::path::Path as BlobPath;

mod address;
mod emulator;
mod listing;
#[doc(hidden)]
pub mod shared_key;

pub use address::Address;

use super::object::{self, chain, one_line, outcome, short, Backend, Deleted, Objects};

/// The emulator's account, for messages.
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";

/// What the object-store layer needs to know of an Azure container.
struct Azure {
    /// For the conditional DELETE's Entra ID credential.
    writes: MicrosoftAzure,
    http: HttpClient,
    account: String,
    container: String,
    /// The container's URL, for the requests object_store cannot send.
    container_url: String,
    /// How the requests sent here (List Blobs, the conditional DELETE) are
    /// signed; `None`: Entra ID, through object_store's credential.
    list_auth: Option<listing::ListAuth>,
}

/// Opens the store; nothing is sent until a command needs it.
pub fn open(address: Address) -> Result<Objects> {
    let runtime = object::runtime("Azure")?;

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

    // As from_env() reads them: AZURE_ + the setting's name.
    let options = object::client_options("azure_", emulator);
    let http = object::http_client(&runtime, &options, "Azure")?;
    let build = |max_retries| {
        builder
            .clone()
            .with_client_options(options.clone())
            .with_retry(object::retry(max_retries))
            .with_http_connector(object::Shared::new(http.clone(), &options))
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
    // Building a client (the metadata service's, see object::Shared) needs
    // the runtime's context.
    let (reads, writes) = {
        let _guard = runtime.enter();
        (build(object::READ_RETRIES)?, build(0)?)
    };
    let backend = Azure {
        writes: writes.clone(),
        http,
        account,
        container: address.container,
        container_url,
        list_auth,
    };
    Ok(Objects::new(
        runtime,
        Arc::new(reads),
        Arc::new(writes),
        address.prefix,
        Box::new(backend),
    ))
}

impl Backend for Azure {
    fn place(&self) -> String {
        format!(
            "the Azure container '{}' of account '{}'",
            self.container, self.account
        )
    }

    fn kind(&self) -> &'static str {
        "an Azure store"
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

    fn delete_if_match<'a>(
        &'a self,
        path: &'a BlobPath,
        service_etag: &'a str,
    ) -> BoxFuture<'a, Result<Deleted>> {
        Box::pin(self.delete_if_match(path, service_etag))
    }

    /// With a Shared Key or a SAS token, one List Blobs request per page,
    /// filtered on the service; with Entra ID, object_store's listing.
    fn list_names<'a>(
        &'a self,
        name_prefix: &'a str,
    ) -> Option<BoxFuture<'a, Result<Vec<String>>>> {
        let auth = self.list_auth.as_ref()?;
        Some(Box::pin(async move {
            listing::list(
                &self.http,
                auth,
                &self.container_url,
                &self.account,
                name_prefix,
                object::READ_RETRIES,
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
            })
        }))
    }
}

impl Azure {
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

    /// Sends `DELETE` with `If-Match`. object_store 0.14 has no conditional
    /// delete, so the request is made here, for the blob name exactly as
    /// every other request names it, and sent through the same HTTP client
    /// with no retry: a 412 then says what happened. It is signed with the
    /// Shared Key (`shared_key::sign`), carries the SAS token, or the
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
            .header("x-ms-version", shared_key::VERSION);
        match &self.list_auth {
            Some(listing::ListAuth::SharedKey(key)) => {
                let (date, authorization) = shared_key::sign(
                    key,
                    &self.account,
                    &shared_key::Request {
                        method: "DELETE",
                        url: &url,
                        content_length: 0,
                        if_match: service_etag,
                        headers: &[],
                    },
                );
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
                _ => object::delete_unknown(path, detail),
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
                    Err(object::delete_unknown(path, detail))
                } else {
                    Err(anyhow!(detail))
                }
            }
        }
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
}
