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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(location: &str) -> Option<Result<Address, u8>> {
        Address::parse(location).map(|r| r.map_err(|e| e.exit_code()))
    }

    fn message(location: &str) -> String {
        match Address::parse(location) {
            Some(Err(e)) => e.to_string(),
            other => panic!("{location}: {other:?}"),
        }
    }

    #[test]
    fn a_query_or_fragment_is_refused_and_never_echoed() {
        for bad in [
            "az://docs/team?sv=2021-08-06&sig=SECRETSIG",
            "az://docs?sig=SECRETSIG",
            "https://acct1.blob.core.windows.net/docs?sv=2021&sig=SECRETSIG",
            "https://acct1.blob.core.windows.net/docs/?sv=2021&sig=SECRETSIG",
            "https://acct1.blob.core.windows.net/docs#sig=SECRETSIG",
            "https://user:SECRETSIG@acct1.blob.core.windows.net/docs",
            "az://SECRETSIG@docs",
        ] {
            assert_eq!(parse(bad), Some(Err(2)), "{bad}");
            let text = message(bad);
            assert!(!text.contains("SECRETSIG"), "{text}");
            assert!(!text.contains("sv="), "{text}");
        }
        assert!(message("az://docs/team?sig=x").contains("AZURE_STORAGE_SAS_KEY"));
        assert!(message("az://docs/team?sig=x").contains("\"az://docs/team…\""));
    }

    #[test]
    fn prefixes_are_letters_digits_dash_underscore_dot_in_segments() {
        assert_eq!(
            parse("az://docs/Team_1/a-b.c/"),
            Some(Ok(Address {
                account: None,
                container: "docs".into(),
                prefix: "Team_1/a-b.c".into()
            }))
        );
        for bad in [
            "az://docs/a b",
            "az://docs/a%2Fb",
            "az://docs/a/./b",
            "az://docs/a/..",
            "az://docs/..",
            "az://docs//a",
            "az://docs/a//",
            "az://docs/ä",
            "az://docs/a\u{1b}]0;x",
            "az://docs/a:b",
            "az://docs/a\\b",
        ] {
            assert_eq!(parse(bad), Some(Err(2)), "{bad}");
        }
        assert!(!message("az://docs/a\u{1b}]0;x").contains('\u{1b}'));
    }

    #[test]
    fn hosts_other_than_an_account_are_refused() {
        for bad in [
            "https://acct1.blob.core.windows.net:8443/docs",
            "https://evil.example/docs",
            "https://acct1.blob.core.windows.net.evil.example/docs",
            "https://a.blob.core.windows.net/docs",
            "https://acct_1.blob.core.windows.net/docs",
            "https://acct1.blob.core.windows.net",
            "az://do:80/x",
        ] {
            assert_eq!(parse(bad), Some(Err(2)), "{bad}");
        }
    }
}
