//! `cargo xtask <command>`: the one place that knows how to build, run and test DeshPay.
//!
//! - `build`: the widget for wasm32 into `pkg/` (wasm-bindgen, wasm-opt) and the native binaries.
//! - `demo`: the sandbox, the merchant backend (SQLite) and the demo shop on 127.0.0.1; prints their URLs.
//! - `test`: formatting, clippy, the widget build, and every test in the workspace.
//! - `bench [--widget|--backend]`: the benchmark figures (`--widget`: only the widget's sizes, page load and UPI
//!   tap; `--backend`: only the backend load).
//! - `fuzz [SECONDS]`: every cargo-fuzz target in `fuzz/` for a bounded time (nightly).
//!
//! Missing tools (the wasm32 target, pinned wasm-bindgen-cli, binaryen from npm) are installed on first use;
//! what cannot be installed from here (Chromium) is named with the exact command.

mod build;
pub mod demo;
mod fuzz;
mod tools;

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    match command {
        "build" => build(),
        "demo" => demo::run(rest),
        "test" => test(rest),
        "bench" => bench(rest),
        "fuzz" => fuzz::run(rest),
        "help" | "--help" | "-h" => {
            println!("usage: cargo xtask <build|demo|test|bench [--widget|--backend]|fuzz [SECONDS]>");
            Ok(())
        }
        other => bail!("unknown command {other:?}; try build, demo, test, bench or fuzz"),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// Runs a command in the workspace root, failing with its name when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    cmd.current_dir(root());
    eprintln!("$ {}", describe(cmd));
    let status = cmd.status()?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// A command as a shell line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// `cargo` as invoked by `cargo xtask` (same toolchain).
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds the widget package and the native binaries.
///
/// # Errors
/// When a build step fails.
pub fn build() -> Result<()> {
    tools::ensure_wasm_target()?;
    build::widget()?;
    run(cargo().args(["build", "-p", "deshpay-server", "-p", "deshpay-sandbox", "-p", "deshpay-shop"]))?;
    Ok(())
}

fn test(rest: &[String]) -> Result<()> {
    tools::ensure_wasm_target()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    tools::require_chromium()?;
    tools::ensure_axe_core()?;
    let postgres = tools::postgres_url()?;
    build()?;
    build::widget_tests()?;
    // Everything on SQLite (the default store), the end-to-end journeys in Chromium included...
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]).args(rest);
    run(&mut cmd)?;
    // ...then the backend's whole suite again on PostgreSQL, the store for several instances.
    let mut cmd = cargo();
    cmd.args(["test", "-p", "deshpay-server", "--test", "api"]).env("DESHPAY_TEST_POSTGRES", postgres).args(rest);
    run(&mut cmd)?;
    Ok(())
}

/// `cargo xtask bench [--widget|--backend]`: with `--widget`, only the widget's figures (no backend load, so no
/// release backend and sandbox binaries); with `--backend`, only the backend load (no widget build, no Chromium).
fn bench(rest: &[String]) -> Result<()> {
    let (widget_only, backend_only) = match rest {
        [] => (false, false),
        [flag] if flag == "--widget" => (true, false),
        [flag] if flag == "--backend" => (false, true),
        _ => bail!("usage: cargo xtask bench [--widget|--backend]"),
    };
    if !backend_only {
        tools::require_chromium()?;
        build()?;
    }
    if !widget_only {
        // Two builds: `--bin` would otherwise restrict the first one to the bench binary.
        run(cargo().args(["build", "--release", "-p", "deshpay-server", "-p", "deshpay-sandbox"]))?;
    }
    run(cargo().args(["build", "--release", "-p", "deshpay-e2e", "--bin", "deshpay-bench"]))?;
    let dir = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    run(Command::new(dir.join("release/deshpay-bench")).args(rest))
}
