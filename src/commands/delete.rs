//! `delete KEY --etag E`: the conditional delete; with `--if FILTER`, also
//! (or instead) conditional on the document's content.

use anyhow::Result;

use super::cas::{Condition, Step};
use super::set::conditionally;
use crate::cli::DeleteArgs;
use crate::commands::repeat;
use crate::key::Key;
use crate::store::{Precondition, Store};

pub fn run(args: &DeleteArgs, store: &dyn Store) -> Result<()> {
    let key = Key::new(&args.key)?;
    let precondition = args.etag.as_deref().map(Precondition::parse).transpose()?;
    let Some(predicate) = &args.condition.predicate else {
        let precondition = precondition.expect("clap requires --etag without --if");
        return repeat::delete(store, &key, &precondition, args.or_missing);
    };
    let condition = Condition::new(predicate)?;
    // A missing key the predicate is true of: nothing to delete, as with
    // `--etag ''`.
    let how = ("delete", &args.condition);
    conditionally(
        store,
        &key,
        precondition.as_ref(),
        &condition,
        how,
        |current| {
            if current.exists {
                Step::Delete
            } else {
                Step::Done(String::new())
            }
        },
    )
    .map(drop)
    .or_else(|error| match args.or_missing {
        true => repeat::gone(error),
        false => Err(error),
    })
}
