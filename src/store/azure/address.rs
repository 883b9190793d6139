//! Where an Azure store lives, parsed from `--store`.
//!
//! A `--store` value is shown back in errors and its prefix becomes part of
//! every blob name, so it must hold no secret: a query (where a SAS token
//! would go), a fragment, a user or a password is refused, and an error
//! never repeats anything after a `?`, a `#` or an `@`.

use crate::error::{escape_controls, Error};

/// Where an Azure store lives: `az://CONTAINER[/PREFIX]` or
/// `https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub account: Option<String>,
    pub container: String,
    /// Blob-name prefix without leading or trailing `/`; empty for none.
    pub prefix: String,
}

const HOST_SUFFIX: &str = ".blob.core.windows.net";

impl Address {
    /// `None` if `location` is not an Azure URL (it is then a directory);
    /// an Azure URL that is malformed is a usage error (exit 2).
    pub fn parse(location: &str) -> Option<Result<Address, Error>> {
        let https = if location.starts_with("az://") {
            false
        } else if location.starts_with("https://") {
            true
        } else {
            return None;
        };
        Some(parse_url(location, https))
    }
}

fn parse_url(location: &str, https: bool) -> Result<Address, Error> {
    let invalid = |why: &str| Error::Usage(format!("invalid store URL {}: {why}", shown(location)));
    if location.contains(['?', '#']) {
        return Err(invalid(
            "a store URL takes no query or fragment; give a SAS token in \
             AZURE_STORAGE_SAS_KEY, never in --store",
        ));
    }
    let url = url::Url::parse(location).map_err(|e| invalid(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err(invalid(
            "a store URL takes no user, password or port; give credentials in \
             AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_KEY",
        ));
    }
    // The path as typed: the url crate would resolve `a/../b` to `b`.
    let after_scheme = &location[location.find("://").expect("checked above") + 3..];
    let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
    let account = if https {
        let host = url.host_str().unwrap_or("");
        let Some(account) = host.strip_suffix(HOST_SUFFIX) else {
            return Err(invalid(
                "an https store must be https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]",
            ));
        };
        let valid = (3..=24).contains(&account.len())
            && account
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(invalid(
                "the account name must be 3 to 24 lower-case letters and digits",
            ));
        }
        Some(account.to_string())
    } else {
        // az://CONTAINER/…: the container is the authority, as typed.
        None
    };
    let (container, prefix) = if https {
        path.split_once('/').unwrap_or((path, ""))
    } else {
        let authority = after_scheme.split('/').next().unwrap_or("");
        (authority, path)
    };
    let valid_container = (3..=63).contains(&container.len())
        && container
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !container.starts_with('-')
        && !container.ends_with('-')
        && !container.contains("--");
    if !valid_container {
        return Err(invalid(
            "a container name is 3 to 63 lower-case letters, digits and single hyphens",
        ));
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if !prefix.is_empty() && !prefix.split('/').all(valid_segment) {
        return Err(invalid(
            "the prefix must be names of ASCII letters, digits, '-', '_' and '.' \
             separated by single '/', without '.' or '..'",
        ));
    }
    Ok(Address {
        account,
        container: container.to_string(),
        prefix: prefix.to_string(),
    })
}

/// One segment of a prefix: the characters every blob tool and URL carries
/// unchanged, and no `.` or `..` that a client could resolve away.
fn valid_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The location for an error message: never anything from the first `?`,
/// `#` or `@` on (a SAS token, a password), control characters escaped.
fn shown(location: &str) -> String {
    let end = location.find(['?', '#']).unwrap_or(location.len());
    let mut kept = &location[..end];
    if kept.contains('@') {
        // A user or password comes before the `@`: keep only the scheme.
        kept = &kept[..kept.find("://").map_or(0, |i| i + 3)];
    }
    let cut = if kept.len() < location.len() {
        "…"
    } else {
        ""
    };
    format!("\"{}{cut}\"", escape_controls(kept))
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
