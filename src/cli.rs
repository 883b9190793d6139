//! The command-line interface: the whole clap definition, and no logic.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::store::Location;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  any other failure (I/O, permissions, an edit command that failed);
     also: export or list -l left out documents it could not read (each is
     named on stderr; the rest were printed)
  2  usage error: bad flags, invalid key, a malformed --etag, a jq filter
     that does not compile, a --if predicate that does not yield one
     boolean, a --json-patch that is not a JSON Patch, edit KEY with no
     terminal for the editor
  3  precondition failed: the ETag did not match (re-read, re-apply, retry);
     also: a --if predicate was false; a patch test op failed; edit or
     patch ran out of retries; import skipped keys that exist
  4  key not found
  5  lock timeout: another writer held the key past --lock-timeout (retry)
  6  invalid document: not JSON, not UTF-8, nested too deep
  7  watch timed out: nothing changed within --timeout
  8  outcome unknown: a network store took the write but its answer was
     lost; the error names the ETag to look for (etagstore etag KEY), or
     run the same set --or-same (delete --or-missing) again

Environment:
  ETAGSTORE_DIR  the store when --store is not given
  AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY
                 credentials of an Azure store (see docs/azure.md)
  AZURE_STORAGE_USE_EMULATOR=true
                 the local Azurite; put it on one command, never export it
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, …
                 credentials and endpoint of an S3 store (see docs/s3.md)
  ETAGSTORE_TIMEOUT
                 seconds a network request may wait for an answer (default 30)
  ETAGSTORE_ERROR_FORMAT
                 json: errors as JSON objects, as --error-format json
  VISUAL, EDITOR the editor of 'edit KEY' (else vi)

Examples:
  etagstore set greeting '{\"text\":\"hello\"}' --etag ''    # create only
  etag=$(etagstore get greeting -o doc.json)               # read once: document and its ETag
  etagstore set greeting -f new.json --etag \"$etag\"        # exit 3 if someone wrote meanwhile
  etagstore list -l

--lock-timeout SECONDS (default 10) is an option of the commands that take a
key's lock: set, set-unsafe, edit, patch, delete, import.";

/// The store when neither --store nor ETAGSTORE_DIR names one.
pub const DEFAULT_STORE: &str = "_filestore";

/// A key -> JSON document store with ETags: compare-and-swap writes for shell scripts.
#[derive(Debug, Parser)]
#[command(name = "etagstore", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// The store: a directory (created on the first write), an Azure Blob Storage
    /// container, az://CONTAINER[/PREFIX] or https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX],
    /// or an S3 bucket, s3://BUCKET[/PREFIX]
    #[arg(
        long,
        global = true,
        env = "ETAGSTORE_DIR",
        value_name = "DIR",
        default_value = DEFAULT_STORE,
        value_parser = StoreParser,
        hide_env_values = true
    )]
    pub store: Location,

    /// --lock-timeout before the subcommand, as earlier versions took it
    /// (it is shown on the commands that take a lock: see `Cli::lock_timeout`)
    #[arg(
        long = "lock-timeout",
        value_name = "SECONDS",
        value_parser = parse_seconds,
        allow_negative_numbers = true,
        hide = true
    )]
    pub lock_timeout_before: Option<Duration>,

    /// How errors are printed: text, or one JSON object a line (docs/contract.md lists its fields)
    #[arg(
        long,
        global = true,
        env = "ETAGSTORE_ERROR_FORMAT",
        value_name = "FORMAT",
        value_enum,
        ignore_case = true,
        default_value_t = ErrorFormat::Text
    )]
    pub error_format: ErrorFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// The values of --error-format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorFormat {
    /// `error: MESSAGE`
    Text,
    /// `{"code":…,"exit":…,"message":…}`
    Json,
}

/// How many times `--if` reads again after a concurrent change, unless told.
pub const DEFAULT_RETRIES: u32 = 10;

/// How long a writer waits for another writer of the same key, unless told.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

impl Cli {
    /// Parses the process's command line. `get`, `etag` and `set --etag`
    /// in their plain shapes, the commands scripts run in loops, are read by `parse_fast`;
    /// every other line, and every error, is clap's.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        let args: Vec<OsString> = std::env::args_os().collect();
        match parse_fast(args.get(1..).unwrap_or_default(), |name| {
            std::env::var_os(name)
        }) {
            Some(cli) => Ok(cli),
            None => Cli::try_parse_from(args),
        }
    }

    /// The --lock-timeout in force: the one after the subcommand, else the
    /// one before it, else 10 s.
    pub fn lock_timeout(&self) -> Duration {
        let after = match &self.command {
            Command::Set(args) => args.input.lock.lock_timeout,
            Command::SetUnsafe(args) => args.lock.lock_timeout,
            Command::Edit(args) => args.lock.lock_timeout,
            Command::Patch(args) => args.lock.lock_timeout,
            Command::Delete(args) => args.lock.lock_timeout,
            Command::Import(args) => args.lock.lock_timeout,
            Command::Get(args) => args.no_lock.lock_timeout,
            Command::Etag(args) => args.no_lock.lock_timeout,
            Command::List(args) => args.no_lock.lock_timeout,
            Command::Watch(args) => args.no_lock.lock_timeout,
            Command::Export(args) => args.no_lock.lock_timeout,
            Command::Completions(_) | Command::Man(_) => None,
        };
        after
            .or(self.lock_timeout_before)
            .unwrap_or(DEFAULT_LOCK_TIMEOUT)
    }
}

/// --lock-timeout on a command that takes a key's lock.
#[derive(Debug, Args)]
pub struct LockArg {
    /// Seconds to wait for another writer of the same key before exit 5 (inf: no limit) [default: 10]
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_seconds,
        allow_negative_numbers = true
    )]
    pub lock_timeout: Option<Duration>,
}

/// --lock-timeout on a command that takes no lock: accepted, as it was when
/// the flag was global, and not shown.
#[derive(Debug, Args)]
pub struct NoLockArg {
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_seconds,
        allow_negative_numbers = true,
        hide = true
    )]
    pub lock_timeout: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a document byte for byte as stored
    #[command(after_help = GET_AFTER_HELP)]
    Get(GetArgs),
    /// Print a document's current ETag (the MD5 of its bytes)
    #[command(after_help = ETAG_AFTER_HELP)]
    Etag(KeyArg),
    /// Write a document if its ETag is still E (compare-and-swap); prints the new ETag
    #[command(after_help = SET_AFTER_HELP)]
    Set(SetArgs),
    /// Write a document unconditionally (last writer wins; still atomic); prints the new ETag
    #[command(after_help = SET_UNSAFE_AFTER_HELP)]
    SetUnsafe(InputArgs),
    /// Read, change and write back a document, retrying on conflict; prints the new ETag
    #[command(after_help = EDIT_AFTER_HELP)]
    Edit(EditArgs),
    /// Apply a JSON Merge Patch or JSON Patch, retrying on conflict; prints the new ETag
    #[command(after_help = PATCH_AFTER_HELP)]
    Patch(PatchArgs),
    /// Delete a document if its ETag is still E
    #[command(after_help = DELETE_AFTER_HELP)]
    Delete(DeleteArgs),
    /// List keys, sorted, one a line
    #[command(after_help = LIST_AFTER_HELP)]
    List(ListArgs),
    /// Wait until a document's ETag changes; prints the new ETag
    #[command(after_help = WATCH_AFTER_HELP)]
    Watch(WatchArgs),
    /// Print every document as JSON Lines, sorted by key (a backup)
    #[command(after_help = EXPORT_AFTER_HELP)]
    Export(ExportArgs),
    /// Write documents from `export` output, create-only unless --overwrite
    #[command(after_help = IMPORT_AFTER_HELP)]
    Import(ImportArgs),
    /// Print a completion script for a shell
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) of the tool or of one subcommand, or write them all
    #[command(after_help = MAN_AFTER_HELP)]
    Man(ManArgs),
}

const MAN_AFTER_HELP: &str = "\
Examples:
  etagstore man | man -l -                       # read the page now
  etagstore man set | man -l -                   # the page of one subcommand
  mkdir -p ~/.local/share/man/man1 && etagstore man --dir ~/.local/share/man/man1
  man etagstore-set                              # after --dir, where man looks";

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (default: the tool's)
    #[arg(conflicts_with = "dir")]
    pub subcommand: Option<String>,

    /// Write etagstore.1 and one etagstore-SUBCOMMAND.1 a subcommand into DIR
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

const WATCH_AFTER_HELP: &str = "\
Exit codes:
  0  the key's ETag differs from E: the new ETag is printed (\"\" after a delete)
  7  --timeout passed first

Examples:
  etagstore watch config                        # until the next change
  etagstore watch config --etag '' --timeout 30 # until the key exists
  etag=$(etagstore get config -o config.json)   # the config and its ETag, one read
  while etagstore watch config --etag \"$etag\" >/dev/null; do
    etag=$(etagstore get config -o config.json) && reload-service
  done";

const GET_AFTER_HELP: &str = "\
-o FILE writes the document to FILE (replaced whole, never half written) and
prints its ETag: the document and its ETag from one read. -o - writes the
document to standard output and prints no ETag, as curl does; --json prints
both on one line.

Exit codes:
  0  printed
  4  key not found (--default JSON reads a missing key as JSON, ETag '')
  1  any other failure (etagstore --help lists every code)

Examples:
  etagstore get config                          # the document, byte for byte
  etag=$(etagstore get config -o config.json)   # the document and its ETag, one read
  etagstore get config --json                   # {\"key\":…,\"etag\":…,\"value\":…}
  etagstore get counter --default '{\"n\":0}'     # a missing key reads as the default";

const ETAG_AFTER_HELP: &str = "\
The ETag is the MD5 of the document's bytes: md5sum agrees. For a write based
on what you read, take the ETag from the same read as the document
(get -o FILE, get --json), not from a second command.

Exit codes:
  0  printed
  4  key not found

Examples:
  etagstore etag config                         # 32 hex digits
  etagstore get config | md5sum                 # the same digits";

const SET_UNSAFE_AFTER_HELP: &str = "\
Last writer wins: for seeding and restoring. To change what is there, use
set --etag or edit, which never lose another writer's update.

Exit codes:
  0  written; the new ETag is printed
  5  lock timeout: another writer held the key past --lock-timeout
  6  invalid document

Examples:
  etagstore set-unsafe config -f config.json
  echo '{\"retries\":3}' | etagstore set-unsafe config";

const DELETE_AFTER_HELP: &str = "\
--if FILTER deletes only if the jq predicate is true of the current document
(null for a missing key: then there is nothing to delete, exit 0), checked
atomically with the delete; with --etag too, both must hold.

Exit codes:
  0  deleted (with --etag '', the key does not exist: nothing to do; with
     --or-missing, the key was already gone)
  2  a malformed --etag; a --if predicate that does not compile, fails, or
     yields anything but one boolean (nothing deleted)
  3  the ETag did not match: someone changed the document since you read it;
     or the --if predicate was false (the message names it and the ETag)
  5  lock timeout

Examples:
  etag=$(etagstore get old -o old.json)         # keep a copy, and its ETag
  etagstore delete old --etag \"$etag\"           # only the version you kept
  etagstore delete old --etag '*'               # whatever version it is
  etagstore delete job-42 --if '.state == \"done\"'";

const LIST_AFTER_HELP: &str = "\
Exit codes:
  0  listed (nothing if no key matches)
  1  -l or --json could not read some documents: each is named on stderr
     (error: skipped key \"K\": …), the others are listed

Examples:
  etagstore list users/                         # the keys that start with users/
  etagstore list -l
  etagstore list -z | xargs -0 -n1 etagstore get
  etagstore list --json | jq -r 'select(.size > 1000000) | .key'";

const EXPORT_AFTER_HELP: &str = "\
Each line is {\"key\":…,\"etag\":…,\"value\":…}; a document that is not one
compact line also gets \"text\", its exact bytes, so that import restores it
byte for byte, with the same ETag.

Exit codes:
  0  every document exported
  1  some documents could not be read (not JSON, a symbolic link, too long
     for one import line): each is named on stderr, the others are exported

Examples:
  etagstore export > backup.jsonl
  etagstore export users/ | gzip > users.jsonl.gz";

const IMPORT_AFTER_HELP: &str = "\
Exit codes:
  0  every line imported
  3  keys that exist were skipped (named at the end; every other line was
     imported): import again with --overwrite to replace them
  5  lock timeout
  6  a malformed line, named by line and column; the lines before it were
     imported, none after it

Examples:
  etagstore import -f backup.jsonl
  etagstore export | etagstore --store ../copy import
  etagstore import --overwrite < backup.jsonl";

const COMPLETIONS_AFTER_HELP: &str = "\
Examples:
  mkdir -p ~/.local/share/bash-completion/completions
  etagstore completions bash > ~/.local/share/bash-completion/completions/etagstore
  mkdir -p ~/.config/fish/completions
  etagstore completions fish > ~/.config/fish/completions/etagstore.fish";

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The document's key
    pub key: String,

    /// Wait until the ETag differs from E (default: the ETag when the watch starts; '' waits for the key to appear)
    #[arg(long, value_name = "E", allow_hyphen_values = true)]
    pub etag: Option<String>,

    /// Give up after SECONDS with exit 7 (inf: never)
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_seconds,
        allow_negative_numbers = true
    )]
    pub timeout: Option<Duration>,

    /// Print the `get --json` envelope of the new document instead of its ETag
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub no_lock: NoLockArg,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only keys that start with PREFIX
    pub prefix: Option<String>,

    #[command(flatten)]
    pub no_lock: NoLockArg,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Read the export from FILE instead of standard input
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Replace keys that exist (last writer wins) instead of skipping them
    #[arg(long)]
    pub overwrite: bool,

    #[command(flatten)]
    pub lock: LockArg,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

const SET_AFTER_HELP: &str = "\
--etag values:
  <etag>  the document must still have this ETag: 32 hex digits, no quotes
          (upper case is the same ETag; anything else exits 2)
  ''      the key must not exist (create only)
  '*'     the key must exist, any version

--if FILTER: write only if the jq predicate is true of the current document
(null for a missing key), checked atomically with the write: if the key
changes in between, it is read and checked again (at most --retries times).
--if takes the place of --etag, or goes with it: then both must hold. The
document is read whole first.

Exit codes:
  0  written; the new ETag is printed (with --or-same, also when the
     document already is exactly these bytes: nothing is written)
  2  a malformed --etag (quotes, W/, too few digits); a --if predicate that
     does not compile, fails, or yields anything but one boolean
  3  the ETag did not match: re-read (get -o), re-apply, retry; for a
     missing key, create it with --etag ''; or the --if predicate was false
  5  lock timeout   6  invalid document

Examples:
  etagstore set config '{\"retries\":3}' --etag ''
  etag=$(etagstore get config -o doc.json)   # the document and its ETag, in one read
  jq '.retries += 1' doc.json | etagstore set config --etag \"$etag\"
  etagstore set config -f new.json --etag \"$etag\" --or-same  # safe to repeat after exit 8
  etagstore set lock '{\"owner\":\"me\"}' --if '.owner == null'   # claim it";

const EDIT_AFTER_HELP: &str = "\
Three ways to change the document:
  edit KEY                 opens $VISUAL, else $EDITOR, else vi, on a 0600
                           copy, on the terminal (/dev/tty; none: exit 2)
  edit KEY -- CMD ARGS...  runs CMD (no shell): document on stdin, new document on stdout
  edit KEY --jq FILTER     runs a jq filter inside etagstore (no jq needed)

The write is conditional on the ETag that was read. On a conflict, CMD and
--jq re-read and run again (at most --retries more times, jittered backoff);
with --merge they are not run again: their output is merged, path by path,
into the new document. The editor always merges: changes at other paths
join yours (a note on stderr names them); where both changed one path
differently, the editor opens again on a file listing the conflicts, and
what you save is written once its \"conflicts\" member is gone. Saved with
it, your text is kept in a file whose path is printed, with the command
that applies it. An edit that changes nothing writes nothing.
With --if FILTER the document is changed only while the jq predicate is true
of it (null for a missing key), checked again on every retry (false: exit 3).

CMD runs in its own process group. If etagstore gets SIGINT, SIGTERM or
SIGHUP while CMD runs, it passes the signal on, kills what is left 2 s
later, writes nothing and dies of the same signal (exit 128+N in a shell).
With --timeout, a CMD still running after SECONDS is stopped the same way
and edit exits 1, having written nothing.

Exit codes:
  0  written, or nothing to change; the ETag is printed
  2  usage, or no terminal for the editor (use -- CMD or --jq)
  3  conflict: the editor's conflicts were left unresolved (your text is
     kept; the error says where); CMD and --jq ran out of --retries; with
     --merge, the new document changed a path their output changed too; or the --if predicate was false
  4  key not found (--default JSON creates it)
  6  the new document is not JSON

Examples:
  etagstore edit config
  etagstore edit counter --default '{\"n\":0}' --jq '.n += $by' --argjson by 5
  etagstore edit profile --jq '.name = $name' --arg name \"Ann Lee\"
  etagstore edit doc --timeout 30 -- python3 migrate.py --to v2
  etagstore edit config --merge --jq '.replicas = 3'";

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The document's key
    pub key: String,

    /// Edit a missing key from this document and create it (create-only write)
    #[arg(long, value_name = "JSON")]
    pub default: Option<String>,

    /// How many times to retry after a conflict before exit 3 (CMD or --jq run again, or merge again)
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub retries: u32,

    /// Change the document with this jq filter (run inside etagstore)
    #[arg(long, value_name = "FILTER", conflicts_with = "command")]
    pub jq: Option<String>,

    /// Bind $NAME to the string VALUE in the filter, as jq --arg does
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], requires = "jq", allow_hyphen_values = true)]
    pub arg: Vec<String>,

    /// Bind $NAME to the JSON value in the filter, as jq --argjson does
    #[arg(long, num_args = 2, value_names = ["NAME", "JSON"], requires = "jq", allow_hyphen_values = true)]
    pub argjson: Vec<String>,

    /// On a conflict, merge CMD's or --jq's output into the new document instead of running it again
    #[arg(long)]
    pub merge: bool,

    /// Stop CMD after SECONDS (SIGTERM, SIGKILL 2 s later) and write nothing (exit 1)
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_seconds,
        allow_negative_numbers = true,
        requires = "command"
    )]
    pub timeout: Option<Duration>,

    /// Change the document only while this jq predicate is true of it (null
    /// for a missing key); checked again on every retry; false: exit 3
    #[arg(long = "if", value_name = "FILTER")]
    pub condition: Option<String>,

    #[command(flatten)]
    pub lock: LockArg,

    /// A command that reads the document on stdin and writes the new one to stdout
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

const PATCH_AFTER_HELP: &str = "\
The patch is the flag's value, '-' or nothing for standard input, or -f FILE:
  --merge       a JSON Merge Patch (RFC 7396): members set, null removes
  --json-patch  a JSON Patch (RFC 6902): an array of add, remove, replace,
                move, copy and test operations, applied all or nothing

It is applied to the document read and written back conditional on its
ETag; on a conflict, re-read and applied again (at most --retries more
times). The result is written as jq prints it, keys in their order; a patch
that changes nothing writes nothing.

Exit codes:
  0  written, or nothing to change; the ETag is printed
  2  --json-patch is not a JSON Patch (an unknown op, a pointer without '/')
  3  a test operation failed, or a path is not in the document; or the
     retries ran out
  4  key not found (create it first with set --etag '')
  6  the patch is not JSON; or the document holds a number that a 64-bit
     integer or a double cannot hold exactly (use edit --jq)

Examples:
  etagstore patch config --merge '{\"retries\":5,\"debug\":null}'
  etagstore patch config --json-patch '[{\"op\":\"test\",\"path\":\"/v\",\"value\":1},{\"op\":\"replace\",\"path\":\"/v\",\"value\":2}]'
  etagstore patch config --merge -f change.json";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["merge", "json_patch"])))]
pub struct PatchArgs {
    /// The document's key
    pub key: String,

    /// Apply this JSON Merge Patch (RFC 7396); '-' or no value: standard input
    #[arg(long, value_name = "JSON", num_args = 0..=1, default_missing_value = "-")]
    pub merge: Option<String>,

    /// Apply this JSON Patch (RFC 6902); '-' or no value: standard input
    #[arg(long, value_name = "JSON", num_args = 0..=1, default_missing_value = "-")]
    pub json_patch: Option<String>,

    /// Read the patch from FILE
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// How many times to re-read and re-apply after a conflict before exit 3
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub retries: u32,

    #[command(flatten)]
    pub lock: LockArg,
}

#[derive(Debug, Args)]
pub struct KeyArg {
    /// The document's key (1 to 200 bytes of UTF-8, no control characters)
    pub key: String,

    #[command(flatten)]
    pub no_lock: NoLockArg,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The document's key
    pub key: String,

    /// Write the document to FILE and print its ETag instead ('-': standard output, no ETag)
    #[arg(short, long, value_name = "FILE", conflicts_with = "json")]
    pub output: Option<PathBuf>,

    /// Print {"key":…,"etag":…,"value":…} from one read
    #[arg(long)]
    pub json: bool,

    /// Read a missing key as this document, with ETag "" (empty)
    #[arg(long, value_name = "JSON")]
    pub default: Option<String>,

    #[command(flatten)]
    pub no_lock: NoLockArg,
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// The document's key
    pub key: String,

    /// The document as an argument; '-' or nothing reads standard input. Never a
    /// secret: other local users can read a running command's arguments; use -f
    /// FILE or standard input
    #[arg(conflicts_with = "file")]
    pub value: Option<OsString>,

    /// Read the document from FILE
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub lock: LockArg,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Write only if the current ETag is E ('' = must not exist, '*' = must exist)
    #[arg(
        long,
        value_name = "E",
        required_unless_present = "condition",
        allow_hyphen_values = true
    )]
    pub etag: Option<String>,

    /// Also exit 0 if the document already is exactly these bytes: to repeat a write whose outcome is unknown
    #[arg(long)]
    pub or_same: bool,

    #[command(flatten)]
    pub condition: ConditionArgs,
}

/// `--if` on `set` and `delete`.
#[derive(Debug, Args)]
pub struct ConditionArgs {
    /// Only if this jq predicate is true of the current document (null for a
    /// missing key), checked atomically with the write; false: exit 3
    #[arg(long = "if", id = "condition", value_name = "FILTER")]
    pub predicate: Option<String>,

    /// With --if: how many times to read again when the key changes between
    /// the check and the write, before exit 3
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRIES, requires = "condition")]
    pub retries: u32,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The document's key
    pub key: String,

    /// Delete only if the current ETag is E ('' = must not exist, '*' = must exist)
    #[arg(
        long,
        value_name = "E",
        required_unless_present = "condition",
        allow_hyphen_values = true
    )]
    pub etag: Option<String>,

    #[command(flatten)]
    pub condition: ConditionArgs,

    /// Also exit 0 if the key does not exist: to repeat a delete whose outcome is unknown
    #[arg(long)]
    pub or_missing: bool,

    #[command(flatten)]
    pub lock: LockArg,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only keys that start with PREFIX
    pub prefix: Option<String>,

    /// Long format: ETag, size, modification time (RFC 3339), key; tab-separated
    #[arg(short, long, conflicts_with = "json")]
    pub long: bool,

    /// One JSON object a line: key, etag, size, modified
    #[arg(long)]
    pub json: bool,

    /// End each entry with NUL instead of a newline, for xargs -0
    #[arg(short = 'z', long = "null", conflicts_with = "json")]
    pub null: bool,

    #[command(flatten)]
    pub no_lock: NoLockArg,
}

/// The hot command lines without clap: building clap's tree of 13
/// subcommands and their help costs a `get` more than reading the document
/// does (docs/benchmarks.md, "Start-up, round 2"). Taken:
/// `get KEY [-o FILE | --json]`, `etag KEY` and `set KEY [VALUE] --etag E`, with `--store DIR` and `--error-format F`
/// anywhere after the program's name (they are global), in the forms
/// `--flag VALUE` and `--flag=VALUE`. Anything else, and anything clap might
/// judge differently (another flag, a repeated one, a value that starts
/// with '-', an empty --store, a key that is not UTF-8, a --store that
/// `Location::parse` refuses), is None: clap then parses the whole line, so
/// help, errors and every other command are exactly clap's. The unit tests
/// hold the two to the same `Cli` on every line this takes.
fn parse_fast(args: &[OsString], env: impl Fn(&str) -> Option<OsString>) -> Option<Cli> {
    let mut store = None;
    let mut format = None;
    let mut etag = None;
    let mut output = None;
    let mut json = false;
    let mut command = None;
    let mut positionals: [Option<&OsString>; 2] = [None, None];
    let mut count = 0;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let text = arg.to_str();
        if !arg.as_encoded_bytes().starts_with(b"-") || arg == "-" {
            // A positional: the subcommand, then its key and value.
            if command.is_none() {
                command = Some(text.filter(|name| ["get", "etag", "set"].contains(name))?);
            } else {
                *positionals.get_mut(count)? = Some(arg);
                count += 1;
            }
            continue;
        }
        let (flag, inline) = match text?.split_once('=') {
            Some((flag, value)) => (flag, Some(OsString::from(value))),
            None => (text?, None),
        };
        let slot = match flag {
            "--store" => &mut store,
            "--error-format" => &mut format,
            "--etag" if command == Some("set") => &mut etag,
            "-o" | "--output" if command == Some("get") => &mut output,
            "--json" if command == Some("get") && inline.is_none() && !json => {
                json = true;
                continue;
            }
            _ => return None,
        };
        let value = match inline {
            Some(value) => value,
            None => args.next()?.clone(),
        };
        // clap reads "-x" as a flag, and has its own words for repeats.
        if slot.is_some() || value.as_encoded_bytes().starts_with(b"-") {
            return None;
        }
        *slot = Some(value);
    }

    // clap checks the environment's values even when a flag overrides
    // them (a global flag is applied to the subcommand after them).
    let parse_store = |dir: OsString| match dir.is_empty() {
        true => None,
        false => Location::parse(&dir).ok(),
    };
    let parse_format = |name: OsString| match name {
        _ if name.eq_ignore_ascii_case("text") => Some(ErrorFormat::Text),
        _ if name.eq_ignore_ascii_case("json") => Some(ErrorFormat::Json),
        _ => None,
    };
    let env_store = env("ETAGSTORE_DIR").map(parse_store);
    let env_format = env("ETAGSTORE_ERROR_FORMAT").map(parse_format);
    let store = match (store, env_store) {
        (_, Some(None)) => return None,
        (Some(dir), _) => parse_store(dir)?,
        (None, Some(Some(location))) => location,
        (None, None) => Location::parse(DEFAULT_STORE.as_ref()).ok()?,
    };
    let error_format = match (format, env_format) {
        (_, Some(None)) => return None,
        (Some(name), _) => parse_format(name)?,
        (None, Some(Some(format))) => format,
        (None, None) => ErrorFormat::Text,
    };
    // clap's PathBuf parser refuses an empty path: its usage error, exit 2.
    if output.as_ref().is_some_and(|path| path.is_empty()) {
        return None;
    }
    let key = positionals[0]?.to_str()?.to_string();
    let command = match (command?, positionals[1], etag) {
        // -o and --json conflict: clap's error.
        ("get", None, None) if !(json && output.is_some()) => Command::Get(GetArgs {
            key,
            output: output.map(PathBuf::from),
            json,
            default: None,
            no_lock: NoLockArg { lock_timeout: None },
        }),
        ("etag", None, None) => Command::Etag(KeyArg {
            key,
            no_lock: NoLockArg { lock_timeout: None },
        }),
        ("set", value, Some(etag)) => Command::Set(SetArgs {
            input: InputArgs {
                key,
                value: value.cloned(),
                file: None,
                lock: LockArg { lock_timeout: None },
            },
            etag: Some(etag.into_string().ok()?),
            or_same: false,
            condition: ConditionArgs {
                predicate: None,
                retries: DEFAULT_RETRIES,
            },
        }),
        _ => return None,
    };
    Some(Cli {
        store,
        lock_timeout_before: None,
        error_format,
        command,
    })
}

/// `--store` and `ETAGSTORE_DIR` through `Location::parse`. A malformed
/// store URL is clap's usage error in the parser's own words: clap's usual
/// "invalid value '…'" would repeat the value, and with it a SAS token
/// pasted into the URL.
#[derive(Debug, Clone, Copy)]
struct StoreParser;

impl clap::builder::TypedValueParser for StoreParser {
    type Value = Location;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Location, clap::Error> {
        Location::parse(value).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n"))
                .with_cmd(cmd)
        })
    }
}

/// The one rule of every seconds flag (docs/contract.md, "Seconds"): a
/// decimal number ≥ 0, as `timeout(1)` takes it (`0.5`, `1e3`); 0 does not
/// wait. A value too large for a `Duration`, and `inf`, become
/// `Duration::MAX`; from about 9.2e18 s on, no deadline can be added to the
/// clock, and every waiter reads a deadline it cannot compute as "never":
/// no limit. Negative numbers, NaN and words are usage errors.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds >= 0.0 => {
            Ok(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
        }
        Ok(seconds) if seconds < 0.0 => Err(format!("'{text}' must be ≥ 0 seconds")),
        _ => Err(format!("'{text}' is not a number of seconds ≥ 0 (or inf)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Command lines for `parse_fast`: the ones it must take, then ones it
    /// may take or leave to clap.
    const TAKEN: &[&[&str]] = &[
        &["get", "k"],
        &["get", "a/b c"],
        &["--store", "d", "get", "k"],
        &["--store=d", "get", "k"],
        &["get", "k", "--store", "d"],
        &["get", "--store", "d", "k"],
        &["--store", "s3://bucket/prefix", "get", "k"],
        &["--store", "az://container", "get", "k"],
        &["--error-format", "json", "get", "k"],
        &["--error-format=JSON", "get", "k", "--store", "d"],
        &["get", "k", "--error-format", "Text"],
        &["get", "get"],
        &["get", "set"],
        &["get", "help"],
        &["get", "-"],
        &["get", ""],
        &["get", "k", "-o", "f"],
        &["get", "-o", "f", "k"],
        &["get", "k", "--output", "dir/f.json"],
        &["get", "k", "--output=f"],
        &["get", "k", "-o=f"],
        &["get", "k", "--json"],
        &["--store", "d", "get", "--json", "k"],
        &["etag", "k"],
        &["--store=d", "etag", "k", "--error-format", "json"],
        &["set", "k", "{}", "--etag", ""],
        &["set", "k", "{}", "--etag", "*"],
        &[
            "set",
            "k",
            "[1, 2]",
            "--etag",
            "0123456789abcdef0123456789ABCDEF",
        ],
        &["set", "k", "--etag", "", "{}"],
        &["set", "--etag", "", "k", "{}"],
        &["set", "k", "--etag", ""],
        &["set", "k", "-", "--etag", ""],
        &["set", "k", "{}", "--etag=e"],
        &["set", "k", "{}", "--etag="],
        &["set", "k", "{}", "--etag", "not an etag"],
        &["--store", "d", "set", "k", "{\"n\": 1}", "--etag", ""],
        &["set", "k", "{}", "--store", "d", "--etag", "x"],
    ];
    const OTHERS: &[&[&str]] = &[
        &[],
        &["get"],
        &["get", "k", "extra"],
        &["get", "-k"],
        &["get", "--", "k"],
        &["get", "k", "--"],
        &["get", "k", "-o-"],
        &["get", "k", "-o", "-"],
        &["get", "k", "-of"],
        &["get", "k", "-o"],
        &["get", "k", "-o", "f", "--json"],
        &["get", "k", "--json", "--json"],
        &["get", "k", "--json=true"],
        &["get", "k", "-o", "f", "-o", "g"],
        // clap refuses an empty path (exit 2), before the store is read.
        &["get", "k", "-o", ""],
        &["get", "k", "--output", ""],
        &["get", "k", "-o="],
        &["get", "k", "--output="],
        &["get", "k", "--default", "{}"],
        &["etag", "k", "--json"],
        &["etag", "k", "-o", "f"],
        &["etag"],
        &["etag", "k", "l"],
        &["set", "k", "{}", "--etag", "", "--json"],
        &["set", "k", "{}", "--etag", "", "-o", "f"],
        &["get", "k", "--lock-timeout", "1"],
        &["--lock-timeout", "1", "get", "k"],
        &["get", "k", "--etag", "e"],
        &["get", "k", "--help"],
        &["get", "k", "-h"],
        &["--version", "get", "k"],
        &["-V"],
        &["help", "get"],
        &["GET", "k"],
        &["ge", "k"],
        &["--store", "", "get", "k"],
        &["--store=", "get", "k"],
        &["--store", "-d", "get", "k"],
        &["--store=-d", "get", "k"],
        &["--store", "s3://", "get", "k"],
        &["--store", "https://example.com/", "get", "k"],
        &["--store", "a", "--store", "b", "get", "k"],
        &["--store", "a", "get", "k", "--store", "b"],
        &["--store"],
        &["get", "k", "--store"],
        &["--error-format", "yaml", "get", "k"],
        &["--error-format", "", "get", "k"],
        &["--error-format=", "get", "k"],
        &["--etag", "", "set", "k", "{}"],
        &["set", "k", "{}"],
        &["set", "k"],
        &["set"],
        &["set", "k", "{}", "x", "--etag", ""],
        &["set", "k", "{}", "--etag"],
        &["set", "k", "{}", "--etag", "-1"],
        &["set", "k", "{}", "--etag=-1"],
        &["set", "k", "-1", "--etag", ""],
        &["set", "k", "{}", "--etag", "", "--etag", ""],
        &["set", "k", "{}", "--etag", "", "--or-same"],
        &["set", "k", "-f", "file", "--etag", ""],
        &["set", "k", "{}", "--etag", "", "--if", "true"],
        &["set", "k", "{}", "--if", "true"],
        &["set", "k", "{}", "--etag", "", "--lock-timeout", "1"],
        &["set-unsafe", "k", "{}"],
        &["delete", "k", "--etag", ""],
    ];

    fn with_program(args: &[&str]) -> Vec<OsString> {
        std::iter::once("etagstore")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn fast(args: &[OsString]) -> Option<Cli> {
        parse_fast(&args[1..], |name| std::env::var_os(name))
    }

    /// `parse_fast` gives what clap gives, or nothing. Also run with
    /// ETAGSTORE_DIR and ETAGSTORE_ERROR_FORMAT set, by the next test.
    #[test]
    fn the_fast_parser_agrees_with_clap_on_every_line_it_takes() {
        for args in TAKEN.iter().chain(OTHERS) {
            let args = with_program(args);
            let Some(fast) = fast(&args) else { continue };
            match Cli::try_parse_from(&args) {
                Ok(clap) => assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{args:?}"),
                Err(e) => panic!("{args:?}: the fast parser took a line clap refuses: {e}"),
            }
        }
        // Every line it must take is taken, unless the environment holds a
        // store or format clap refuses (then clap refuses every line).
        let env_dir = std::env::var_os("ETAGSTORE_DIR");
        let env_format = std::env::var_os("ETAGSTORE_ERROR_FORMAT");
        let env_usable = env_format.as_ref().is_none_or(|name| {
            name.eq_ignore_ascii_case("json") || name.eq_ignore_ascii_case("text")
        }) && env_dir
            .as_ref()
            .is_none_or(|dir| !dir.is_empty() && Location::parse(dir).is_ok());
        for args in TAKEN {
            let args = with_program(args);
            // A URL of a backend this build leaves out is clap's error.
            let stores_usable = args
                .windows(2)
                .all(|pair| pair[0] != "--store" || Location::parse(&pair[1]).is_ok());
            assert_eq!(
                fast(&args).is_some(),
                env_usable && stores_usable,
                "{args:?}"
            );
        }
    }

    #[test]
    fn the_fast_parser_leaves_everything_else_to_clap() {
        for args in OTHERS {
            let args = with_program(args);
            assert!(
                fast(&args).is_none(),
                "{args:?} was taken by the fast parser"
            );
        }
        // Not UTF-8: clap refuses a key, takes a value and a store.
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(vec![b'k', 0xff]);
        let mut key = with_program(&["get"]);
        key.push(bad());
        assert!(fast(&key).is_none());
        assert!(Cli::try_parse_from(&key).is_err());
        for mut args in [
            with_program(&["set", "k", "--etag", ""]),
            with_program(&["get", "k", "--store"]),
        ] {
            args.push(bad());
            let fast = fast(&args).expect("taken");
            let clap = Cli::try_parse_from(&args).expect("clap takes it");
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"));
        }
    }

    /// The environment's store and error format, read by each parser
    /// itself: in a child process (changing this one's environment would
    /// race the other tests' threads).
    #[test]
    fn the_fast_parser_reads_the_environment_as_clap_does() {
        const ME: &str = "cli::tests::the_fast_parser_agrees_with_clap_on_every_line_it_takes";
        for (dir, format) in [
            (Some("from-env"), None),
            (Some("s3://bucket/p"), Some("JSON")),
            (Some(""), Some("text")),
            (None, Some("json")),
            (None, Some("yaml")),
            (None, Some("")),
            (Some("s3://"), None),
        ] {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap());
            child.args(["--exact", ME, "--test-threads=1"]);
            for (name, value) in [("ETAGSTORE_DIR", dir), ("ETAGSTORE_ERROR_FORMAT", format)] {
                match value {
                    Some(value) => child.env(name, value),
                    None => child.env_remove(name),
                };
            }
            let out = child.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{dir:?} {format:?}: {stdout}");
            assert!(stdout.contains("1 passed"), "{dir:?} {format:?}: {stdout}");
        }
    }
}
