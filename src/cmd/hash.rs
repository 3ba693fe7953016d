//! `rtm-compute hash`: the witness's input hashes of a tree, without building, so an operator can
//! see whether the inputs of a witness have drifted.

use serde_json::json;

use crate::cli::HashArgs;
use crate::error::{EXIT_OK, Error};
use crate::hash::{context_hash, file_hash};

pub fn run(args: HashArgs) -> Result<u8, Error> {
    let dockerfile = file_hash(&args.dockerfile)?;
    let context = context_hash(&args.context)?;
    if args.json {
        super::print_json(&json!({
            "dockerfile": args.dockerfile.as_str(),
            "context": args.context.as_str(),
            "dockerfileHash": dockerfile,
            "buildContextHash": context,
        }))?;
    } else {
        super::print(&format!(
            "dockerfileHash    {dockerfile}  {}\nbuildContextHash  {context}  {}\n",
            args.dockerfile, args.context
        ))?;
    }
    Ok(EXIT_OK)
}
