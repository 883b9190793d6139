//! The emulator switch (`AZURE_STORAGE_USE_EMULATOR`) sends every request
//! as plain HTTP to `AZURITE_BLOB_STORAGE_URL`. A switch left on from a
//! test session must not send a real account's credentials there, so in
//! emulator mode only the emulator's own account and key (or an account SAS
//! signed with that key) are accepted, and only a loopback URL.

use base64::Engine;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use percent_encoding::percent_decode_str;

use super::shared_key::EMULATOR_KEY as KEY;
use super::Address;
use crate::error::Error;

/// Azurite's well-known development account and key (public, documented by
/// Microsoft: they protect nothing).
pub const ACCOUNT: &str = "devstoreaccount1";

/// Where the emulator listens when `AZURITE_BLOB_STORAGE_URL` is not set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:10000";

/// Refuses what emulator mode must not send anywhere (exit 2). Nothing is
/// echoed: the values may be secrets.
pub fn check(builder: &MicrosoftAzureBuilder, address: &Address) -> Result<(), Error> {
    let refuse = |what: &str| {
        Error::Usage(format!(
            "AZURE_STORAGE_USE_EMULATOR is set, so every request goes as plain HTTP to the \
             local emulator, and {what}; unset AZURE_STORAGE_USE_EMULATOR to use a real \
             account, or keep only the emulator's own settings"
        ))
    };
    if address.account.is_some() {
        return Err(refuse(
            "an https:// account address is refused (use az://CONTAINER for the emulator)",
        ));
    }
    let config = |key| builder.get_config_value(&key).filter(|v| !v.is_empty());
    if config(AzureConfigKey::AccountName).is_some_and(|name| name != ACCOUNT) {
        return Err(refuse(&format!(
            "an account other than the emulator's '{ACCOUNT}' is refused \
             (AZURE_STORAGE_ACCOUNT_NAME)"
        )));
    }
    if config(AzureConfigKey::AccessKey).is_some_and(|key| key != KEY) {
        return Err(refuse(
            "a key other than the emulator's is refused (AZURE_STORAGE_ACCOUNT_KEY)",
        ));
    }
    if config(AzureConfigKey::Token).is_some() {
        return Err(refuse("a bearer token is refused (AZURE_STORAGE_TOKEN)"));
    }
    if config(AzureConfigKey::SasKey).is_some_and(|sas| !signed_by_emulator(&sas)) {
        return Err(refuse(
            "a SAS token not signed with the emulator's key is refused (AZURE_STORAGE_SAS_KEY)",
        ));
    }
    let url = std::env::var("AZURITE_BLOB_STORAGE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    if !is_loopback(&url) {
        return Err(refuse(
            "AZURITE_BLOB_STORAGE_URL must be http://127.0.0.1:PORT, http://[::1]:PORT or \
             http://localhost:PORT",
        ));
    }
    Ok(())
}

/// An http(s) URL of this host, with no user, password, query or fragment.
fn is_loopback(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    host && matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
}

/// Whether `sas` is an account SAS whose signature the emulator's key made
/// (the only SAS a request to the emulator may carry). Decoded and split the
/// way object_store reads it.
fn signed_by_emulator(sas: &str) -> bool {
    let Ok(sas) = percent_decode_str(sas).decode_utf8() else {
        return false;
    };
    let pairs: Vec<(&str, &str)> = sas
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.trim().split_once('='))
        .collect();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map_or("", |(_, value)| *value)
    };
    let (version, signature) = (field("sv"), field("sig"));
    if field("ss").is_empty() || field("srt").is_empty() || signature.is_empty() {
        return false; // not an account SAS
    }
    // Account SAS: from version 2020-12-06 on, the encryption scope and a
    // final newline follow the version.
    let mut to_sign = format!(
        "{ACCOUNT}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{version}\n",
        field("sp"),
        field("ss"),
        field("srt"),
        field("st"),
        field("se"),
        field("sip"),
        field("spr"),
    );
    if version >= "2020-12-06" {
        to_sign.push_str(field("ses"));
        to_sign.push('\n');
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let (Ok(key), Ok(given)) = (engine.decode(KEY), engine.decode(signature)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    ring::hmac::verify(&key, to_sign.as_bytes(), &given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_the_emulator() {
        for good in [
            "http://127.0.0.1:10000",
            "http://127.0.0.1:10000/",
            "http://[::1]:10000",
            "http://localhost:10000",
            "https://LOCALHOST:10000",
        ] {
            assert!(is_loopback(good), "{good}");
        }
        for bad in [
            "http://10.0.0.1:10000",
            "http://acct.blob.core.windows.net",
            "http://localhost.evil.example:10000",
            "http://user:pw@127.0.0.1:10000",
            "ftp://127.0.0.1:10000",
            "127.0.0.1:10000",
            "",
        ] {
            assert!(!is_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn a_sas_counts_only_if_the_emulators_key_signed_it() {
        let engine = base64::engine::general_purpose::STANDARD;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &engine.decode(KEY).unwrap());
        let sign = |text: &str| engine.encode(ring::hmac::sign(&key, text.as_bytes()).as_ref());
        let to_sign = format!(
            "{ACCOUNT}\nrwdlac\nb\nsco\n\n2099-01-01T00:00:00Z\n\nhttps,http\n2021-08-06\n\n"
        );
        let sig = sign(&to_sign)
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let sas = format!(
            "sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00%3A00%3A00Z&spr=https%2Chttp&sig={sig}"
        );
        assert!(signed_by_emulator(&sas));
        assert!(signed_by_emulator(&format!("?{sas}")));
        // Another permission, the same signature: not the emulator's.
        assert!(!signed_by_emulator(&sas.replace("sp=rwdlac", "sp=rwdlacx")));
        assert!(!signed_by_emulator(
            "sv=2021-08-06&ss=b&srt=sco&sp=r&sig=AAAA"
        ));
        assert!(!signed_by_emulator("sv=2021-08-06&sr=c&sp=r&sig=AAAA"));
        assert!(!signed_by_emulator(""));
    }
}
