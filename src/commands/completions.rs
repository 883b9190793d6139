//! `completions SHELL` and `man`: generated from the clap definition at run
//! time, so they always match the flags; no build step.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::error::Error;

pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "etagstore", &mut out);
    out.flush()?;
    Ok(())
}

/// One page for the tool and one a subcommand (`etagstore-set(1)`, …), each
/// with its options, the exit codes and its examples.
pub fn man(args: &ManArgs) -> Result<()> {
    let mut tool = Cli::command().disable_help_subcommand(true);
    // Building names the subcommands `etagstore-set`, as their pages are called.
    tool.build();
    if let Some(dir) = &args.dir {
        write_page(&tool, &tool, dir)?;
        for sub in tool.get_subcommands() {
            write_page(&tool, sub, dir)?;
        }
        return Ok(());
    }
    let page = match &args.subcommand {
        None => &tool,
        Some(name) => tool.find_subcommand(name).ok_or_else(|| {
            Error::Usage(format!(
                "no subcommand {name:?}; the pages are: etagstore {}",
                tool.get_subcommands()
                    .map(|sub| sub.get_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?,
    };
    let mut out = io::stdout().lock();
    render(&tool, page, &mut out)?;
    out.flush()?;
    Ok(())
}

fn write_page(tool: &clap::Command, page: &clap::Command, dir: &Path) -> Result<()> {
    let name = page.get_display_name().unwrap_or(page.get_name());
    let path = dir.join(format!("{name}.1"));
    let mut bytes = Vec::new();
    render(tool, page, &mut bytes)?;
    fs::write(&path, bytes).with_context(|| format!("cannot write '{}'", path.display()))
}

/// clap_mangen's sections, then the examples and exit codes as roff
/// preformatted blocks: clap_mangen would reflow them into one paragraph.
fn render(tool: &clap::Command, page: &clap::Command, out: &mut dyn Write) -> Result<()> {
    let man = clap_mangen::Man::new(page.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if page.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if page.has_subcommands() {
        man.render_subcommands_section(out)?;
    }
    if !std::ptr::eq(tool, page) {
        if let Some(text) = page.get_after_help() {
            preformatted(out, "EXAMPLES", &text.to_string())?;
        }
    }
    if let Some(text) = tool.get_after_help() {
        preformatted(out, "EXIT STATUS AND EXAMPLES", &text.to_string())?;
    }
    if page.get_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// A section whose lines are kept as written.
fn preformatted(out: &mut dyn Write, heading: &str, text: &str) -> io::Result<()> {
    writeln!(out, ".SH \"{heading}\"\n.nf")?;
    for line in text.lines() {
        let line = line.replace('\\', "\\e");
        // A line starting with '.' or '\'' would be read as a request.
        let guard = if line.starts_with(['.', '\'']) {
            "\\&"
        } else {
            ""
        };
        writeln!(out, "{guard}{line}")?;
    }
    writeln!(out, ".fi")
}
