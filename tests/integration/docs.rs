//! The examples in README.md and docs/*.md, run as a user pastes them.
//!
//! Every ```console block is run by trycmd: each `$ ` line is one command
//! (split like a shell line, but with no shell: no pipes, `$(…)` or `>`), the
//! lines below it are its standard output and standard error together, and
//! `? N` is its exit code (0 when absent). `[..]` matches any text in a line.
//! Output that ends in a newline is followed by an empty line in the block;
//! output with no final newline (`etagstore get` of a document stored without
//! one) is not. All console blocks of one file run in order in one empty
//! directory, as the README's tour asks of its reader. `TRYCMD=overwrite`
//! rewrites the expected output in the Markdown files themselves. A failure
//! names a link in a temporary directory, `…/README.md:258`: the line
//! number is the real file's.
//!
//! Shell snippets that need a shell (pipes, loops, `$(…)`) stay ```sh blocks,
//! as do those that cannot run here (an editor, Azurite, writes to `$HOME`);
//! trycmd runs only ```console and ```trycmd blocks (and bare ``` ones!), and
//! skips a ```console,ignore block.
//! The important ones carry an HTML comment `<!-- checked: NAME -->` on the
//! line before the fence; the tests below run exactly that block with `sh -e`,
//! and compare its output with the block's lines that start with `# `.
//!
//! trycmd's directory never sees what the sh blocks did, while a reader runs
//! both. So a console block must not touch a key that a sh block writes
//! (`config`, `nums`, `counter`, `report`, `deploy`), or it would print one thing under the test
//! and another in the reader's directory: `readme_console_keys_are_its_own`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::TestStore;

/// The repository's root, where README.md is.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tools the console blocks run besides etagstore, found on PATH.
const TOOLS: &[&str] = &["cat", "ls", "md5sum"];

fn on_path(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not on PATH; the doc examples run it"))
}

/// The files whose console blocks run.
const DOCS: &[&str] = &["README.md", "docs/edit.md", "docs/design.md"];

/// The console blocks of README.md, docs/edit.md and docs/design.md.
#[test]
fn console_examples() {
    // trycmd runs a Markdown file's blocks in one fresh temporary directory
    // only when a `NAME.out/` directory sits beside `NAME.md`. Rather than
    // keep such directories in the repository, link each file into a
    // temporary directory with an empty `.out/` beside it (an empty one
    // checks no file). The link keeps `TRYCMD=overwrite` writing to the
    // real file.
    let links = tempfile::tempdir().unwrap();
    let cases = trycmd::TestCases::new();
    // Not a limit on speed: a command that hangs (a `watch` with nothing to
    // wait for) fails the test instead of stalling the suite.
    cases.timeout(std::time::Duration::from_secs(120));
    cases.register_bin("etagstore", TestStore::bin());
    for tool in TOOLS {
        cases.register_bin(*tool, on_path(tool));
    }
    // The commands inherit the test's environment. An `ETAGSTORE_DIR` of the
    // person running the tests would send the tour to their own store, and
    // trycmd can add variables to a command but not remove them: refuse.
    // The tests' own switches (`ETAGSTORE_REQUIRE_ALL`, …) are read by no
    // etagstore, so they may stay.
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        assert!(
            !name_text.starts_with("ETAGSTORE_") || name_text.starts_with("ETAGSTORE_REQUIRE_"),
            "unset {name:?} to run the doc examples: they run etagstore as a new user does"
        );
    }
    for doc in DOCS {
        let name = Path::new(doc).file_name().unwrap();
        let link = links.path().join(name);
        std::os::unix::fs::symlink(root().join(doc), &link).unwrap();
        std::fs::create_dir(link.with_extension("out")).unwrap();
        cases.case(&link);
    }
    cases.run();
}

/// The fenced block that follows `<!-- checked: NAME -->` in `doc`.
fn block(doc: &str, name: &str) -> String {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let marker = format!("<!-- checked: {name} -->\n");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{doc} has no block marked {marker:?}"));
    let rest = &text[start + marker.len()..];
    let body = rest
        .strip_prefix("```sh\n")
        .unwrap_or_else(|| panic!("the block {name:?} in {doc} is not a ```sh block"));
    let end = body.find("\n```\n").expect("a closing fence");
    body[..=end].to_owned()
}

/// The output a block shows: its lines that start with `# `, without that.
fn shown(block: &str) -> String {
    block
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Runs `script` with `sh -e` in `dir`, etagstore first on PATH, no
/// `ETAGSTORE_*` variable; returns stdout and stderr together.
fn run_sh(dir: &Path, script: &str) -> String {
    let bin_dir = TestStore::bin().parent().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&path)),
    )
    .unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-ec")
        .arg(format!("exec 2>&1\n{script}"))
        .current_dir(dir)
        .env("PATH", path);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETAGSTORE_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{script}\nexited {}:\n{text}",
        out.status
    );
    text
}

/// Runs the README block `name` in `dir` and checks the output it shows.
fn check(dir: &Path, name: &str) {
    let script = block("README.md", name);
    assert_eq!(
        run_sh(dir, &script),
        shown(&script),
        "README block {name:?}"
    );
}

/// VALUE, `-f FILE`, standard input and `-`; then `delete` of those keys.
#[test]
fn readme_document_sources_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), "sources");
    check(dir.path(), "delete");
    assert!(!dir.path().join("_filestore/config.json").exists());
    assert!(!dir.path().join("_filestore/nums.json").exists());
}

/// The pasteable retry loop: one run, four racing writers that lose nothing,
/// and the `edit` one-liner that replaces it.
#[test]
fn readme_retry_loop() {
    let dir = tempfile::tempdir().unwrap();
    // The script's own comments start with `# ` too; it prints nothing.
    assert_eq!(run_sh(dir.path(), &block("README.md", "incr-script")), "");
    check(dir.path(), "incr-run");
    check(dir.path(), "incr-race");
    // It prints the new ETag, which depends on where the counter was.
    let etag = run_sh(dir.path(), &block("README.md", "edit-counter"));
    let counter = run_sh(dir.path(), "etagstore get counter");
    assert_eq!(counter, "201\n", "200 from the race, then one edit");
    assert_eq!(etag, run_sh(dir.path(), "etagstore etag counter"));
}

/// A backup with `export`, restored with `import`, gives the same export.
#[test]
fn readme_export_import() {
    let dir = tempfile::tempdir().unwrap();
    run_sh(
        dir.path(),
        "etagstore set-unsafe greeting '{\"text\":\"hello\"}'\n\
         etagstore set-unsafe users/alice '{\"name\":\"Alice\"}'\n\
         etagstore set-unsafe users/bob '{ \"name\": \"Bob\" }\n'",
    );
    let summary = run_sh(dir.path(), &block("README.md", "export-import"));
    assert_eq!(
        summary, "imported 3, skipped 0\nimported 2, skipped 0\n",
        "the summaries of the two imports"
    );
    assert_eq!(
        run_sh(dir.path(), "etagstore --store restored export"),
        run_sh(dir.path(), "etagstore export"),
    );
}

/// Errors as JSON objects, with the flag and with the environment variable.
#[test]
fn readme_error_format() {
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), "error-json");
}

/// The keys the README's sh blocks write never appear in its console blocks,
/// where the test's directory lacks them and the reader's has them.
#[test]
fn readme_console_keys_are_its_own() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let sh_keys = ["config", "nums", "counter", "report", "deploy"];
    for (number, line) in text.lines().enumerate() {
        let Some(command) = line.strip_prefix("$ ") else {
            continue;
        };
        for word in command.split_whitespace() {
            assert!(
                !sh_keys.contains(&word),
                "README.md:{}: `{command}` uses {word:?}, which the sh blocks write",
                number + 1
            );
        }
    }
}

/// trycmd skips, and passes, a `$ ` line whose program it does not know: a
/// `$ jq …` added to a doc would never run. Every one must be etagstore or
/// one of TOOLS.
#[test]
fn console_lines_run_known_programs() {
    for doc in DOCS {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        for (number, line) in text.lines().enumerate() {
            let Some(command) = line.strip_prefix("$ ") else {
                continue;
            };
            let program = command
                .split_whitespace()
                .find(|word| !word.contains('='))
                .unwrap_or_default();
            assert!(
                program == "etagstore" || TOOLS.contains(&program),
                "{doc}:{}: `{command}` runs {program:?}, which the doc tests do not know \
                 (add it to TOOLS, or put the line in a sh block)",
                number + 1
            );
        }
    }
}

/// `edit --merge`: the command's change and the write made while it ran
/// are both in the document.
#[test]
fn readme_edit_merge() {
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), "edit-merge");
}
