//! One module per subcommand; `run` picks the store and dispatches.

mod cas;
mod completions;
mod delete;
mod edit;
mod etag;
mod export;
mod get;
mod import;
mod list;
mod patch;
mod repeat;
mod set;
mod set_unsafe;
mod watch;

use std::io::{self, Write};

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error;
use crate::store;

/// Runs the parsed command line, writing its data to standard output.
pub fn run(cli: Cli) -> Result<()> {
    // These two describe the program, not a store: no store is opened.
    match &cli.command {
        Command::Completions(args) => return completions::completions(args.shell),
        Command::Man(args) => return completions::man(args),
        _ => {}
    }
    crate::faults::validate()?;
    // A file-size limit (ulimit -f) must fail a write with EFBIG, which
    // is reported and cleaned up, not kill the process mid-write.
    // SAFETY: setting a signal's disposition to SIG_IGN has no memory effects.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    error::remember_store(cli.store.as_path(), cli.store.is_default());
    let store = store::open(&cli.store, cli.lock_timeout())?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match &cli.command {
        Command::Get(args) => get::run(args, store.as_ref(), &mut out)?,
        Command::Etag(args) => etag::run(args, store.as_ref(), &mut out)?,
        Command::Set(args) => set::run(args, store.as_ref(), &mut out)?,
        Command::SetUnsafe(args) => set_unsafe::run(args, store.as_ref(), &mut out)?,
        Command::Edit(args) => edit::run(args, store.as_ref(), &mut out)?,
        Command::Patch(args) => patch::run(args, store.as_ref(), &mut out)?,
        Command::Delete(args) => delete::run(args, store.as_ref())?,
        Command::List(args) => list::run(args, store.as_ref(), &mut out)?,
        Command::Watch(args) => watch::run(args, store.as_ref(), &mut out)?,
        Command::Export(args) => export::run(args, store.as_ref(), &mut out)?,
        Command::Import(args) => import::run(args, store.as_ref())?,
        Command::Completions(_) | Command::Man(_) => unreachable!("handled above"),
    }
    out.flush()?;
    Ok(())
}
