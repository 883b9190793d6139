//! `set --or-same` and `delete --or-missing`: a write or delete that can be
//! repeated when its outcome was never learned (exit 8, a timeout, a lost
//! connection), without a false conflict. Safe because an ETag names
//! content: a document whose ETag is the MD5 of the bytes being written
//! already is those bytes (docs/contract.md, "Repeating a write").

use std::io::{self, Read};

use anyhow::Result;
use md5::{Digest, Md5};

use crate::document;
use crate::error::{self, Error};
use crate::key::Key;
use crate::store::{Precondition, Store};

/// `store.put`; with `or_same`, a failed precondition (or `--if`) on a
/// document that already is exactly the input's bytes is a success with
/// its ETag. The input is hashed on the way, since standard input cannot
/// be read twice; without `or_same` nothing extra happens.
pub fn put(
    store: &dyn Store,
    key: &Key,
    input: &mut dyn Read,
    precondition: &Precondition,
    or_same: bool,
) -> Result<String> {
    if !or_same {
        return store.put(key, input, precondition);
    }
    let mut input = Hashing {
        inner: input,
        md5: Md5::new(),
    };
    let error = match store.put(key, &mut input, precondition) {
        Ok(etag) => return Ok(etag),
        Err(error) => error,
    };
    let Some(found) = found(&error).filter(|found| !found.is_empty()) else {
        return Err(error);
    };
    // Whatever the store left unread is part of the input too.
    io::copy(&mut input, &mut io::sink())?;
    let etag = document::hex(&input.md5.finalize());
    if found == etag {
        Ok(etag)
    } else {
        Err(error)
    }
}

/// `store.delete`; with `or_missing`, a key that does not exist when the
/// precondition (or `--if`) fails is a success: it is already deleted.
pub fn delete(
    store: &dyn Store,
    key: &Key,
    precondition: &Precondition,
    or_missing: bool,
) -> Result<()> {
    match store.delete(key, precondition) {
        Err(error) if or_missing && found(&error) == Some("") => Ok(()),
        other => other,
    }
}

/// `set --if --or-same` after `error`: a success with the ETag if the key
/// already holds exactly `bytes`, else `error` again.
pub fn already(error: anyhow::Error, bytes: &[u8]) -> Result<String> {
    let etag = document::hex(&Md5::digest(bytes));
    match found(&error) {
        Some(found) if found == etag => Ok(etag),
        _ => Err(error),
    }
}

/// `delete --if --or-missing` after `error`: a success if the key does
/// not exist, else `error` again.
pub fn gone(error: anyhow::Error) -> Result<()> {
    match found(&error) {
        Some("") => Ok(()),
        _ => Err(error),
    }
}

/// The ETag a failed precondition or condition found ("" for no key).
fn found(error: &anyhow::Error) -> Option<&str> {
    match error::typed(error)? {
        Error::PreconditionFailed { found, .. } | Error::ConditionFailed { found, .. } => {
            Some(found)
        }
        _ => None,
    }
}

/// Hashes what is read through it.
struct Hashing<'a> {
    inner: &'a mut dyn Read,
    md5: Md5,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
}
