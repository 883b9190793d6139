//! `get KEY [-o FILE | --json] [--default JSON]`: print a document.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::GetArgs;
use crate::document::{self, CopyError, Spool};
use crate::error::{suggest, Error};
use crate::key::Key;
use crate::output;
use crate::progress::Meter;
use crate::store::Store;

pub fn run(args: &GetArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    let key = Key::new(&args.key)?;
    if let Some(default) = &args.default {
        document::validate(default.as_bytes()).context("--default")?;
    }
    // A missing key read with --default has the ETag "" (it does not exist).
    let (mut reader, exists): (Box<dyn Read>, bool) = match (store.read(&key)?, &args.default) {
        (Some(reader), _) => (reader, true),
        (None, Some(default)) => (Box::new(default.as_bytes()), false),
        (None, None) => return Err(not_found(&key, store)),
    };
    let etag = |copied: document::Copied| if exists { copied.etag } else { String::new() };

    // `-o -` is standard output, as in curl: the document, and no ETag.
    let output = args
        .output
        .as_deref()
        .filter(|path| *path != Path::new("-"));
    if let Some(path) = output {
        if exists {
            refuse_own_file(store, &key, path)?;
        }
        let mut meter = Meter::new("get", None);
        let copied = write_file(path, |file| {
            document::copy_hashed(&mut meter.reader(&mut reader), file)
                .map_err(|e| output_error(e, &format!("'{}'", path.display())))
        })?;
        writeln!(out, "{}", etag(copied))?;
    } else if args.json {
        // The ETag comes first in the envelope but is known only after the
        // whole value is read: hold the value until then.
        let mut value = Spool::new();
        let copied = document::copy_value(&mut reader, &mut value)
            .map_err(|e| output_error(e, "a temporary file"))?;
        output::envelope(out, key.as_str(), &etag(copied), |out| {
            value
                .copy_to(out)
                .map_err(|e| output_error(e, "standard output"))
        })?;
    } else {
        document::copy(&mut reader, out).map_err(|e| output_error(e, "standard output"))?;
    }
    Ok(())
}

/// Exit 2 when FILE is the document itself (the same file, through any
/// name or link), as `cp` refuses to copy a file onto itself.
fn refuse_own_file(store: &dyn Store, key: &Key, path: &Path) -> Result<()> {
    let Some(own) = store.local_file(key) else {
        return Ok(());
    };
    let (Ok(target), Ok(own)) = (fs::metadata(path), fs::symlink_metadata(own)) else {
        return Ok(());
    };
    if (target.dev(), target.ino()) == (own.dev(), own.ino()) {
        return Err(Error::Usage(format!(
            "'{}' is the document's own file in the store; \
             get -o would write it behind the store's back (write the copy elsewhere)",
            path.display()
        ))
        .into());
    }
    Ok(())
}

/// Writes FILE through `write`: a temporary file beside it (0600 while it
/// is written), then renamed over it, so FILE is the old or the new
/// contents, never half of them, and a symbolic link at FILE is replaced,
/// never followed. FILE keeps its mode; a new FILE gets the umask's. No
/// fsync, as `cp` does none. Paths under /dev and /proc (devices, the
/// caller's own descriptors such as /dev/stdout) are written in place.
fn write_file<T>(path: &Path, write: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    let shown = path.display();
    let absolute = std::path::absolute(path).with_context(|| format!("cannot write '{shown}'"))?;
    if absolute.starts_with("/dev") || absolute.starts_with("/proc") {
        let mut file = File::create(path).with_context(|| format!("cannot write '{shown}'"))?;
        return write(&mut file);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let old = fs::symlink_metadata(path)
        .ok()
        .filter(|meta| meta.is_file());
    let mode = match &old {
        Some(meta) => meta.mode() & 0o777,
        None => 0o666 & !umask(),
    };
    let mut temp = Temp::create(dir).with_context(|| {
        format!(
            "cannot create a temporary file in '{}' to write '{shown}'",
            dir.display()
        )
    })?;
    let file = temp.file.as_mut().expect("open until persisted");
    let written = write(file)?;
    if let Some(meta) = &old {
        // Like `sed -i`: keep the owner and group where we may set them.
        if (meta.uid(), meta.gid()) != (file.metadata()?.uid(), file.metadata()?.gid()) {
            let _ = std::os::unix::fs::fchown(&*file, Some(meta.uid()), Some(meta.gid()));
        }
    }
    file.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot write '{shown}'"))?;
    temp.file = None;
    fs::rename(&temp.path, path).with_context(|| format!("cannot replace '{shown}'"))?;
    temp.renamed = true;
    Ok(written)
}

/// The process's umask (read by setting it and putting it back).
#[allow(clippy::useless_conversion)] // mode_t is u16 on some systems
fn umask() -> u32 {
    // SAFETY: umask cannot fail; nothing creates files in between.
    unsafe {
        let mask = libc::umask(0o077);
        libc::umask(mask);
        u32::from(mask)
    }
}

/// A temporary file for `write_file`, removed unless it was renamed.
struct Temp {
    path: PathBuf,
    file: Option<File>,
    renamed: bool,
}

impl Temp {
    fn create(dir: &Path) -> std::io::Result<Temp> {
        let (path, file) = document::create_unique(|| {
            dir.join(format!(".etagstore-get-{}.tmp", document::random_hex()))
        })?;
        Ok(Temp {
            path,
            file: Some(file),
            renamed: false,
        })
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Exit 4, with the next step: where the store is missing, or how to create the key.
pub fn not_found(key: &Key, store: &dyn Store) -> anyhow::Error {
    not_found_or(key, store, || {
        format!(
            "create it with: {}",
            suggest(["set", key.as_str(), "VALUE", "--etag", ""])
        )
    })
}

/// Exit 4 with `create` as the way to create the key, unless the store
/// itself is what is missing.
pub fn not_found_or(
    key: &Key,
    store: &dyn Store,
    create: impl FnOnce() -> String,
) -> anyhow::Error {
    let hint = store.missing_hint().unwrap_or_else(create);
    Error::Hinted {
        error: Box::new(Error::NotFound {
            key: key.as_str().to_string(),
        }),
        hint,
    }
    .into()
}

/// A failed copy out of the store: reading it, or writing to `destination`.
pub fn output_error(error: CopyError, destination: &str) -> anyhow::Error {
    match error {
        CopyError::Read(e) => e.into(),
        CopyError::Write(e) => anyhow::Error::new(e).context(format!("cannot write {destination}")),
        CopyError::Invalid(e) => anyhow::Error::new(e).context("the stored document"),
    }
}
