//! `rtm-compute diff A B`: why two local images differ (config fields, first differing layer and
//! its instruction, files), the same report `reproduce` gives on a mismatch.

use crate::cli::DiffArgs;
use crate::diff;
use crate::docker;
use crate::error::{EXIT_MISMATCH, EXIT_OK, Error};

pub fn run(args: DiffArgs) -> Result<u8, Error> {
    let program = super::docker_program(&args.docker.docker_cmd)?;
    docker::server_version(&program)?;
    for image in [&args.image_a, &args.image_b] {
        if docker::inspect_image(&program, image)?.is_none() {
            return Err(Error::Invalid { what: format!("image {image:?} is not in the local daemon") });
        }
    }
    let report = diff::compare_images(&program, &args.image_a, &args.image_b)?;
    if args.json {
        super::print_json(&report.to_json())?;
    } else {
        super::print(&report.to_text())?;
    }
    Ok(if report.is_empty() { EXIT_OK } else { EXIT_MISMATCH })
}
