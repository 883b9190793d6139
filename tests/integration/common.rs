//! `TestStore`: a temporary store and a ready `etagstore` command bound to it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use md5::{Digest, Md5};
use tempfile::TempDir;

pub struct TestStore {
    dir: TempDir,
}

impl TestStore {
    pub fn new() -> TestStore {
        TestStore {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// The temporary directory; the store is its `store` sub-directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The path of the binary, for tests that spawn processes themselves.
    pub fn bin() -> &'static Path {
        assert_cmd::cargo::cargo_bin!("etagstore")
    }

    /// `etagstore --store <store>`, run in the temporary directory, with no
    /// `ETAGSTORE_*` variable from the environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(Self::bin());
        cmd.current_dir(self.root())
            .arg("--store")
            .arg(self.store());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETAGSTORE_") {
                cmd.env_remove(name);
            }
        }
        cmd
    }

    /// Writes `doc` under `key` with `set-unsafe`; returns its ETag.
    pub fn put(&self, key: &str, doc: &str) -> String {
        let out = self
            .cmd()
            .args(["set-unsafe", key])
            .write_stdin(doc)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap().trim_end().to_string()
    }

    /// The bytes of the document file for a plain key.
    pub fn file(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.store().join(format!("{key}.json"))).ok()
    }
}

/// The lower-case hex MD5 of `bytes`, as `md5sum` prints it.
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
