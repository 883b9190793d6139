//! `delete KEY --etag E`: the conditional delete.

use anyhow::Result;

use crate::cli::DeleteArgs;
use crate::commands::repeat;
use crate::key::Key;
use crate::store::{Precondition, Store};

pub fn run(args: &DeleteArgs, store: &dyn Store) -> Result<()> {
    let key = Key::new(&args.key)?;
    let precondition = Precondition::parse(&args.etag)?;
    repeat::delete(store, &key, &precondition, args.or_missing)
}
