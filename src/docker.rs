//! The image remote: the local Docker daemon (or podman), driven through its CLI.
//!
//! Only this module spells out docker's arguments, and it returns parsed values ([`ImageDigest`],
//! [`ImageInfo`]), never raw stdout. It speaks the subset that docker 20.10+ and podman share.

use std::fmt;

use camino::Utf8Path;

use crate::process::{Cmd, CmdError, Program};

/// A `sha256:<64 hex>` digest (an image's config digest, a layer's diff_id, a manifest digest).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageDigest(String);

impl ImageDigest {
    /// Accepts `sha256:<hex>` and podman's bare 64-hex ids.
    pub fn parse(s: &str) -> Option<ImageDigest> {
        let s = s.trim();
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| ImageDigest(format!("sha256:{}", hex.to_ascii_lowercase())))
    }

    pub fn from_hex(hex: &str) -> ImageDigest {
        ImageDigest::parse(hex).expect("sha256 hex digest")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The first 12 hex digits, as `docker images` shows them.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
pub enum DockerError {
    DaemonDown { docker: String, detail: String },
    BuildFailed { source: CmdError },
    Unexpected { command: String, output: String },
    Io { what: String, source: std::io::Error },
    Cmd(CmdError),
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerError::DaemonDown { docker, detail } => {
                write!(f, "the {docker} daemon is not reachable (is it running? try `{docker} info`): {detail}")
            }
            DockerError::BuildFailed { source } => write!(f, "image build failed: {source}"),
            DockerError::Unexpected { command, output } => {
                write!(f, "unexpected output from `{command}`: {output:?}")
            }
            DockerError::Io { what, source } => write!(f, "{what}: {source}"),
            DockerError::Cmd(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DockerError {}

impl From<CmdError> for DockerError {
    fn from(e: CmdError) -> DockerError {
        DockerError::Cmd(e)
    }
}

fn docker(program: &Program) -> Cmd {
    Cmd::new(program).env("LC_ALL", "C")
}

/// Whether `tag` is a docker image reference `name[:tag]` with a lowercase name that cannot be
/// read as an option. Docker itself has the last word on the finer rules.
pub fn is_valid_tag(tag: &str) -> bool {
    let (name, tag_part) = match tag.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (tag, None),
    };
    let name_ok = !name.is_empty()
        && !name.starts_with(['-', '.', '/', ':'])
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c));
    let tag_ok = tag_part.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    });
    name_ok && tag_ok
}

/// Checks that the daemon answers, and returns its version.
pub fn server_version(program: &Program) -> Result<String, DockerError> {
    match docker(program).args(["version", "--format", "{{.Server.Version}}"]).output() {
        Ok(out) if !out.stdout_text().is_empty() => Ok(out.stdout_text()),
        Ok(out) => Err(DockerError::DaemonDown {
            docker: program.name.clone(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
        Err(CmdError::Failed { stderr, .. }) => {
            Err(DockerError::DaemonDown { docker: program.name.clone(), detail: stderr })
        }
        Err(e) => Err(e.into()),
    }
}

/// What a build needs: paths are relative to `dir` (the worktree root).
pub struct BuildRequest<'a> {
    pub dir: &'a Utf8Path,
    pub dockerfile: &'a Utf8Path,
    pub context: &'a Utf8Path,
    pub tag: Option<&'a str>,
    pub no_cache: bool,
}

/// Builds an image and returns the id the builder reports (`--iidfile`).
pub fn build(program: &Program, req: &BuildRequest) -> Result<ImageDigest, DockerError> {
    let tmp = tempfile::tempdir()
        .map_err(|source| DockerError::Io { what: "failed to create a temporary directory".into(), source })?;
    let iidfile = tmp.path().join("iid");
    let mut cmd =
        docker(program).dir(req.dir).args(["build", "--file", req.dockerfile.as_str(), "--iidfile"]).arg(&iidfile);
    if let Some(tag) = req.tag {
        cmd = cmd.args(["--tag", tag]);
    }
    if req.no_cache {
        cmd = cmd.arg("--no-cache");
    }
    cmd.arg("--").arg(req.context.as_str()).stream().map_err(|source| match source {
        CmdError::Failed { .. } => DockerError::BuildFailed { source },
        other => other.into(),
    })?;
    let text = std::fs::read_to_string(&iidfile)
        .map_err(|source| DockerError::Io { what: "failed to read the build's --iidfile".into(), source })?;
    ImageDigest::parse(&text).ok_or(DockerError::Unexpected { command: "docker build --iidfile".into(), output: text })
}

/// The facts `docker image inspect` gives about a local image.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    pub id: ImageDigest,
    pub layers: Vec<ImageDigest>,
}

/// Inspects a local image; `Ok(None)` when the daemon does not have it.
pub fn inspect_image(program: &Program, reference: &str) -> Result<Option<ImageInfo>, DockerError> {
    let cmd = docker(program).args(["image", "inspect", "--format", "{{json .}}", "--", reference]);
    let command = cmd.display();
    let (status, out) = cmd.output_status()?;
    if status != Some(0) {
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        if ["no such image", "not found", "not known", "unknown"].iter().any(|m| stderr.contains(m)) {
            return Ok(None);
        }
        return Err(CmdError::Failed { command, status: format!("exited with status {status:?}"), stderr }.into());
    }
    let text = out.stdout_text();
    let bad = || DockerError::Unexpected { command: command.clone(), output: text.chars().take(200).collect() };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad())?;
    // podman prints a list of one even for `{{json .}}`.
    let v = match v {
        serde_json::Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    };
    let id = v["Id"].as_str().and_then(ImageDigest::parse).ok_or_else(bad)?;
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
    };
    Ok(Some(ImageInfo {
        id,
        layers: strings(&v["RootFS"]["Layers"]).iter().filter_map(|s| ImageDigest::parse(s)).collect(),
    }))
}

/// Points `target` at the image `source`.
pub fn tag(program: &Program, source: &str, target: &str) -> Result<(), DockerError> {
    docker(program).args(["tag", source, target]).output()?;
    Ok(())
}

/// A docker client configuration directory holding registry credentials for this run only, so
/// that a login never lands in the user's own `~/.docker/config.json`.
pub struct LoginConfig {
    dir: tempfile::TempDir,
}

impl LoginConfig {
    fn path(&self) -> &Utf8Path {
        Utf8Path::from_path(self.dir.path()).expect("temporary paths are UTF-8")
    }
}

fn with_config(cmd: Cmd, login: Option<&LoginConfig>) -> Cmd {
    match login {
        Some(l) => cmd.env("DOCKER_CONFIG", l.path().as_str()),
        None => cmd,
    }
}

/// Logs in to `host` in a fresh configuration directory; the token goes on stdin, never argv.
pub fn login(program: &Program, host: &str, user: &str, token: &str) -> Result<LoginConfig, DockerError> {
    let dir = tempfile::Builder::new()
        .prefix("rtm-docker-config-")
        .tempdir()
        .map_err(|source| DockerError::Io { what: "failed to create a temporary directory".into(), source })?;
    let login = LoginConfig { dir };
    let cmd = docker(program).args(["login", "--username", user, "--password-stdin", "--", host]);
    with_config(cmd, Some(&login)).stdin_bytes(token.as_bytes().to_vec()).output()?;
    Ok(login)
}

/// Pushes `reference` (`host/repository:tag`) to its registry.
pub fn push(program: &Program, reference: &str, login: Option<&LoginConfig>) -> Result<(), DockerError> {
    with_config(docker(program).args(["push", "--", reference]), login).stream()?;
    Ok(())
}

/// Pulls `reference` (by digest: `host/repository@sha256:…`).
pub fn pull(program: &Program, reference: &str, login: Option<&LoginConfig>) -> Result<(), DockerError> {
    with_config(docker(program).args(["pull", "--", reference]), login).stream()?;
    Ok(())
}

/// The config digest of a local image: its id on the classic image store; on the containerd
/// store (where the id is a manifest or index digest) it is read from `docker save`.
pub fn config_digest(program: &Program, reference: &str) -> Result<ImageDigest, DockerError> {
    let info = inspect_image(program, reference)?.ok_or_else(|| DockerError::Unexpected {
        command: format!("{} image inspect {reference}", program.name),
        output: "no such image".into(),
    })?;
    let tmp = tempfile::tempdir()
        .map_err(|source| DockerError::Io { what: "failed to create a temporary directory".into(), source })?;
    let path = Utf8Path::from_path(tmp.path()).expect("temporary paths are UTF-8").join("image.tar");
    save(program, reference, &path)?;
    let saved = crate::archive::SavedImage::open(&path).map_err(|e| DockerError::Unexpected {
        command: format!("{} save {reference}", program.name),
        output: e.to_string(),
    })?;
    let digest = ImageDigest::from_hex(&crate::hash::sha256_hex(&saved.config_bytes));
    if digest != info.id {
        crate::log::info(&format!(
            "{reference}: image id {} is not its config digest {digest} (containerd image store)",
            info.id
        ));
    }
    Ok(digest)
}

/// Runs a container of `image` attached (its output is ours), writing its id to `cidfile`;
/// returns docker's exit code (the container's, or 125–127 when it could not start).
pub fn run_container(
    program: &Program,
    image: &ImageDigest,
    cidfile: &Utf8Path,
    args: &[String],
) -> Result<Option<i32>, DockerError> {
    let cmd = docker(program).args(["run", "--cidfile", cidfile.as_str(), "--", image.as_str()]).args(args);
    Ok(cmd.status_inherit()?)
}

/// What became of a container.
#[derive(Clone, Debug)]
pub struct ContainerState {
    /// False when the container was created but its process never started.
    pub started: bool,
    pub exit_code: i64,
}

/// The state of a container (`docker container inspect`).
pub fn container_state(program: &Program, id: &str) -> Result<ContainerState, DockerError> {
    let cmd = docker(program).args(["container", "inspect", "--format", "{{json .State}}", "--", id]);
    let command = cmd.display();
    let text = cmd.output()?.stdout_text();
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| DockerError::Unexpected { command, output: text.clone() })?;
    let started_at = v["StartedAt"].as_str().unwrap_or_default();
    Ok(ContainerState {
        started: !started_at.is_empty() && !started_at.starts_with("0001-01-01"),
        exit_code: v["ExitCode"].as_i64().unwrap_or(-1),
    })
}

/// Removes a container (best effort: one that is already gone is fine).
pub fn remove_container(program: &Program, id: &str) {
    let _ = docker(program).args(["container", "rm", "--force", "--", id]).uninterruptible().output();
}

/// The name of the host the daemon runs on (docker `info .Name`, podman `info .Host.Hostname`),
/// else this machine's host name.
pub fn host_name(program: &Program) -> String {
    for format in ["{{.Name}}", "{{.Host.Hostname}}"] {
        if let Ok(out) = docker(program).args(["info", "--format", format]).output() {
            let name = out.stdout_text();
            if !name.is_empty() && !name.contains("<no value>") {
                return name;
            }
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Writes the image `reference` to `path` (`docker save`).
pub fn save(program: &Program, reference: &str, path: &Utf8Path) -> Result<(), DockerError> {
    docker(program).args(["save", "--output", path.as_str(), reference]).output()?;
    Ok(())
}

/// Loads the image archive that `write` produces, through `docker load`'s stdin.
pub fn load_from(
    program: &Program,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), DockerError> {
    docker(program).args(["load", "--quiet"]).feed(write)?;
    Ok(())
}

/// The image a Dockerfile's final stage starts from: `None` for `scratch`, or when the name
/// depends on a build argument.
pub fn final_base_image(dockerfile: &str) -> Option<String> {
    let mut stages: Vec<(Option<String>, String)> = Vec::new();
    for line in logical_lines(dockerfile) {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
        let Some(image) = rest.first() else { continue };
        let alias = match rest.as_slice() {
            [_, kw, name, ..] if kw.eq_ignore_ascii_case("AS") => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        stages.push((alias, (*image).to_owned()));
    }
    let mut image = stages.last()?.1.clone();
    // Follow `FROM <earlier stage>` back to an image.
    for _ in 0..stages.len() {
        match stages.iter().find(|(alias, _)| alias.as_deref() == Some(&image.to_ascii_lowercase())) {
            Some((_, parent)) => image = parent.clone(),
            None => break,
        }
    }
    (!image.eq_ignore_ascii_case("scratch") && !image.contains('$')).then_some(image)
}

/// Dockerfile lines with comments dropped and `\` continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let t = raw.trim();
        if t.starts_with('#') && current.is_empty() {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(t);
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The local image a Dockerfile's final stage starts from: `None` for `scratch`, or when the
/// image is not local or its name depends on a build argument.
pub fn base_image(program: &Program, dockerfile: &Utf8Path) -> Result<Option<ImageInfo>, DockerError> {
    let text = std::fs::read_to_string(dockerfile)
        .map_err(|source| DockerError::Io { what: format!("failed to read {dockerfile}"), source })?;
    match final_base_image(&text) {
        Some(image) => inspect_image(program, &image),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        assert_eq!(ImageDigest::parse(&hex).unwrap().as_str(), format!("sha256:{hex}"));
        assert_eq!(ImageDigest::parse(&format!("sha256:{}\n", "A".repeat(64))).unwrap().hex(), hex);
        assert!(ImageDigest::parse("sha256:abc").is_none());
        assert!(ImageDigest::parse(&format!("sha512:{hex}")).is_none());
    }

    #[test]
    fn tags() {
        for ok in ["a", "adcs-compute:v1.2", "localhost:5000/org/img:TAG_1", "localhost:5000/img", "rtm/x:0123456789ab"]
        {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", "-q", "Upper:x", "a b", "a:", "a:-x", "--tag=x"] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn base_image_of_the_final_stage() {
        let check = |text: &str, expect: Option<&str>| assert_eq!(final_base_image(text).as_deref(), expect, "{text}");
        check("FROM scratch\nCOPY a /a\n", None);
        check("# syntax\nFROM --platform=linux/amd64 busybox:1 AS base\nRUN x\n", Some("busybox:1"));
        check("FROM alpine AS build\nRUN x\nFROM scratch\nCOPY --from=build /a /a\n", None);
        check("FROM alpine AS Build\nFROM build\n", Some("alpine"));
        check("from \\\n  debian:12\n", Some("debian:12"));
        check("ARG BASE\nFROM $BASE\n", None);
    }
}
