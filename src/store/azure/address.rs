//! Where an Azure store lives, parsed from `--store`.

use object_store::path::Path as BlobPath;

use crate::error::Error;

/// Where an Azure store lives: `az://CONTAINER[/PREFIX]` or
/// `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub account: Option<String>,
    pub container: String,
    /// Blob-name prefix without leading or trailing `/`; empty for none.
    pub prefix: String,
}

impl Address {
    /// `None` if `location` is not an Azure URL (it is then a directory);
    /// an Azure URL that is malformed is a usage error (exit 2).
    pub fn parse(location: &str) -> Option<Result<Address, Error>> {
        let invalid = |why: &str| Error::Usage(format!("invalid store URL {location:?}: {why}"));
        let (account, rest) = if let Some(rest) = location.strip_prefix("az://") {
            (None, rest)
        } else if let Some(rest) = location.strip_prefix("https://") {
            let (host, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let Some(account) = host.strip_suffix(".blob.core.windows.net") else {
                return Some(Err(invalid(
                    "an https store must be https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]",
                )));
            };
            if account.is_empty() || !account.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Some(Err(invalid("the account name must be letters and digits")));
            }
            (Some(account.to_string()), rest)
        } else {
            return None;
        };
        let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_container = (3..=63).contains(&container.len())
            && container
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !container.starts_with('-')
            && !container.ends_with('-')
            && !container.contains("--");
        if !valid_container {
            return Some(Err(invalid(
                "a container name is 3 to 63 lower-case letters, digits and single hyphens",
            )));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && BlobPath::parse(prefix).is_err() {
            return Some(Err(invalid(
                "the prefix must be names separated by single '/', without '.' or '..'",
            )));
        }
        Some(Ok(Address {
            account,
            container: container.to_string(),
            prefix: prefix.to_string(),
        }))
    }
}
