#!/usr/bin/env bash
# Tests the packaging scripts' failure modes, fast and without building a
# package: scripts/dist-assets.sh refuses a binary that leaves out a page,
# scripts/package-check.sh deb fails on a .deb that lacks a man page or a
# working completion and removes it again, and scripts/race-demo.sh
# --markdown prints its counts from the run.
#
# Usage: tests/scripts/packaging.sh   (the deb tests need root and dpkg, as
# in CI; elsewhere they are skipped; the race-demo test needs a built
# etagstore in target/)
#
# Prints one line per test and "packaging: N passed, M failed"; exits 1 if
# any failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

passed=0
failed=0
scratch=$(mktemp -d "${TMPDIR:-/tmp}/packaging-test.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT

ok() {
    echo "ok: $1"
    passed=$((passed + 1))
}
not_ok() {
    echo "FAILED: $1" >&2
    [ -s "$scratch/out" ] && sed 's/^/    /' "$scratch/out" >&2
    failed=$((failed + 1))
}
# Runs the command after $1 (the expected exit status), output to $scratch/out.
expect_status() {
    local want=$1 status=0
    shift
    "$@" >"$scratch/out" 2>&1 || status=$?
    [ "$status" -eq "$want" ] || { echo "exit $status, not $want" >>"$scratch/out"; return 1; }
}

# --- dist-assets.sh -------------------------------------------------------

if expect_status 2 "$root/scripts/dist-assets.sh"; then
    ok "dist-assets without arguments is a usage error"
else
    not_ok "dist-assets without arguments is a usage error"
fi

if expect_status 1 "$root/scripts/dist-assets.sh" "$scratch/no-such-binary" "$scratch/assets" &&
    grep -q "is not an executable" "$scratch/out"; then
    ok "dist-assets refuses a binary that is not there"
else
    not_ok "dist-assets refuses a binary that is not there"
fi

# A binary whose --help lists `set` but whose `man --dir` writes no page for it.
cat >"$scratch/fake-etagstore" <<'EOF'
#!/bin/sh
case $1 in
    man) echo .TH >"$3/etagstore.1" ;;
    completions) echo "# $2" ;;
    --help) printf 'Usage: etagstore\n\nCommands:\n  set   Write a document\n  help  Print this\n\n' ;;
esac
EOF
chmod +x "$scratch/fake-etagstore"
if expect_status 1 "$root/scripts/dist-assets.sh" "$scratch/fake-etagstore" "$scratch/assets" &&
    grep -q "no page written: etagstore-set.1" "$scratch/out"; then
    ok "dist-assets fails when a listed subcommand has no man page"
else
    not_ok "dist-assets fails when a listed subcommand has no man page"
fi

# --- package-check.sh -----------------------------------------------------

if expect_status 2 "$root/scripts/package-check.sh" && expect_status 2 "$root/scripts/package-check.sh" rpm; then
    ok "package-check without a known part is a usage error"
else
    not_ok "package-check without a known part is a usage error"
fi

# A hand-made package named etagstore, missing what $1 says.
fake_deb() {
    local what=$1 tree=$scratch/deb-$1
    mkdir -p "$tree/DEBIAN" "$tree/usr/bin" "$tree/usr/share/man/man1" \
        "$tree/usr/share/bash-completion/completions" "$tree/usr/share/zsh/vendor-completions" \
        "$tree/usr/share/fish/vendor_completions.d"
    printf 'Package: etagstore\nVersion: 0.0.1-1\nArchitecture: all\nMaintainer: test <test@example.invalid>\nDescription: a test double of etagstore\n' \
        >"$tree/DEBIAN/control"
    printf '#!/bin/sh\necho etagstore 0.0.1\n' >"$tree/usr/bin/etagstore"
    chmod 755 "$tree/usr/bin/etagstore"
    local page
    for page in etagstore etagstore-set; do
        [ "$what" = no-man-page ] && [ $page = etagstore-set ] && continue
        printf '.TH %s 1\n.SH NAME\n%s\n' "$page" "$page" | gzip -9n >"$tree/usr/share/man/man1/$page.1.gz"
    done
    # Completes every word to `sets`: not what etagstore offers.
    printf '_etagstore() { COMPREPLY=(sets); }\ncomplete -F _etagstore etagstore\n' \
        >"$tree/usr/share/bash-completion/completions/etagstore"
    : >"$tree/usr/share/zsh/vendor-completions/_etagstore"
    : >"$tree/usr/share/fish/vendor_completions.d/etagstore.fish"
    dpkg-deb --build --root-owner-group "$tree" "$scratch/$what.deb" >/dev/null
}

if [ "$(id -u)" -ne 0 ] || ! command -v dpkg-deb >/dev/null; then
    echo "SKIPPED: package-check deb tests (need root and dpkg)"
elif dpkg-query -W -f '${Status}' etagstore 2>/dev/null | grep -q 'ok installed'; then
    echo "SKIPPED: package-check deb tests (a package etagstore is installed here)"
else
    fake_deb no-man-page
    if PACKAGE_CHECK_DEB=$scratch/no-man-page.deb expect_status 1 "$root/scripts/package-check.sh" deb &&
        grep -q "the package has no /usr/share/man/man1/etagstore-set.1.gz" "$scratch/out" &&
        ! dpkg-query -W -f '${Status}' etagstore 2>/dev/null | grep -q 'ok installed'; then
        ok "package-check deb fails on a package without the set page, and removes it"
    else
        not_ok "package-check deb fails on a package without the set page, and removes it"
    fi

    fake_deb wrong-completion
    if PACKAGE_CHECK_DEB=$scratch/wrong-completion.deb expect_status 1 "$root/scripts/package-check.sh" deb &&
        grep -q "bash completes 'etagstore se' to 'sets', not 'set set-unsafe'" "$scratch/out" &&
        ! dpkg-query -W -f '${Status}' etagstore 2>/dev/null | grep -q 'ok installed'; then
        ok "package-check deb fails when bash does not offer set and set-unsafe, and removes it"
    else
        not_ok "package-check deb fails when bash does not offer set and set-unsafe, and removes it"
    fi
fi

# --- race-demo.sh --markdown ----------------------------------------------

bin=$(ls -t "$root"/target/debug/etagstore "$root"/target/*/debug/etagstore 2>/dev/null | head -n 1)
if [ -z "$bin" ]; then
    not_ok "race-demo --markdown: no etagstore built in target/ (cargo build first)"
else
    # One writer cannot race: set-unsafe loses nothing, and the table must say so.
    if ETAGSTORE_BIN=$bin expect_status 0 sh "$root/scripts/race-demo.sh" --markdown 1 3 &&
        grep -qx '| method | writers | expected | final count | lost updates | conflicts/retries | wall time ms |' "$scratch/out" &&
        grep -q '^| `set-unsafe` | 1 | 3 | 3 | 0 | n/a | [0-9]* |$' "$scratch/out" &&
        grep -q '^| `get/set --etag` | 1 | 3 | 3 | 0 | 0 | [0-9]* |$' "$scratch/out" &&
        grep -q '^| `edit --jq` | 1 | 3 | 3 | 0 | 0 gave up | [0-9]* |$' "$scratch/out" &&
        grep -q '`set-unsafe` lost 0 of 3 updates; `set --etag` lost 0 and `edit` lost 0' "$scratch/out"; then
        ok "race-demo --markdown prints the counts of its run (one writer loses nothing)"
    else
        not_ok "race-demo --markdown prints the counts of its run (one writer loses nothing)"
    fi
    # Racing writers: each row adds up (final + lost = expected for set-unsafe).
    if ETAGSTORE_BIN=$bin expect_status 0 sh "$root/scripts/race-demo.sh" --markdown 3 4 &&
        awk -F' *[|] *' '$2 == "`set-unsafe`" { found = 1; if ($5 + $6 != 12 || $4 != 12) bad = 1 }
                         END { exit !(found && !bad) }' "$scratch/out"; then
        ok "race-demo --markdown: set-unsafe's final count and lost updates add up to the expected"
    else
        not_ok "race-demo --markdown: set-unsafe's final count and lost updates add up to the expected"
    fi
    if expect_status 2 sh "$root/scripts/race-demo.sh" --markdown 1 2 3; then
        ok "race-demo --markdown with three counts is a usage error"
    else
        not_ok "race-demo --markdown with three counts is a usage error"
    fi
fi

echo "packaging: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
