//! Normalised images: after `docker build`, rewrite the image so that its config digest depends
//! only on the commit's content and the recipe.
//!
//! The steps are those measured in `image-digests.md` §3.4: save the image; set every time in the
//! layers the build made to the source date (the commit time), leaving the base image's layers
//! byte-identical; set `created` and `history[].created` to the source date; drop the legacy
//! builder's per-build fields; recompute the diff_ids and the config digest; load the result.
//! Times are set, not clamped: a layer the builder takes from its cache carries the times of an
//! earlier checkout, which can be older than a later commit, and a clamp would keep them.
//! Invariant: the digest we return is the sha256 of the config bytes we wrote, and every diff_id in
//! it is the sha256 of the layer bytes we wrote: nothing relies on `docker load` to check them (it
//! skips layers whose chain already exists).

use std::fmt;
use std::io::{self, Write};

use camino::Utf8Path;

use crate::archive::{ArchiveError, ArchiveWriter, SavedImage, layer_instructions};
use crate::docker::{self, DockerError, ImageDigest};
use crate::hash::{copy_sha256, sha256_hex};
use crate::layer;
use crate::log;
use crate::process::Program;
use crate::time::Timestamp;
use crate::witness::Layer;

/// The name and version of this normaliser, recorded as `rtm:normalizer`. Change the version
/// whenever the output for the same input changes, so that old witnesses stay reproducible by
/// the release that made them.
pub const NORMALIZER: &str = "rtm-compute-normalize/1";

/// Config fields the legacy builder fills with per-build values (container ids, daemon version).
const PER_BUILD_FIELDS: &[&str] = &["container", "container_config", "docker_version"];

#[derive(Debug)]
pub enum NormalizeError {
    Docker(DockerError),
    Archive(ArchiveError),
    Io { what: String, source: io::Error },
    Mismatch { what: String },
    Interrupted,
}

impl fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NormalizeError::Docker(e) => e.fmt(f),
            NormalizeError::Archive(e) => e.fmt(f),
            NormalizeError::Io { what, source } => write!(f, "failed to {what}: {source}"),
            NormalizeError::Mismatch { what } => write!(f, "image normalisation failed: {what}"),
            NormalizeError::Interrupted => f.write_str("interrupted while normalising the image"),
        }
    }
}

impl std::error::Error for NormalizeError {}

impl From<DockerError> for NormalizeError {
    fn from(e: DockerError) -> NormalizeError {
        NormalizeError::Docker(e)
    }
}

impl From<ArchiveError> for NormalizeError {
    fn from(e: ArchiveError) -> NormalizeError {
        NormalizeError::Archive(e)
    }
}

/// What normalisation produced.
#[derive(Clone, Debug)]
pub struct Normalized {
    /// The config digest of the normalised image (now in the daemon).
    pub digest: ImageDigest,
    pub layers: Vec<Layer>,
    /// Layer bytes read and written, for throughput figures.
    pub layer_bytes: u64,
}

/// What to normalise and how.
pub struct Request<'a> {
    /// The built image (its id).
    pub image: &'a ImageDigest,
    /// Seconds since the epoch: the commit time.
    pub source_date_epoch: i64,
    /// How many leading layers belong to the base image and stay byte-identical.
    pub base_layers: usize,
    /// The tag to load the result under, if any.
    pub tag: Option<&'a str>,
}

/// Normalises a built image and loads the result into the daemon.
pub fn normalize(program: &Program, req: &Request) -> Result<Normalized, NormalizeError> {
    let tmp = tempfile::Builder::new()
        .prefix("rtm-normalize-")
        .tempdir()
        .map_err(|source| NormalizeError::Io { what: "create a temporary directory".into(), source })?;
    let dir = Utf8Path::from_path(tmp.path())
        .ok_or_else(|| NormalizeError::Mismatch { what: "temporary directory is not UTF-8".into() })?;
    let raw = dir.join("saved.tar");
    log::info(&format!(
        "normalising {} (source date {})",
        req.image.short(),
        Timestamp::from_secs(req.source_date_epoch).to_xsd()
    ));
    docker::save(program, req.image.as_str(), &raw)?;
    let saved = SavedImage::open(&raw)?;
    let plan = plan(&saved, req)?;
    // An image with this config digest is already there (a rebuild that reproduced, or the same
    // commit built again): its layers are verified by its id, so loading again would only cost time.
    if docker::inspect_image(program, plan.result.digest.as_str())?.is_some() {
        if let Some(tag) = req.tag {
            docker::tag(program, plan.result.digest.as_str(), tag)?;
        }
        return Ok(plan.result);
    }
    // The archive goes straight into `docker load`: the daemon ingests it while we write it.
    docker::load_from(program, |out| write(&saved, req, &plan, out))?;
    let digest = &plan.result.digest;
    match docker::inspect_image(program, digest.as_str())? {
        Some(info) if info.id == *digest => Ok(plan.result),
        Some(info) => {
            Err(NormalizeError::Mismatch { what: format!("docker loaded {} where {digest} was written", info.id) })
        }
        None => Err(NormalizeError::Mismatch { what: format!("docker did not load {digest}") }),
    }
}

/// Writes the normalised legacy archive of `saved` to `out` (plan, then write).
#[cfg(test)]
pub fn rewrite(saved: &SavedImage, req: &Request, out: &mut dyn Write) -> Result<Normalized, NormalizeError> {
    let plan = plan(saved, req)?;
    write(saved, req, &plan, out)
        .map_err(|source| NormalizeError::Io { what: "write the normalised archive".into(), source })?;
    Ok(plan.result)
}

/// What the normalised image will be, worked out before a byte of it is written: every layer's
/// size and diff_id (a pass over the layers into a counting sink), and the config.
pub struct Plan {
    pub result: Normalized,
    sizes: Vec<u64>,
    config_bytes: Vec<u8>,
}

/// How a layer is carried into the normalised image.
fn policy(req: &Request, i: usize) -> Option<layer::Policy> {
    // The base image's layers are copied byte for byte.
    (i >= req.base_layers).then_some(layer::Policy { epoch: req.source_date_epoch, mode: layer::Mode::Set })
}

/// Streams layer `i` of `saved` into `out` as the normalised image carries it; returns
/// `("sha256:<hex>", bytes)` of what was written.
fn carry_layer(saved: &SavedImage, req: &Request, i: usize, out: &mut dyn Write) -> io::Result<(String, u64)> {
    let input = saved.layer_tar(i)?;
    match policy(req, i) {
        None => copy_sha256(input, out).map(|(hex, size)| (format!("sha256:{hex}"), size)),
        Some(p) => layer::rewrite_times(input, out, p).map(|c| (c.diff_id, c.size)),
    }
}

/// Works out the normalised image (see [`Plan`]), checking the base layers against the config.
pub fn plan(saved: &SavedImage, req: &Request) -> Result<Plan, NormalizeError> {
    let original = saved.diff_ids();
    if original.len() != saved.layer_count() {
        return Err(NormalizeError::Mismatch {
            what: format!("the config lists {} diff_ids for {} layers", original.len(), saved.layer_count()),
        });
    }
    if req.base_layers > original.len() {
        return Err(NormalizeError::Mismatch {
            what: format!("the base image has {} layers but the image only {}", req.base_layers, original.len()),
        });
    }
    let mut diff_ids = Vec::with_capacity(original.len());
    let mut sizes = Vec::with_capacity(original.len());
    let mut layer_bytes = 0;
    for (i, expected) in original.iter().enumerate() {
        // No child process runs here for Ctrl-C to stop, so the loop asks.
        if crate::process::interrupted() {
            return Err(NormalizeError::Interrupted);
        }
        let (digest, size) = carry_layer(saved, req, i, &mut io::sink())
            .map_err(|source| NormalizeError::Io { what: format!("read layer {i}"), source })?;
        if policy(req, i).is_none() && &digest != expected {
            return Err(NormalizeError::Mismatch {
                what: format!("base layer {i} hashes to {digest}, not {expected}"),
            });
        }
        layer_bytes += size;
        log::progress(&format!("normalising: layer {}/{} planned, {} MB", i + 1, original.len(), layer_bytes >> 20));
        diff_ids.push(digest);
        sizes.push(size);
    }
    log::progress_done();
    let config = normalized_config(&saved.config, req.source_date_epoch, &diff_ids);
    let config_bytes = serde_json::to_vec(&config).expect("JSON values serialise");
    let digest = ImageDigest::from_hex(&sha256_hex(&config_bytes));
    let instructions = layer_instructions(&config);
    let layers = diff_ids
        .into_iter()
        .enumerate()
        .map(|(i, d)| Layer {
            diff_id: ImageDigest::parse(&d).expect("sha256 digest"),
            created_by: instructions.get(i).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(Plan { result: Normalized { digest, layers, layer_bytes }, sizes, config_bytes })
}

/// Writes the legacy archive of a plan front to back. Every layer is carried again and must come
/// out as planned: a difference (which would mean the input changed under us) is an error.
pub fn write(saved: &SavedImage, req: &Request, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ArchiveWriter::new(out, req.source_date_epoch);
    let mut paths = Vec::with_capacity(plan.sizes.len());
    for (i, (&size, planned)) in plan.sizes.iter().zip(&plan.result.layers).enumerate() {
        if crate::process::interrupted() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted while normalising the image"));
        }
        let name = format!("layer-{i}");
        w.add_dir(&name)?;
        let path = format!("{name}/layer.tar");
        let (digest, _) = w.add_sized(&path, size, |out| carry_layer(saved, req, i, out))?;
        if digest != planned.diff_id.as_str() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("layer {i} came out as {digest} the second time, not {}", planned.diff_id),
            ));
        }
        paths.push(path);
    }
    let config_name = format!("{}.json", plan.result.digest.hex());
    w.add_bytes(&config_name, &plan.config_bytes)?;
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": req.tag.map_or_else(Vec::new, |t| vec![t.to_owned()]),
        "Layers": paths,
    }]);
    w.add_bytes("manifest.json", &serde_json::to_vec(&manifest).expect("JSON values serialise"))?;
    w.finish()
}

/// The layers of an image that is not normalised: diff_ids from the daemon. Their instructions
/// are left empty, since `docker history` cannot be matched to layers reliably.
pub fn unnormalized_layers(program: &Program, image: &ImageDigest) -> Result<Vec<Layer>, NormalizeError> {
    let info = docker::inspect_image(program, image.as_str())?
        .ok_or_else(|| NormalizeError::Mismatch { what: format!("the built image {image} is not in the daemon") })?;
    Ok(info.layers.into_iter().map(|diff_id| Layer { diff_id, created_by: String::new() }).collect())
}

/// The config with build times set to the source date, the per-build fields dropped, and the
/// new diff_ids. Key order is kept, so the result reads like the original.
pub fn normalized_config(config: &serde_json::Value, sde: i64, diff_ids: &[String]) -> serde_json::Value {
    let created = serde_json::Value::String(Timestamp::from_secs(sde).to_xsd());
    let mut c = config.clone();
    if let Some(obj) = c.as_object_mut() {
        for field in PER_BUILD_FIELDS {
            obj.shift_remove(*field);
        }
        obj.insert("created".into(), created.clone());
        if let Some(inner) = obj.get_mut("config").and_then(|v| v.as_object_mut()) {
            for field in ["Image", "Hostname"] {
                if inner.contains_key(field) {
                    inner.insert(field.into(), serde_json::Value::String(String::new()));
                }
            }
        }
        if let Some(history) = obj.get_mut("history").and_then(|v| v.as_array_mut()) {
            for h in history.iter_mut().filter_map(|h| h.as_object_mut()) {
                h.insert("created".into(), created.clone());
                // buildah (podman) notes the id of the previous step's intermediate image, which
                // carries that step's build time.
                if h.get("comment").and_then(|c| c.as_str()).is_some_and(is_intermediate_image_note) {
                    h.shift_remove("comment");
                }
            }
        }
        if let Some(rootfs) = obj.get_mut("rootfs").and_then(|v| v.as_object_mut()) {
            rootfs.insert("diff_ids".into(), diff_ids.iter().cloned().map(serde_json::Value::String).collect());
        }
    }
    c
}

/// `FROM <hex image id>`, buildah's note of the intermediate image a step started from.
fn is_intermediate_image_note(comment: &str) -> bool {
    comment
        .strip_prefix("FROM ")
        .is_some_and(|id| (12..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Cmd, Program};

    /// A layer tar of one file, every header stamped `mtime`.
    fn layer_tar(dir: &Utf8Path, name: &str, mtime: i64) -> Vec<u8> {
        let path = dir.join(format!("{name}.tar"));
        let mut w = ArchiveWriter::create(&path, mtime).unwrap();
        w.add_dir("etc").unwrap();
        w.add_bytes(&format!("etc/{name}"), name.as_bytes()).unwrap();
        w.finish().unwrap();
        std::fs::read(&path).unwrap()
    }

    fn sha(bytes: &[u8]) -> String {
        format!("sha256:{}", sha256_hex(bytes))
    }

    /// Docker 25+ saves an OCI layout (`blobs/sha256/…`, `index.json`) and the containerd store
    /// keeps layers gzip- or zstd-compressed; the rewrite reads that shape and writes a legacy
    /// archive.
    #[test]
    fn rewrites_an_oci_layout_with_a_compressed_layer() {
        oci_layout_round_trip("gzip", "-cn", crate::archive::Compression::Gzip);
        oci_layout_round_trip("zstd", "-cq", crate::archive::Compression::Zstd);
    }

    fn oci_layout_round_trip(compressor: &str, flags: &str, compression: crate::archive::Compression) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Utf8Path::from_path(tmp.path()).unwrap();
        let sde = 1_735_787_045;
        let base = layer_tar(dir, "base", sde + 500);
        let built = layer_tar(dir, "built", sde + 1000);
        let gz = Cmd::new(&Program::resolve(compressor).unwrap())
            .arg(flags)
            .stdin_bytes(built.clone())
            .output()
            .unwrap()
            .stdout;
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2026-12-03T18:00:00Z", "docker_version": "25.0.0",
            "config": {"Env": ["PATH=/bin"], "Hostname": "abc", "Image": "sha256:abc"},
            "history": [{"created": "2026-12-03T17:00:00Z", "created_by": "base"}, {"created": "2026-12-03T18:00:00Z", "created_by": "RUN build"}],
            "rootfs": {"type": "layers", "diff_ids": [sha(&base), sha(&built)]},
        });
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let blob = |b: &[u8]| format!("blobs/sha256/{}", &sha(b)[7..]);
        let saved_path = dir.join("oci.tar");
        let mut w = ArchiveWriter::create(&saved_path, 0).unwrap();
        w.add_bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        w.add_bytes("index.json", br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        for b in [&config_bytes, &base, &gz] {
            w.add_bytes(&blob(b), b).unwrap();
        }
        let manifest = serde_json::json!([{ "Config": blob(&config_bytes), "RepoTags": ["x:1"], "Layers": [blob(&base), blob(&gz)] }]);
        w.add_bytes("manifest.json", &serde_json::to_vec(&manifest).unwrap()).unwrap();
        w.finish().unwrap();

        let saved = SavedImage::open(&saved_path).unwrap();
        assert_eq!(saved.layer_compression(1), compression);
        let image = ImageDigest::from_hex(&"0".repeat(64));
        let out = dir.join("normalized.tar");
        let request = Request { image: &image, source_date_epoch: sde, base_layers: 1, tag: Some("x:norm") };
        let n = rewrite(&saved, &request, &mut std::fs::File::create(&out).unwrap()).unwrap();

        let result = SavedImage::open(&out).unwrap();
        assert_eq!(n.digest.as_str(), sha(&result.config_bytes), "the digest is the config bytes we wrote");
        let read = |s: &SavedImage, i: usize| {
            let mut v = Vec::new();
            s.layer_tar(i).unwrap().read_to_end(&mut v).unwrap();
            v
        };
        assert_eq!(read(&result, 0), base, "the base layer is byte-identical");
        let rewritten = read(&result, 1);
        assert_eq!(result.diff_ids(), [sha(&base), sha(&rewritten)]);
        assert!(layer::entries(&rewritten[..]).unwrap().iter().all(|e| e.mtime == sde));
        assert_eq!(n.layers.iter().map(|l| l.created_by.as_str()).collect::<Vec<_>>(), ["base", "RUN build"]);
        assert_eq!(result.config["created"], "2025-01-02T03:04:05Z");
        assert!(result.config.get("docker_version").is_none());

        // The same input gives the same bytes: the normalisation is a function of its input.
        let again = rewrite(&saved, &request, &mut std::io::sink()).unwrap();
        assert_eq!(again.digest, n.digest);
    }

    #[test]
    fn config_normalisation_drops_per_build_fields_and_sets_times() {
        let raw = serde_json::json!({
            "architecture": "amd64",
            "config": {"Hostname": "2f1e7a", "Env": ["A=1"], "Image": "sha256:abc", "Cmd": ["cat"]},
            "container": "2f1e7a9b",
            "container_config": {"Hostname": "2f1e7a"},
            "created": "2026-12-03T18:00:00.123456789Z",
            "docker_version": "20.10.24+dfsg1",
            "history": [
                {"created": "2026-12-03T18:00:00Z", "created_by": "COPY dir:1 in /app/ "},
                {"created": "2026-12-03T18:00:01Z", "created_by": "/bin/sh -c #(nop)  CMD [\"cat\"]", "empty_layer": true}
            ],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:old"]}
        });
        let n = normalized_config(&raw, 1_735_787_045, &["sha256:new".into()]);
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"architecture":"amd64","config":{"Hostname":"","Env":["A=1"],"Image":"","Cmd":["cat"]},"created":"2025-01-02T03:04:05Z","history":[{"created":"2025-01-02T03:04:05Z","created_by":"COPY dir:1 in /app/ "},{"created":"2025-01-02T03:04:05Z","created_by":"/bin/sh -c #(nop)  CMD [\"cat\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:new"]}}"#
        );
        assert_eq!(layer_instructions(&n), ["COPY dir:1 in /app/ "]);
        let podman = serde_json::json!({"history": [
            {"created_by": "COPY", "comment": "FROM 3e797d7590eb"},
            {"created_by": "CMD", "comment": "kept: written by a person"}
        ]});
        let n = normalized_config(&podman, 0, &[]);
        assert_eq!(n["history"][0].get("comment"), None);
        assert_eq!(n["history"][1]["comment"], "kept: written by a person");
    }
}
