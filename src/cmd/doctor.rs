//! `rtm-compute doctor`: probes every remote that is configured (git, the docker daemon, Flexo
//! when `FLEXO_URL` is set, the registry when `RTM_REGISTRY` is set) and names each failing piece.

use std::time::Duration;

use serde_json::json;

use crate::cli::DoctorArgs;
use crate::error::{EXIT_OK, EXIT_PREREQUISITE, Error};
use crate::flexo::{self, Settings};
use crate::process::{Cmd, Program};
use crate::{docker, registry};

/// One probed piece: its name, and what we found or why it failed.
struct Check {
    name: &'static str,
    result: Result<String, String>,
}

pub fn run(args: DoctorArgs) -> Result<u8, Error> {
    let mut checks = vec![
        Check { name: "git", result: git() },
        Check { name: "docker", result: docker_daemon(&args.docker.docker_cmd) },
    ];
    if std::env::var_os("FLEXO_URL").is_some() {
        checks.push(Check { name: "flexo", result: flexo_probe() });
    }
    match super::registry_config(args.registry) {
        Ok(Some(reg)) => checks.push(Check { name: "registry", result: registry_probe(&reg) }),
        Ok(None) => {}
        Err(e) => checks.push(Check { name: "registry", result: Err(e.to_string()) }),
    }
    let failed = checks.iter().filter(|c| c.result.is_err()).count();
    if args.json {
        super::print_json(&json!({
            "ok": failed == 0,
            "checks": checks.iter().map(|c| match &c.result {
                Ok(found) => json!({ "name": c.name, "ok": true, "found": found }),
                Err(why) => json!({ "name": c.name, "ok": false, "error": why }),
            }).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut text = String::new();
        for c in &checks {
            match &c.result {
                Ok(found) => text.push_str(&format!("ok    {:<9} {found}\n", c.name)),
                Err(why) => text.push_str(&format!("FAIL  {:<9} {why}\n", c.name)),
            }
        }
        super::print(&text)?;
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_PREREQUISITE })
}

fn git() -> Result<String, String> {
    let program = super::git_program().map_err(|e| e.to_string())?;
    let out = Cmd::new(&program).arg("--version").output().map_err(|e| e.to_string())?;
    Ok(format!("{} ({})", out.stdout_text(), program.path))
}

fn docker_daemon(name: &str) -> Result<String, String> {
    let program = Program::resolve(name).map_err(|e| e.to_string())?;
    let version = docker::server_version(&program).map_err(|e| e.to_string())?;
    Ok(format!("daemon {version} via {}", program.path))
}

fn flexo_probe() -> Result<String, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let client = flexo::connect(&settings).map_err(|e| e.to_string())?;
    client.probe().map_err(|e| e.to_string())?;
    Ok(format!("{} org {} repo {} (token accepted)", settings.url, settings.org, settings.repo))
}

fn registry_probe(reg: &super::RegistryConfig) -> Result<String, String> {
    registry::probe(&reg.registry, reg.credentials.as_ref(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    Ok(format!("{} answers the distribution API", reg.registry.host))
}
