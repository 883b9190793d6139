//! Where the store is: `--store` (or `ETAGSTORE_DIR`) parsed once, when
//! the command line is, into a directory or the address of a network
//! store. Parsing is string work only: it starts no runtime, makes no HTTP
//! client and touches no disk, so a command that fails on its flags, and a
//! directory store, pay nothing for the network backends.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use super::{FsStore, Store};
use crate::error::Error;

/// The store a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory, as given (relative paths stay relative).
    Directory(PathBuf),
    /// An Azure Blob Storage container; `url` as given.
    #[cfg(feature = "azure")]
    Azure {
        url: String,
        address: super::azure::Address,
    },
    /// An S3 bucket; `url` as given.
    #[cfg(feature = "s3")]
    S3 {
        url: String,
        address: super::s3::Address,
    },
}

impl Location {
    /// An Azure container for `az://…` and `https://…`, an S3 bucket for
    /// `s3://…`, else a directory (any path, UTF-8 or not). A malformed
    /// URL, or one of a backend this build leaves out, is a usage error
    /// whose message never repeats a query, a fragment or a user.
    pub fn parse(text: &OsStr) -> Result<Location, Error> {
        let Some(url) = text.to_str() else {
            return Ok(Location::Directory(PathBuf::from(text)));
        };
        #[cfg(feature = "azure")]
        if let Some(address) = super::azure::Address::parse(url) {
            return Ok(Location::Azure {
                url: url.to_string(),
                address: address?,
            });
        }
        #[cfg(not(feature = "azure"))]
        if url.starts_with("az://") || url.starts_with("https://") {
            return Err(without("Azure", "azure"));
        }
        #[cfg(feature = "s3")]
        if let Some(address) = super::s3::Address::parse(url) {
            return Ok(Location::S3 {
                url: url.to_string(),
                address: address?,
            });
        }
        #[cfg(not(feature = "s3"))]
        if url.starts_with("s3://") {
            return Err(without("S3", "s3"));
        }
        Ok(Location::Directory(PathBuf::from(url)))
    }

    /// The store as the user gave it (a URL holds no secret: `parse`
    /// refused any), for the commands that hints suggest.
    pub fn as_path(&self) -> &Path {
        match self {
            Location::Directory(path) => path,
            #[cfg(feature = "azure")]
            Location::Azure { url, .. } => Path::new(url),
            #[cfg(feature = "s3")]
            Location::S3 { url, .. } => Path::new(url),
        }
    }

    /// True for the store used when neither `--store` nor `ETAGSTORE_DIR`
    /// names one (or one names it): hints need not repeat it.
    pub fn is_default(&self) -> bool {
        matches!(self, Location::Directory(path) if path == Path::new(crate::cli::DEFAULT_STORE))
    }

    /// Opens the store. Only a network store starts a runtime and an HTTP
    /// client; the directory store is created on the first write.
    pub fn open(&self, lock_timeout: Duration) -> Result<Box<dyn Store>> {
        Ok(match self {
            Location::Directory(path) => Box::new(FsStore::new(path, lock_timeout)),
            #[cfg(feature = "azure")]
            Location::Azure { address, .. } => Box::new(super::azure::open(address.clone())?),
            #[cfg(feature = "s3")]
            Location::S3 { address, .. } => Box::new(super::s3::open(address.clone())?),
        })
    }
}

/// The exit-2 error for a store URL this build cannot open.
#[cfg(not(all(feature = "azure", feature = "s3")))]
fn without(service: &str, feature: &str) -> Error {
    Error::Usage(format!(
        "this etagstore was built without {service} support; install one with it \
         (cargo install etagstore --features {feature}), or give a directory as --store"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    fn parse(text: &str) -> Result<Location, Error> {
        Location::parse(OsStr::new(text))
    }

    #[test]
    fn paths_are_directories_as_given() {
        for path in [
            "_filestore",
            "./a b",
            "/tmp/x",
            "az:/docs",
            "s3:docs",
            "C:\\x",
            "",
        ] {
            assert_eq!(parse(path), Ok(Location::Directory(path.into())), "{path}");
            assert_eq!(parse(path).unwrap().as_path(), Path::new(path));
        }
        let not_utf8 = OsString::from_vec(b"s3://\xff".to_vec());
        assert_eq!(
            Location::parse(&not_utf8),
            Ok(Location::Directory(PathBuf::from(&not_utf8)))
        );
    }

    #[cfg(feature = "azure")]
    #[test]
    fn azure_urls_are_containers_and_keep_their_text_for_hints() {
        for url in [
            "az://docs/team",
            "https://acct1.blob.core.windows.net/docs/team",
        ] {
            let location = parse(url).unwrap();
            let Location::Azure { address, .. } = &location else {
                panic!("{url}: {location:?}")
            };
            assert_eq!(
                (address.container.as_str(), address.prefix.as_str()),
                ("docs", "team")
            );
            assert_eq!(location.as_path(), Path::new(url));
        }
        for bad in [
            "az://Bad_Name",
            "https://example.com/c",
            "az://docs?sig=SECRET",
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad}");
            assert!(!error.to_string().contains("SECRET"), "{error}");
        }
    }

    #[cfg(feature = "s3")]
    #[test]
    fn s3_urls_are_buckets_and_keep_their_text_for_hints() {
        let location = parse("s3://docs/team/").unwrap();
        let Location::S3 { address, .. } = &location else {
            panic!("{location:?}")
        };
        assert_eq!(
            (address.bucket.as_str(), address.prefix.as_str()),
            ("docs", "team")
        );
        assert_eq!(location.as_path(), Path::new("s3://docs/team/"));
        assert_eq!(parse("s3://Bad_Bucket").unwrap_err().exit_code(), 2);
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn an_s3_url_without_the_feature_says_so() {
        let error = parse("s3://docs").unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error.to_string().contains("built without S3 support"),
            "{error}"
        );
    }

    #[cfg(not(feature = "azure"))]
    #[test]
    fn an_azure_url_without_the_feature_says_so() {
        for url in ["az://docs", "https://acct1.blob.core.windows.net/docs"] {
            let error = parse(url).unwrap_err();
            assert_eq!(error.exit_code(), 2);
            assert!(
                error.to_string().contains("built without Azure support"),
                "{error}"
            );
        }
    }
}
