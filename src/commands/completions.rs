//! `completions SHELL` and `man`: generated from the clap definition at run
//! time, so they always match the flags; no build step.

use std::io::{self, Write};

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "etagstore", &mut out);
    out.flush()?;
    Ok(())
}

pub fn man() -> Result<()> {
    let mut out = io::stdout().lock();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    out.flush()?;
    Ok(())
}
