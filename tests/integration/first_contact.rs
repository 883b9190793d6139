//! A new user's mistakes: each gets one `error:` line that names the fix,
//! the documented exit code, and no change to the store.

use std::fs::{self, File};
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

use crate::common::{md5_hex, one_error_line, TestStore};

/// The child runs in a new session whose controlling terminal (`/dev/tty`)
/// is a fresh pseudo-terminal, whatever its standard input and output are:
/// how a person at a terminal runs `etagstore edit` in a pipeline.
pub fn with_terminal(cmd: &mut std::process::Command) {
    // SAFETY: plain calls on a descriptor this function owns.
    let (master, slave) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = File::from_raw_fd(fd);
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        (master, std::ffi::CStr::from_ptr(name.as_ptr()).to_owned())
    };
    // SAFETY: only async-signal-safe calls (setsid, open, ioctl, close).
    unsafe {
        cmd.pre_exec(move || {
            // The master lives as long as the command: the terminal hangs up when it closes.
            let _ = &master;
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = libc::open(slave.as_ptr(), libc::O_RDWR);
            if fd < 0 || libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
}

/// The child runs in a new session with no controlling terminal: opening
/// `/dev/tty` fails there, as under cron, CI or `ssh host cmd`.
pub fn without_terminal(cmd: &mut std::process::Command) {
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Writes an executable shell script into the test's directory.
fn script(env: &TestStore, name: &str, body: &str) -> PathBuf {
    let path = env.root().join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn set_with_star_on_a_missing_key_says_to_create_it_not_to_retry() {
    let env = TestStore::new();
    for etag in ["*", "0123456789abcdef0123456789abcdef"] {
        env.run(["set", "k", "1", "--etag", etag])
            .stderr_matches(
                one_error_line()
                    .and(predicate::str::contains("does not exist; create it with:"))
                    .and(predicate::str::contains("set k VALUE --etag ''"))
                    .and(predicate::str::contains("retry").not()),
            )
            .status(3)
            .check();
    }
    assert!(!env.path("k").exists());
}

#[test]
fn every_suggested_command_names_a_store_that_is_not_the_default() {
    let env = TestStore::new();
    let etag = env.put("k", "1");
    let store = env.store().display().to_string();
    // A relative --store is made absolute: the suggestion may be pasted elsewhere.
    std::fs::create_dir(env.root().join("rel")).unwrap();
    let relative = env.root().join("rel").display().to_string();
    let zeros = "0".repeat(32);
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec!["--store", &store, "set", "k", "2", "--etag", &zeros],
            "",
        ),
        (
            vec!["--store", "rel", "set", "k", "2", "--etag", "*"],
            &relative,
        ),
        (vec!["--store", &store, "delete", "k", "--etag", &zeros], ""),
    ];
    for (args, expected_store) in cases {
        let expected_store = if expected_store.is_empty() {
            &store
        } else {
            expected_store
        };
        env.run_without_store(&args)
            .error([format!("etagstore --store {expected_store} ")])
            .status(3)
            .check();
    }
    // Through ETAGSTORE_DIR, too.
    env.run_without_store(["set", "k", "2", "--etag", &"0".repeat(32)])
        .env("ETAGSTORE_DIR", &store)
        .stderr_matches(predicate::str::contains(format!(
            "etagstore --store {store} get k"
        )))
        .status(3)
        .check();
    // The default store is not repeated.
    let default = TestStore::new();
    default
        .run_without_store(["set", "k", "1", "--etag", "*"])
        .stderr_matches(predicate::str::contains("create it with: etagstore set k"))
        .status(3)
        .check();
    assert_eq!(env.file("k").unwrap(), b"1", "{etag}");
}

#[test]
fn a_store_with_a_space_is_quoted_for_the_shell_in_hints() {
    let env = TestStore::new();
    let store = env.root().join("my store");
    env.run_without_store(["--store"])
        .arg(&store)
        .args(["set", "k", "1", "--etag", "*"])
        .stderr_matches(predicate::str::contains(format!(
            "etagstore --store '{}' set k VALUE --etag ''",
            store.display()
        )))
        .status(3)
        .check();
}

/// `--store` is parsed with the rest of the command line: a malformed store
/// URL, from the flag or from ETAGSTORE_DIR, is a usage error on one line
/// that never repeats what follows a `?` (clap's own "invalid value '…'"
/// would), and nothing is opened or created.
#[test]
fn a_malformed_store_url_is_a_usage_error_from_the_flag_or_the_environment() {
    let env = TestStore::new();
    let before = env.snapshot();
    let refused = || {
        one_error_line()
            .and(predicate::str::contains("invalid store URL"))
            .and(predicate::str::contains("SECRETSIG").not())
            .and(predicate::str::contains("invalid value").not())
    };
    for url in [
        "az://docs/team?sig=SECRETSIG",
        "https://example.com/c?sig=SECRETSIG",
        "s3://docs?X-Amz-Signature=SECRETSIG",
        "s3://Bad_Bucket",
    ] {
        env.run_without_store(["--store", url, "set", "k", "1", "--etag", ""])
            .stderr_matches(refused())
            .status(2)
            .check();
        env.run_without_store(["set", "k", "1", "--etag", ""])
            .env("ETAGSTORE_DIR", url)
            .stderr_matches(refused())
            .status(2)
            .check();
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn no_arguments_print_the_usage_and_the_commands_with_exit_2() {
    let env = TestStore::new();
    env.run_without_store([""; 0])
        .stderr_matches(
            predicate::str::contains("Usage: etagstore")
                .and(predicate::str::contains("Commands:"))
                .and(predicate::str::contains("set-unsafe")),
        )
        .status(2)
        .check();
}

#[test]
fn usage_errors_point_at_the_subcommand_help_and_give_the_right_tip() {
    let env = TestStore::new();
    env.run(["set", "k", "1"])
        .error(["(see 'etagstore set --help')"])
        .status(2)
        .check();
    env.run(["set-unsafe", "k", "1", "--etag", "*"])
        .stderr_matches(
            one_error_line()
                .and(predicate::str::contains("set-unsafe takes no --etag"))
                .and(predicate::str::contains("etagstore set KEY VALUE --etag E"))
                .and(predicate::str::contains("to pass '--etag' as a value").not()),
        )
        .status(2)
        .check();
    for args in [
        vec!["--lock-timeout", "-1", "get", "k"],
        vec!["watch", "k", "--timeout", "-1"],
    ] {
        env.run(&args).error(["must be ≥ 0"]).status(2).check();
    }
    assert!(!env.store().exists());
}

#[test]
fn a_file_name_or_a_bare_string_as_value_gets_the_fix() {
    let env = TestStore::new();
    std::fs::write(env.root().join("config.json"), "{}").unwrap();
    env.run(["set", "config", "config.json", "--etag", ""])
        .error(["did you mean -f config.json?"])
        .status(6)
        .check();
    env.run(["set-unsafe", "name", "Ann Lee"])
        .error([r#"a string must be quoted as JSON: '"Ann Lee"'"#])
        .status(6)
        .check();
    // Broken JSON that is not one of those two mistakes gets no guess.
    env.run(["set-unsafe", "name", "{x"])
        .stderr_matches(one_error_line().and(predicate::str::contains("did you mean").not()))
        .status(6)
        .check();
    assert!(!env.path("config").exists() && !env.path("name").exists());
}

#[test]
fn list_z_ends_each_entry_with_nul_for_xargs_0() {
    let env = TestStore::new();
    env.put("a b", "1");
    env.put("c\u{e9}", "2");
    let out = env.cmd().args(["list", "-z"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, "a b\0c\u{e9}\0".as_bytes());
    let long = env.cmd().args(["list", "--null", "-l"]).output().unwrap();
    assert_eq!(long.stdout.iter().filter(|&&b| b == 0).count(), 2);
    assert!(!long.stdout.contains(&b'\n'));
}

#[test]
fn a_file_size_limit_is_an_error_line_and_leaves_nothing_behind() {
    let env = TestStore::new();
    env.put("k", "1");
    let big = env.root().join("big.json");
    std::fs::write(&big, vec![b'7'; 300_000]).unwrap();
    // `ulimit -f 100` is 100 blocks of 512 bytes: the write gets EFBIG, and
    // without SIGXFSZ ignored the process would be killed mid-write.
    let script = format!(
        "ulimit -f 100 && exec '{}' --store '{}' set-unsafe k -f '{}'",
        TestStore::bin().display(),
        env.store().display(),
        big.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    assert_eq!(env.file("k").unwrap(), b"1");
    assert!(env.temp_files().is_empty());
}

#[test]
fn man_dir_writes_one_page_a_subcommand_with_exit_codes_and_examples_kept_as_written() {
    let env = TestStore::new();
    let dir = env.root().join("man1");
    std::fs::create_dir(&dir).unwrap();
    env.cmd()
        .arg("man")
        .arg("--dir")
        .arg(&dir)
        .assert()
        .success()
        .stdout("")
        .stderr("");
    for sub in [
        "etagstore",
        "etagstore-get",
        "etagstore-etag",
        "etagstore-set",
        "etagstore-set-unsafe",
        "etagstore-edit",
        "etagstore-delete",
        "etagstore-list",
        "etagstore-watch",
        "etagstore-export",
        "etagstore-import",
    ] {
        let page = std::fs::read_to_string(dir.join(format!("{sub}.1"))).unwrap();
        assert!(page.contains(&format!(".TH {sub} 1")), "{sub}");
        assert!(page.contains("outcome unknown"), "{sub}: the exit codes");
        assert!(page.contains(".nf\n"), "{sub}: preformatted blocks");
    }
    let set = std::fs::read_to_string(dir.join("etagstore-set.1")).unwrap();
    assert!(
        set.contains("etag=$(etagstore get config \\-o doc.json)")
            || set.contains("etag=$(etagstore get config -o doc.json)")
    );
    // One page on standard output, and a wrong name is a usage error.
    env.cmd()
        .args(["man", "set"])
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH etagstore-set 1"));
    env.run(["man", "sett"])
        .error(["set-unsafe"])
        .status(2)
        .check();
}

#[test]
fn edit_without_a_terminal_runs_no_editor_and_is_exit_2() {
    let env = TestStore::new();
    env.put("k", "{}");
    let ran = env.root().join("ran");
    let editor = script(
        &env,
        "editor.sh",
        &format!("touch '{}'; echo '[1]' > \"$1\"", ran.display()),
    );
    let before = env.snapshot();
    // vi's keys on a pipe: with no terminal they must reach no editor.
    let editors: [Option<&PathBuf>; 2] = [None, Some(&editor)];
    for editor in editors {
        let mut cmd = env.process();
        without_terminal(&mut cmd);
        cmd.args(["edit", "k"]).env_remove("VISUAL");
        match editor {
            Some(editor) => cmd.env("EDITOR", editor),
            None => cmd.env_remove("EDITOR"),
        };
        Command::from_std(cmd)
            .write_stdin("ddi{\"pwned\":1}\x1b:wq\n")
            .timeout(Duration::from_secs(60))
            .assert()
            .code(2)
            .stdout("")
            .stderr(
                one_error_line()
                    .and(predicate::str::contains("no terminal for an editor"))
                    .and(predicate::str::contains("edit KEY -- CMD"))
                    .and(predicate::str::contains("--jq")),
            );
    }
    assert!(!ran.exists());
    assert_eq!(env.snapshot().changed_since(&before), Vec::<PathBuf>::new());
    assert_eq!(env.file("k").unwrap(), b"{}");
}

#[test]
fn the_editor_runs_on_the_terminal_on_a_0600_copy_and_stdout_is_only_the_etag() {
    let env = TestStore::new();
    env.put("k", r#"{"secret":1}"#);
    let seen = env.root().join("seen");
    // The editor notes the copy's mode and whether its stdin, stdout and
    // stderr are the terminal, and prints noise, as vim prints escapes.
    let editor = script(
        &env,
        "editor.sh",
        &format!(
            "stat -c %a \"$1\" > '{0}.mode'\n\
             t=no; if [ -t 0 ] && [ -t 1 ] && [ -t 2 ]; then t=yes; fi; echo $t > '{0}.tty'\n\
             echo noise; echo noise >&2\n\
             echo '[2]' > \"$1\"",
            seen.display()
        ),
    );
    let mut cmd = env.process();
    with_terminal(&mut cmd);
    cmd.args(["edit", "k"])
        .env("EDITOR", &editor)
        .env_remove("VISUAL");
    Command::from_std(cmd)
        .write_stdin("not for the editor")
        .timeout(Duration::from_secs(60))
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(b"[2]\n")))
        .stderr("");
    assert_eq!(env.file("k").unwrap(), b"[2]\n");
    let read = |ext| fs::read_to_string(seen.with_extension(ext)).unwrap();
    assert_eq!(read("mode"), "600\n", "the copy of the document is private");
    assert_eq!(read("tty"), "yes\n", "the editor's stdio is the terminal");
}

/// Standard error: one `error:` line a skipped key, then one that sums up.
fn skipped_keys(stderr: &[u8]) -> Vec<String> {
    let stderr = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.iter().all(|line| line.starts_with("error: ")),
        "{stderr}"
    );
    let (summary, skipped) = lines.split_last().expect("a summary line");
    assert!(summary.contains("named above"), "{stderr}");
    skipped
        .iter()
        .map(|line| {
            let rest = line
                .strip_prefix("error: skipped key ")
                .unwrap_or_else(|| panic!("{stderr}"));
            rest[..rest.find(": ").unwrap()].to_string()
        })
        .collect()
}

#[test]
fn export_prints_every_good_document_and_names_each_bad_key_then_exits_1() {
    let env = TestStore::new();
    for key in ["a", "b", "c", "d", "e"] {
        env.put(key, format!("{{\"key\":\"{key}\"}}"));
    }
    // A hand edit that is not JSON, a link out of the store, and a document
    // too long for one import line.
    fs::write(env.path("b"), "not json").unwrap();
    fs::write(env.root().join("other.json"), "{}").unwrap();
    fs::remove_file(env.path("c")).unwrap();
    std::os::unix::fs::symlink("../other.json", env.path("c")).unwrap();
    env.put("d", format!("\"{}\"", "x".repeat(2000)));
    let out = env
        .cmd()
        .env("ETAGSTORE_IMPORT_LINE_LIMIT", "1000")
        .arg("export")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let keys: Vec<String> = stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["key"].to_string())
        .collect();
    assert_eq!(keys, ["\"a\"", "\"e\""], "{stdout}");
    assert_eq!(skipped_keys(&out.stderr), ["\"b\"", "\"c\"", "\"d\""]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(stderr.contains("line 1, column 2"), "{stderr}");
    assert!(stderr.contains("get -o"), "{stderr}");
}

#[test]
fn get_o_dash_writes_the_document_to_stdout_as_curl_does() {
    let env = TestStore::new();
    env.put("k", "{\"a\": 1}\n");
    env.run(["get", "k", "-o", "-"])
        .stdout("{\"a\": 1}\n")
        .check();
    assert!(!env.root().join("-").exists());
}

/// The `--help` text of a subcommand.
fn help(env: &TestStore, sub: &str) -> String {
    let out = env.cmd().args([sub, "--help"]).output().unwrap();
    assert!(out.status.success(), "{sub}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

const SUBCOMMANDS: [&str; 13] = [
    "get",
    "etag",
    "set",
    "set-unsafe",
    "edit",
    "patch",
    "delete",
    "list",
    "watch",
    "export",
    "import",
    "completions",
    "man",
];

#[test]
fn lock_timeout_is_shown_only_on_the_commands_that_take_the_lock() {
    let env = TestStore::new();
    let locking = ["set", "set-unsafe", "edit", "patch", "delete", "import"];
    for sub in SUBCOMMANDS {
        assert_eq!(
            help(&env, sub).contains("--lock-timeout"),
            locking.contains(&sub),
            "{sub} --help"
        );
    }
    // Before the subcommand, as before; after it, on any command.
    env.cmd()
        .args(["--lock-timeout", "1", "set", "k", "1", "--etag", ""])
        .assert()
        .success()
        .stdout(format!("{}\n", md5_hex(b"1")));
    env.cmd()
        .args(["set-unsafe", "k", "2", "--lock-timeout", "0"])
        .assert()
        .success();
    env.cmd()
        .args(["get", "k", "--lock-timeout", "1"])
        .assert()
        .success()
        .stdout("2");
    // The value after the subcommand is the one that counts, and is checked.
    env.run([
        "--lock-timeout",
        "1",
        "delete",
        "k",
        "--etag",
        "*",
        "--lock-timeout",
        "-1",
    ])
    .error(["must be ≥ 0"])
    .status(2)
    .check();
}

#[test]
fn every_subcommand_help_has_examples_to_paste_and_its_exit_codes() {
    let env = TestStore::new();
    for sub in SUBCOMMANDS {
        let text = help(&env, sub);
        let examples = text
            .split("\nExamples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{sub} --help has no examples:\n{text}"));
        assert!(
            examples
                .lines()
                .any(|line| line.trim_start().contains(&format!("etagstore {sub}"))),
            "{sub}: {examples}"
        );
        // The rule of item 5: an ETag is never read apart from its document
        // and then written with.
        assert!(!text.contains("$(etagstore etag"), "{sub}: {text}");
    }
    let get = help(&env, "get");
    assert!(get.contains("\n  4  "), "{get}");
    let import = help(&env, "import");
    assert!(
        import.contains("\n  3  ") && import.contains("skipped"),
        "{import}"
    );
    let top = env.cmd().arg("--help").output().unwrap();
    let top = String::from_utf8(top.stdout).unwrap();
    assert!(top.contains("import"), "{top}");
}

#[test]
fn edit_of_a_missing_key_suggests_default_with_the_store() {
    let env = TestStore::new();
    env.put("other", "1");
    env.run(["edit", "k", "--jq", ".n = 1"])
        .stderr_matches(one_error_line().and(predicate::str::contains(format!(
            "etagstore --store {} edit k --default",
            env.store().display()
        ))))
        .status(4)
        .check();
    env.run(["get", "k"])
        .stderr_matches(one_error_line().and(predicate::str::contains(format!(
            "create it with: etagstore --store {} set k VALUE --etag ''",
            env.store().display()
        ))))
        .status(4)
        .check();
    assert!(env.file("k").is_none());
}

#[test]
fn import_errors_give_the_line_and_column_in_one_style() {
    let env = TestStore::new();
    env.run(["import"])
        .stdin("{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\",\"value\":[1,}\n")
        .stderr_matches(
            predicate::str::contains(
                "imported 1, skipped 0\nerror: invalid document: line 2, column 23: ",
            )
            .and(predicate::str::contains("at line").not()),
        )
        .status(6)
        .check();
    assert!(env.file("b").is_none());
}

#[test]
fn list_l_prints_every_readable_entry_and_names_each_bad_key_then_exits_1() {
    let env = TestStore::new();
    for key in ["a", "b", "c"] {
        env.put(key, "{}");
    }
    fs::write(env.root().join("other.json"), "{}").unwrap();
    fs::remove_file(env.path("b")).unwrap();
    std::os::unix::fs::symlink("../other.json", env.path("b")).unwrap();
    for args in [vec!["list", "-l"], vec!["list", "--json"]] {
        let out = env.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stdout = String::from_utf8(out.stdout.clone()).unwrap();
        assert_eq!(stdout.lines().count(), 2, "{stdout}");
        assert!(stdout.contains('a') && stdout.contains('c'), "{stdout}");
        assert_eq!(skipped_keys(&out.stderr), ["\"b\""], "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    }
    // Keys alone read no document: all three, exit 0.
    env.cmd()
        .arg("list")
        .assert()
        .success()
        .stdout("a\nb\nc\n")
        .stderr("");
}

#[test]
fn store_errors_speak_about_the_store_not_its_internal_files() {
    let env = TestStore::new();
    let file = env.root().join("afile");
    std::fs::write(&file, "x").unwrap();
    for args in [
        &["get", "k"][..],
        &["etag", "k"][..],
        &["list"][..],
        &["list", "-l"][..],
        &["set", "k", "1", "--etag", ""][..],
    ] {
        env.cmd_without_store()
            .arg("--store")
            .arg(&file)
            .args(args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(one_error_line().and(predicate::str::contains(format!(
                "the store '{}' is not a directory",
                file.display()
            ))));
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn a_read_only_store_is_not_writable_in_so_many_words() {
    let env = TestStore::new();
    env.put("k", "1");
    let store = env.store();
    let path = |p: &str| store.join(p);
    // Root writes anyway: take the write bits from the store and its
    // internal directories, and run as a user who cannot write there.
    if !crate::common::running_as_root() {
        use std::os::unix::fs::PermissionsExt;
        for dir in [path(""), path(".etagstore/tmp"), path(".etagstore/locks")] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        env.cmd()
            .args(["set", "k2", "2", "--etag", ""])
            .assert()
            .code(1)
            .stderr(one_error_line().and(predicate::str::contains(format!(
                "the store '{}' is not writable",
                store.display()
            ))));
        for dir in [path(""), path(".etagstore/tmp"), path(".etagstore/locks")] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        return;
    }
    let _ = std::process::Command::new("useradd")
        .args(["-M", "etagstore-reader"])
        .output();
    std::fs::set_permissions(
        env.root(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for args in [
        &["set", "k2", "2", "--etag", ""][..],
        &["set", "k", "2", "--etag", "*"][..],
        &["delete", "k", "--etag", "*"][..],
    ] {
        let out = std::process::Command::new("runuser")
            .args(["-u", "etagstore-reader", "--"])
            .arg(TestStore::bin())
            .arg("--store")
            .arg(&store)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("the store '{}' is not writable", store.display()))
                && !stderr.contains(".etagstore"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(env.file("k").unwrap(), b"1");
}

#[test]
fn a_document_read_from_a_terminal_gets_one_note_that_says_how_to_end_it() {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let env = TestStore::new();
    // SAFETY: plain calls on descriptors this test owns.
    let (mut master, slave) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(fd >= 0);
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr()).to_owned();
        (File::from_raw_fd(fd), path)
    };
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(std::ffi::OsStr::from_bytes(slave.to_bytes()))
        .unwrap();
    let child = env
        .process()
        .args(["set-unsafe", "k"])
        .stdin(terminal)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A line, then Ctrl-D at the start of the next: end of input.
    master.write_all(b"[1]\n\x04").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("note: reading the document from the terminal")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("Ctrl-D"), "{stderr}");
    assert_eq!(env.file("k").unwrap(), b"[1]\n");
    // From a pipe, no note: standard error stays empty.
    env.run(["set-unsafe", "k2"])
        .stdin("[2]")
        .stdout(format!("{}\n", md5_hex(b"[2]")))
        .check();
}
