//! The real Docker daemon the tests need, and a busybox base image made locally (nothing is
//! pulled).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The local base image with a shell: `/bin/busybox` and its applet links, `docker import`ed once.
pub const BUSYBOX: &str = "rtm-test/busybox:base";

/// Fails the test, with instructions, when no daemon answers. Tests that need Docker never skip.
#[track_caller]
pub fn require_docker() {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let state = UP.get_or_init(|| {
        let out = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Err(e.to_string()),
        }
    });
    if let Err(e) = state {
        panic!(
            "these tests need a running Docker daemon and none answered ({e}).\n\
             Start one with scripts/test.sh (it installs docker.io and starts dockerd), \
             or run `dockerd &` as root."
        );
    }
}

/// Whether a daemon answers (for checks that only hold with one).
pub fn docker_is_up() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The id of a local image, if the daemon has it.
pub fn image_id(reference: &str) -> Option<String> {
    let out = Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", reference]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Tests run in parallel, and the legacy builder fails ("unable to find image") when an image it
/// is probing as a cache candidate is removed under it. So every run of the tool holds this lock
/// shared, and every removal holds it exclusively.
pub static DAEMON: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Removes images by reference or id (best effort: already gone is fine), with all their tags.
/// Untagged parents are kept: another test's cached build may share them.
pub fn remove_images(refs: &[&str]) {
    if !refs.is_empty() {
        let _guard = DAEMON.write().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("docker").args(["image", "rm", "--force", "--no-prune"]).args(refs).output();
    }
}

/// Makes sure [`BUSYBOX`] exists, importing it from the host's static busybox if needed.
pub fn busybox_base() -> String {
    require_docker();
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        if let Some(id) = image_id(BUSYBOX) {
            return id;
        }
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox-static is not installed: scripts/test.sh installs it");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for applet in ["sh", "ls", "cat", "echo", "mkdir", "rm", "date", "touch", "sleep", "cp", "true", "false"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let tar = dir.path().join("rootfs.tar");
        let status = Command::new("tar")
            .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C"])
            .arg(&root)
            .args(["-cf"])
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar of the busybox rootfs failed");
        let out = Command::new("docker").arg("import").arg(&tar).arg(BUSYBOX).output().unwrap();
        assert!(out.status.success(), "docker import failed: {}", String::from_utf8_lossy(&out.stderr));
        image_id(BUSYBOX).expect("imported image exists")
    })
    .clone()
}
