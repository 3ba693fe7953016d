//! `rtm-compute normalize IMAGE`: normalise an image that is already in the daemon, as
//! `materialize` does after its build, and print the resulting digest.

use serde_json::json;

use crate::cli::NormalizeArgs;
use crate::docker;
use crate::error::{EXIT_OK, Error};
use crate::normalize::{self, NORMALIZER, Request};

pub fn run(args: NormalizeArgs) -> Result<u8, Error> {
    if let Some(tag) = &args.tag {
        super::validate_tag(tag)?;
    }
    let program = super::docker_program(&args.docker.docker_cmd)?;
    docker::server_version(&program)?;
    let image = docker::inspect_image(&program, &args.image)?
        .ok_or_else(|| Error::Invalid { what: format!("image {:?} is not in the local daemon", args.image) })?;
    let base_layers = match &args.base {
        Some(base) => docker::inspect_image(&program, base)?
            .ok_or_else(|| Error::Invalid { what: format!("base image {base:?} is not in the local daemon") })?
            .layers
            .len(),
        None => 0,
    };
    let started = std::time::Instant::now();
    let request =
        Request { image: &image.id, source_date_epoch: args.source_date_epoch, base_layers, tag: args.tag.as_deref() };
    let n = normalize::normalize(&program, &request)?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        super::print_json(&json!({
            "image": image.id.as_str(),
            "digest": n.digest.as_str(),
            "normalizer": NORMALIZER,
            "sourceDateEpoch": args.source_date_epoch,
            "layerBytes": n.layer_bytes,
            "seconds": seconds,
            "layers": n.layers.iter().map(|l| json!({ "diffId": l.diff_id.as_str(), "createdBy": l.created_by })).collect::<Vec<_>>(),
        }))?;
    } else {
        super::print(&format!("{}\n", n.digest))?;
    }
    Ok(EXIT_OK)
}
