//! `set-unsafe KEY [VALUE]`: last writer wins, still atomic.

use std::io::Write;

use anyhow::Result;

use crate::cli::InputArgs;
use crate::commands::set;
use crate::store::{Precondition, Store};

pub fn run(args: &InputArgs, store: &dyn Store, out: &mut dyn Write) -> Result<()> {
    set::write(args, &Precondition::Any, false, store, out)
}
