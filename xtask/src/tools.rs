//! Installs the tools the build needs, pinned, or says exactly how to.

use crate::{describe, run};
use anyhow::{Result, bail};
use std::process::Command;

/// Adds the wasm32 target through rustup when it is missing.
pub fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-unknown-unknown") => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])),
        Err(_) => bail!("rustup not found: install Rust with rustup, then run `rustup target add wasm32-unknown-unknown`"),
    }
}

/// Fails with the install command when a program is not on PATH.
#[allow(dead_code)]
pub fn require(program: &str, install: &str) -> Result<()> {
    let found = Command::new("sh").args(["-c", &format!("command -v {program}")]).output()?;
    if !found.status.success() {
        bail!("{program} is missing; install it with: {install}");
    }
    let _ = describe;
    Ok(())
}
