//! Installs the tools the build needs, pinned, or says exactly how to.

use crate::run;
use anyhow::{Result, bail};
use std::process::Command;

/// Adds the wasm32 target through rustup when it is missing.
pub fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("wasm32-unknown-unknown") => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])),
        Err(_) => {
            bail!("rustup not found: install Rust with rustup, then run `rustup target add wasm32-unknown-unknown`")
        }
    }
}

/// Installs axe-core (for the accessibility checks of the end-to-end tests) into target/tools/npm.
pub fn ensure_axe_core() -> Result<()> {
    let prefix = crate::root().join("target/tools/npm");
    if prefix.join("node_modules/axe-core/axe.min.js").exists() {
        return Ok(());
    }
    if Command::new("npm").arg("--version").output().is_err() {
        bail!("npm is missing; install it with: apt-get install -y nodejs npm");
    }
    std::fs::create_dir_all(&prefix)?;
    run(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--prefix"]).arg(&prefix).arg("axe-core@4.10"))
}

/// Checks that Debian's Chromium and chromedriver are installed (the end-to-end tests drive them).
pub fn require_chromium() -> Result<()> {
    for path in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !std::path::Path::new(path).exists() {
            bail!("{path} is missing; install it with: apt-get update && apt-get install -y chromium chromium-driver");
        }
    }
    Ok(())
}

/// The PostgreSQL server the store tests run against: `DESHPAY_TEST_POSTGRES` or the local default.
pub fn postgres_url() -> Result<String> {
    let url =
        std::env::var("DESHPAY_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let reachable = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 5432)),
        std::time::Duration::from_secs(2),
    )
    .is_ok();
    if !reachable && !std::env::var("DESHPAY_TEST_POSTGRES").is_ok_and(|u| !u.contains("127.0.0.1:5432")) {
        bail!(
            "PostgreSQL is not reachable at 127.0.0.1:5432. Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect \
             15 main start`) or set DESHPAY_TEST_POSTGRES=postgres://user@host:port/db"
        );
    }
    Ok(url)
}

/// Fails with the install command when a program is not on PATH.
pub fn require(program: &str, install: &str) -> Result<()> {
    let found = Command::new("sh").args(["-c", &format!("command -v {program}")]).output()?;
    if !found.status.success() {
        bail!("{program} is missing; install it with: {install}");
    }
    Ok(())
}

/// The rustup toolchain the release widget is built with when it is installed: the size options (`build-std`,
/// `-Cpanic=immediate-abort`, `-Zlocation-detail=none`, `-Zfmt-debug=none`) are nightly-only.
pub const NIGHTLY: &str = "nightly";

/// Whether the nightly toolchain is installed and has (or was just given) `rust-src` and the wasm32 target.
/// Never installs the toolchain itself (a few hundred MB): without it the widget builds on stable.
pub fn nightly_for_wasm() -> Result<(), String> {
    let runs =
        rustup().args(["run", NIGHTLY, "rustc", "--version"]).output().map_err(|_| "rustup not found".to_owned())?;
    if !runs.status.success() {
        return Err(format!("no {NIGHTLY} toolchain (rustup toolchain install {NIGHTLY} --profile minimal)"));
    }
    let has = |list: &[&str], wanted: &str| {
        let out = rustup().args(list).output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).lines().any(|l| l.split_whitespace().next() == Some(wanted)))
    };
    let add = |args: &[&str]| run(rustup().args(args)).map_err(|e| e.to_string());
    match has(&["component", "list", "--installed", "--toolchain", NIGHTLY], "rust-src") {
        Some(true) => {}
        Some(false) => add(&["component", "add", "rust-src", "--toolchain", NIGHTLY])?,
        None => return Err("rustup component list failed".into()),
    }
    match has(&["target", "list", "--installed", "--toolchain", NIGHTLY], "wasm32-unknown-unknown") {
        Some(true) => {}
        Some(false) => add(&["target", "add", "wasm32-unknown-unknown", "--toolchain", NIGHTLY])?,
        None => return Err("rustup target list failed".into()),
    }
    Ok(())
}

/// `rustup`, never installing a toolchain on its own (rustup's auto-install).
fn rustup() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.env("RUSTUP_AUTO_INSTALL", "0");
    cmd
}

/// `cargo` of the nightly toolchain, whatever toolchain runs xtask.
pub fn nightly_cargo() -> Command {
    let mut cmd = rustup();
    cmd.args(["run", NIGHTLY, "cargo"]);
    // Set by the stable cargo (or rustup proxy) that runs xtask; they would pick stable's compiler.
    for var in ["RUSTC", "RUSTDOC", "RUSTUP_TOOLCHAIN", "CARGO"] {
        cmd.env_remove(var);
    }
    cmd
}
