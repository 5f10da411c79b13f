//! `cargo xtask fuzz [SECONDS]`: runs every cargo-fuzz target in `fuzz/` for SECONDS each (default 60) on the
//! nightly toolchain and prints, per target, the inputs executed and whether it crashed. Installs cargo-fuzz
//! (crates.io) and the nightly toolchain (rustup) when they are missing. A crash fails the command; its input is
//! kept under `fuzz/artifacts/<target>/` (copy it into `fuzz/seeds/<target>/crash-...` once fixed). Each run
//! starts from the committed seeds `fuzz/seeds/<target>/` and the local corpus `fuzz/corpus/<target>/`, where it
//! also keeps what it found. `cargo test` replays the seeds on stable (`deshpay_server::fuzz_checks`).

use crate::{describe, root};
use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};

/// The targets, as named in `fuzz/Cargo.toml`.
const TARGETS: [&str; 4] = ["bkash_callback", "bestin_notify", "money", "merchant_json"];

/// A `cargo +nightly` command, free of the stable toolchain's environment that `cargo xtask` runs in.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly").env_remove("RUSTUP_TOOLCHAIN").env_remove("RUSTC").env_remove("CARGO");
    // The instrumented build lives in fuzz/target whatever the workspace's target directory is: mixing it with
    // the stable builds would rebuild both.
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd.current_dir(root());
    cmd
}

fn ensure_tools() -> Result<()> {
    let nightly = nightly_cargo().arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !nightly.is_ok_and(|s| s.success()) {
        crate::run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))?;
    }
    let fuzz = nightly_cargo().args(["fuzz", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !fuzz.is_ok_and(|s| s.success()) {
        crate::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Runs each target for `rest[0]` seconds (default 60).
///
/// # Errors
/// A missing tool that cannot be installed, a build failure, or a crash.
pub fn run(rest: &[String]) -> Result<()> {
    let seconds: u64 = match rest.first() {
        Some(s) => s.parse().context("usage: cargo xtask fuzz [SECONDS per target]")?,
        None => 60,
    };
    ensure_tools()?;
    let mut report = Vec::new();
    let mut crashed = Vec::new();
    for target in TARGETS {
        let corpus = root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = nightly_cargo();
        // No sanitizer: the code has no `unsafe`, so what fuzzing finds is panics and overflows
        // (debug assertions on), and the build is several times faster. libFuzzer writes new inputs to the
        // first corpus directory and only reads the committed seeds.
        cmd.args(["fuzz", "run", target, "--sanitizer", "none", "--debug-assertions"])
            .arg(&corpus)
            .arg(root().join("fuzz/seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-print_final_stats=1", "-max_len=4096"]);
        eprintln!("$ {}", describe(&cmd));
        let output = cmd.stdout(Stdio::inherit()).stderr(Stdio::piped()).output()?;
        let log = String::from_utf8_lossy(&output.stderr);
        let stat = |name: &str| {
            log.lines()
                .filter_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .next_back()
        };
        let executed = stat("number_of_executed_units").unwrap_or(0);
        let ok = output.status.success();
        if !ok {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            crashed.push(target);
        }
        let line = format!(
            "{target}: {executed} inputs in {seconds} s ({} per second), {}",
            executed / seconds.max(1),
            if ok { "0 crashes" } else { "CRASHED (input in fuzz/artifacts)" }
        );
        eprintln!("{line}");
        report.push(line);
    }
    println!("fuzzing, {seconds} s per target:");
    for line in &report {
        println!("  {line}");
    }
    if !crashed.is_empty() {
        bail!("fuzz targets crashed: {}", crashed.join(", "));
    }
    Ok(())
}
