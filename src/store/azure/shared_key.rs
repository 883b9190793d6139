//! Azure's Shared Key signature, for the requests etagstore sends itself
//! (List Blobs by any prefix, the conditional DELETE). The one signer of
//! the repository: the tests sign their raw requests to Azurite with it too,
//! which is why it is public (and hidden from the docs).

use base64::Engine;

/// The service version every request signed here names.
pub const VERSION: &str = "2021-08-06";

/// Azurite's well-known account key, as object_store uses it.
pub const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// What Shared Key signs of a request that carries no Content-* headers but
/// its length, no conditional header but `If-Match`, and no Range.
pub struct Request<'a> {
    pub method: &'a str,
    /// As sent: the path exactly (the blob name percent-encoded once, as
    /// object_store signs its own requests), the query in any order.
    pub url: &'a url::Url,
    /// The body's length; 0 is signed as an empty line, as the service wants.
    pub content_length: usize,
    /// The `If-Match` header; "" for none.
    pub if_match: &'a str,
    /// `x-ms-` headers besides `x-ms-date` and `x-ms-version` (which are
    /// added), names in lower case.
    pub headers: &'a [(&'a str, &'a str)],
}

/// Signs `request` for `account` with `key` (the decoded account key):
/// returns the `x-ms-date` value to send and the `Authorization` header.
/// The request must also carry `x-ms-version: VERSION`.
///
/// The resource is the account and the URL's path, then the query
/// parameters, sorted by name, decoded.
pub fn sign(key: &[u8], account: &str, request: &Request) -> (String, String) {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let mut headers: Vec<(&str, &str)> = request.headers.to_vec();
    headers.push(("x-ms-date", &date));
    headers.push(("x-ms-version", VERSION));
    headers.sort();
    let mut canonical = String::new();
    for (name, value) in headers {
        canonical.push_str(&format!("{name}:{value}\n"));
    }
    let mut resource = format!("/{account}{}", request.url.path());
    let mut query: Vec<_> = request.url.query_pairs().collect();
    query.sort();
    for (name, value) in &query {
        resource.push_str(&format!("\n{}:{value}", name.to_ascii_lowercase()));
    }
    let length = match request.content_length {
        0 => String::new(),
        n => n.to_string(),
    };
    // VERB, then Content-Encoding, -Language, -Length, -MD5, -Type, Date,
    // If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
    let to_sign = format!(
        "{}\n\n\n{length}\n\n\n\n\n{}\n\n\n\n{canonical}{resource}",
        request.method, request.if_match
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        to_sign.as_bytes(),
    );
    let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    (date, format!("SharedKey {account}:{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string to sign as the service documents it, for a request with
    /// every part this signer fills: the signature must be its HMAC.
    #[test]
    fn the_string_to_sign_is_the_documented_one() {
        let key = b"0123456789abcdef";
        let url = url::Url::parse("http://127.0.0.1:10000/acct/docs/a%20b.json?restype=x&comp=y")
            .unwrap();
        let request = Request {
            method: "PUT",
            url: &url,
            content_length: 3,
            if_match: "\"0x1\"",
            headers: &[("x-ms-blob-type", "BlockBlob")],
        };
        let (date, authorization) = sign(key, "acct", &request);
        let expected = format!(
            "PUT\n\n\n3\n\n\n\n\n\"0x1\"\n\n\n\nx-ms-blob-type:BlockBlob\nx-ms-date:{date}\n\
             x-ms-version:{VERSION}\n/acct/acct/docs/a%20b.json\ncomp:y\nrestype:x"
        );
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            expected.as_bytes(),
        );
        let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        assert_eq!(authorization, format!("SharedKey acct:{signature}"));
    }
}
