//! `delete KEY --etag E`: the conditional delete.

use anyhow::Result;

use crate::cli::DeleteArgs;
use crate::key::Key;
use crate::store::{Precondition, Store};

pub fn run(args: &DeleteArgs, store: &dyn Store) -> Result<()> {
    let key = Key::new(&args.key)?;
    let precondition = Precondition::parse(&args.etag)?;
    store.delete(&key, &precondition)
}
