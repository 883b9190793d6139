//! A new user's mistakes: each gets one `error:` line that names the fix,
//! the documented exit code, and no change to the store.

use predicates::prelude::*;

use crate::common::{one_error_line, TestStore};

#[test]
fn set_with_star_on_a_missing_key_says_to_create_it_not_to_retry() {
    let env = TestStore::new();
    for etag in ["*", "0123456789abcdef0123456789abcdef"] {
        env.cmd()
            .args(["set", "k", "1", "--etag", etag])
            .assert()
            .code(3)
            .stderr(
                one_error_line()
                    .and(predicate::str::contains("does not exist; create it with:"))
                    .and(predicate::str::contains("set k VALUE --etag ''"))
                    .and(predicate::str::contains("retry").not()),
            );
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
        env.cmd_without_store()
            .args(&args)
            .assert()
            .code(3)
            .stderr(one_error_line().and(predicate::str::contains(format!(
                "etagstore --store {expected_store} "
            ))));
    }
    // Through ETAGSTORE_DIR, too.
    env.cmd_without_store()
        .env("ETAGSTORE_DIR", &store)
        .args(["set", "k", "2", "--etag", &"0".repeat(32)])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "etagstore --store {store} get k"
        )));
    // The default store is not repeated.
    let default = TestStore::new();
    default
        .cmd_without_store()
        .args(["set", "k", "1", "--etag", "*"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("create it with: etagstore set k"));
    assert_eq!(env.file("k").unwrap(), b"1", "{etag}");
}

#[test]
fn a_store_with_a_space_is_quoted_for_the_shell_in_hints() {
    let env = TestStore::new();
    let store = env.root().join("my store");
    env.cmd_without_store()
        .arg("--store")
        .arg(&store)
        .args(["set", "k", "1", "--etag", "*"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "etagstore --store '{}' set k VALUE --etag ''",
            store.display()
        )));
}

#[test]
fn no_arguments_print_the_usage_and_the_commands_with_exit_2() {
    let env = TestStore::new();
    env.cmd_without_store().assert().code(2).stdout("").stderr(
        predicate::str::contains("Usage: etagstore")
            .and(predicate::str::contains("Commands:"))
            .and(predicate::str::contains("set-unsafe")),
    );
}

#[test]
fn usage_errors_point_at_the_subcommand_help_and_give_the_right_tip() {
    let env = TestStore::new();
    env.cmd()
        .args(["set", "k", "1"])
        .assert()
        .code(2)
        .stderr(one_error_line().and(predicate::str::contains("(see 'etagstore set --help')")));
    env.cmd()
        .args(["set-unsafe", "k", "1", "--etag", "*"])
        .assert()
        .code(2)
        .stderr(
            one_error_line()
                .and(predicate::str::contains("set-unsafe takes no --etag"))
                .and(predicate::str::contains("etagstore set KEY VALUE --etag E"))
                .and(predicate::str::contains("to pass '--etag' as a value").not()),
        );
    for args in [
        vec!["--lock-timeout", "-1", "get", "k"],
        vec!["watch", "k", "--timeout", "-1"],
    ] {
        env.cmd()
            .args(&args)
            .assert()
            .code(2)
            .stderr(one_error_line().and(predicate::str::contains("must be ≥ 0")));
    }
    assert!(!env.store().exists());
}

#[test]
fn a_file_name_or_a_bare_string_as_value_gets_the_fix() {
    let env = TestStore::new();
    std::fs::write(env.root().join("config.json"), "{}").unwrap();
    env.cmd()
        .args(["set", "config", "config.json", "--etag", ""])
        .assert()
        .code(6)
        .stderr(one_error_line().and(predicate::str::contains("did you mean -f config.json?")));
    env.cmd()
        .args(["set-unsafe", "name", "Ann Lee"])
        .assert()
        .code(6)
        .stderr(one_error_line().and(predicate::str::contains(
            r#"a string must be quoted as JSON: '"Ann Lee"'"#,
        )));
    // Broken JSON that is not one of those two mistakes gets no guess.
    env.cmd()
        .args(["set-unsafe", "name", "{x"])
        .assert()
        .code(6)
        .stderr(one_error_line().and(predicate::str::contains("did you mean").not()));
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
    env.cmd()
        .args(["man", "sett"])
        .assert()
        .code(2)
        .stderr(one_error_line().and(predicate::str::contains("set-unsafe")));
}
