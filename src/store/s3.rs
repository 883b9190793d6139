//! The Amazon S3 store (and S3-compatible services reached through
//! `AWS_ENDPOINT_URL`): one object per document, on the object-store layer
//! (object.rs), which decides every precondition by the MD5 of the bytes
//! of the exact version it conditions on. S3's own ETag is that MD5 only
//! for a single-part upload without SSE-KMS, so it is taken for one only
//! where it equals the MD5 etagstore recorded with the document
//! (`proven_md5`): then a conditional write needs a HEAD, not a GET.
//! Otherwise it is only the version a write or delete is conditioned on.
//!
//! What is S3's own: the address (`s3://BUCKET[/PREFIX]`), the builder
//! (object_store's `AmazonS3Builder::from_env()`, with conditional puts as
//! `If-Match`/`If-None-Match`), the error wording, and the conditional
//! delete: object_store 0.14 has none, so a DELETE with `If-Match` is sent
//! here, on a URL object_store presigns with the store's own credentials
//! and `If-Match` among the signed headers (no signer of our own).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::client::{HttpClient, HttpRequestBody};
use object_store::path::Path as BlobPath;
use object_store::signer::{SignedUrlOptions, Signer};

use super::object::{self, chain, one_line, outcome, short, Backend, Deleted, Objects};
use crate::error::{escape_controls, Error};

/// Where an S3 store lives: `s3://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub bucket: String,
    /// Object-name prefix without leading or trailing `/`; empty for none.
    pub prefix: String,
}

impl Address {
    /// `None` if `location` is not an `s3://` URL; a malformed one is a
    /// usage error (exit 2). Credentials never go in it, and an error never
    /// echoes what comes after a `?` or `#`, or before an `@`.
    pub fn parse(location: &str) -> Option<Result<Address, Error>> {
        let rest = location.strip_prefix("s3://")?;
        // Never anything from the first `?` or `#` on, nor before an `@`.
        let kept = &location[..location.find(['?', '#']).unwrap_or(location.len())];
        let shown = match kept.rfind('@') {
            Some(at) => format!("s3://…{}", escape_controls(&kept[at..])),
            None => escape_controls(kept),
        };
        let invalid = |why: &str| Error::Usage(format!("invalid store URL \"{shown}\": {why}"));
        if location.contains(['?', '#', '@']) {
            return Some(Err(invalid(
                "an s3:// store takes no query, fragment or user; give credentials in \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, never in --store",
            )));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !bucket.contains("..");
        if !valid_bucket {
            return Some(Err(invalid(
                "a bucket name is 3 to 63 lower-case letters, digits, '.' and '-', \
                 starting and ending with a letter or digit",
            )));
        }
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        if !prefix.is_empty() && !prefix.split('/').all(object::valid_segment) {
            return Some(Err(invalid(
                "the prefix must be names of ASCII letters, digits, '-', '_' and '.' \
                 separated by single '/', without '.' or '..'",
            )));
        }
        Some(Ok(Address {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }
}

/// What the object-store layer needs to know of a bucket.
struct S3 {
    /// Presigns the conditional DELETE with the store's credentials.
    writes: AmazonS3,
    http: HttpClient,
    bucket: String,
}

/// Opens the store; nothing is sent until a command needs it.
pub fn open(address: Address) -> Result<Objects> {
    let runtime = object::runtime("S3")?;
    let builder = AmazonS3Builder::from_env()
        .with_bucket_name(&address.bucket)
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    // As from_env() reads them: AWS_ + the setting's name (AWS_ALLOW_HTTP, …).
    let options = object::client_options("aws_", false);
    // The HTTP client refuses a plain-HTTP URL without it, after the request
    // is made but before anything is sent: say so now, not "outcome unknown".
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint))
        .unwrap_or_default();
    let allow_http = object::allows_http(&options);
    if endpoint.to_ascii_lowercase().starts_with("http://") && !allow_http {
        return Err(Error::Usage(
            "AWS_ENDPOINT_URL is a plain http:// URL; set AWS_ALLOW_HTTP=true to send \
             requests (and signatures) to it unencrypted, or use https://"
                .to_string(),
        )
        .into());
    }
    let http = object::http_client(&runtime, &options, "S3")?;
    let build = |max_retries| {
        builder
            .clone()
            .with_client_options(options.clone())
            .with_retry(object::retry(max_retries))
            .with_http_connector(object::Shared::new(http.clone(), &options))
            .build()
            .map_err(|e| {
                anyhow!(
                    "cannot open the S3 bucket '{}': {}; set AWS_REGION, and \
                     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (profiles are not read)",
                    address.bucket,
                    short(&one_line(&e.to_string()))
                )
            })
    };
    // Building a client (the metadata service's, see object::Shared) needs
    // the runtime's context.
    let (reads, writes) = {
        let _guard = runtime.enter();
        (build(object::READ_RETRIES)?, build(0)?)
    };
    let backend = S3 {
        writes: writes.clone(),
        http,
        bucket: address.bucket,
    };
    Ok(Objects::new(
        runtime,
        Arc::new(reads),
        Arc::new(writes),
        address.prefix,
        Box::new(backend),
    ))
}

impl Backend for S3 {
    fn place(&self) -> String {
        format!("the S3 bucket '{}'", self.bucket)
    }

    fn kind(&self) -> &'static str {
        "an S3 store"
    }

    fn error(&self, error: object_store::Error, action: &str, path: &BlobPath) -> anyhow::Error {
        let bucket = &self.bucket;
        let text = one_line(&chain(&error));
        match &error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => self.refused(&text),
            // object_store keeps the service's codes only as text.
            _ if text.contains("NoSuchBucket")
                || (action == "list" && text.contains("404 Not Found")) =>
            {
                anyhow!(
                    "the S3 bucket '{bucket}' does not exist; create it \
                     (aws s3 mb s3://{bucket}) or fix --store"
                )
            }
            _ if text.contains("401 Unauthorized") || text.contains("403 Forbidden") => {
                self.refused(&text)
            }
            _ => anyhow!(
                "cannot {action} '{path}' in the S3 bucket '{bucket}': {}",
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

    /// S3's ETag when it equals the MD5 etagstore recorded with the
    /// document. S3 makes its ETag itself (no client can set it): the MD5
    /// of the bytes for a single-part upload without SSE-KMS or SSE-C, a
    /// value with `-N` for a multipart one, an opaque one when encrypted.
    /// So an ETag that is 32 hex digits and equal to the recorded MD5 is
    /// the MD5 of the bytes (an opaque ETag equal to an MD5 by chance:
    /// 2^-128); stale metadata on new bytes never equals the new ETag.
    fn proven_md5(&self, service_etag: &str, recorded: Option<&str>) -> Option<String> {
        let etag = service_etag.trim_matches('"');
        let recorded = recorded?;
        (crate::store::is_etag(etag) && etag.eq_ignore_ascii_case(recorded))
            .then(|| etag.to_ascii_lowercase())
    }

    fn heads_can_prove_md5(&self) -> bool {
        true
    }
}

impl S3 {
    fn refused(&self, detail: &str) -> anyhow::Error {
        anyhow!(
            "S3 refused access to the bucket '{}' ({}); check AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (profiles are not read) and AWS_REGION",
            self.bucket,
            short(detail)
        )
    }

    /// Sends `DeleteObject` with `If-Match`, through the store's HTTP client
    /// with no retry, so a 412 says what happened. object_store 0.14 has no
    /// conditional delete; its presigner makes the URL (endpoint, path
    /// style, credentials, session token as configured) with `If-Match`
    /// among the signed headers.
    async fn delete_if_match(&self, path: &BlobPath, service_etag: &str) -> Result<Deleted> {
        let if_match = HeaderValue::from_str(service_etag)
            .with_context(|| format!("the service's ETag of '{path}' is not a header value"))?;
        let options = SignedUrlOptions::new()
            .with_signed_header(HeaderName::from_static("if-match"), if_match.clone());
        let url = self
            .writes
            .signed_url_opts(Method::DELETE, path, Duration::from_secs(300), &options)
            .await
            .map_err(|e| self.error(e, "delete", path))?;
        let request = http::Request::builder()
            .method(Method::DELETE)
            .uri(url.as_str())
            .header("If-Match", if_match)
            .body(HttpRequestBody::empty())
            .context("cannot build the DELETE request")?;
        let detail = |why: String| {
            format!(
                "cannot delete '{path}' in the S3 bucket '{}': {why}",
                self.bucket
            )
        };
        let response = self.http.execute(request).await.map_err(|e| {
            let detail = detail(short(&one_line(&chain(&e))));
            match outcome::of_transport(&e) {
                outcome::Outcome::Unsent => anyhow!("{detail}; nothing was deleted"),
                _ => object::delete_unknown(path, detail),
            }
        })?;
        let status = response.status();
        match status {
            s if s.is_success() => Ok(Deleted::Yes),
            // Changed, gone, or (409 ConditionalRequestConflict) another
            // conditional request in flight: read again and decide.
            StatusCode::PRECONDITION_FAILED | StatusCode::NOT_FOUND | StatusCode::CONFLICT => {
                Ok(Deleted::Changed)
            }
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                Err(self.refused(&format!("HTTP {status}")))
            }
            _ if status.is_server_error() => {
                // As for a write (outcome.rs): a 5xx may come after the delete.
                Err(object::delete_unknown(
                    path,
                    detail(format!("HTTP {status}")),
                ))
            }
            _ => Err(anyhow!(detail(format!("HTTP {status}")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_name_a_bucket_and_a_prefix() {
        let parse = |s: &str| Address::parse(s).map(|r| r.map_err(|e| e.exit_code()));
        assert_eq!(parse("_filestore"), None);
        assert_eq!(parse("az://docs"), None);
        assert_eq!(
            parse("s3://my.docs-1/team/a/"),
            Some(Ok(Address {
                bucket: "my.docs-1".into(),
                prefix: "team/a".into()
            }))
        );
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Docs",
            "s3://-docs",
            "s3://docs/a//b",
            "s3://docs/../x",
            "s3://docs?x=1",
            "s3://key:secret@docs",
        ] {
            assert_eq!(parse(bad), Some(Err(2)), "{bad}");
        }
    }

    #[test]
    fn a_bad_url_never_echoes_what_follows_a_question_mark_or_an_at() {
        let error = Address::parse("s3://docs?X-Amz-Signature=secret")
            .unwrap()
            .unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        let error = Address::parse("s3://key:secret@docs").unwrap().unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
