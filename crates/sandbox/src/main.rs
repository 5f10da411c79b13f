//! `deshpay-sandbox`: runs the bKash and Bestin Pay (UPI) simulators until Ctrl-C.
//!
//! `deshpay-sandbox --listen 127.0.0.1:8082 --public-url http://127.0.0.1:8082` prints
//! `sandbox: <url>` on stdout once listening; logs go to stderr (`RUST_LOG`, default `info`).
//! Bestin Pay knobs: `--bestin-payin-ttl-secs` (default 900), `--bestin-timestamp-clock
//! sandbox|system` (which clock `x-timestamp` is checked against; default `sandbox`).

use std::io::IsTerminal;
use std::net::SocketAddr;

use clap::Parser;
use deshpay_sandbox::{BestinOptions, Sandbox, SandboxConfig};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "deshpay-sandbox", version, about = "bKash tokenized checkout and Bestin Pay (UPI) simulator")]
struct Args {
    /// Address and port to listen on.
    #[arg(long, env = "DESHPAY_SANDBOX_LISTEN", default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// Base URL browsers use to reach the sandbox (used in `bkashURL`); defaults to the bound address.
    #[arg(long, env = "DESHPAY_SANDBOX_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds a Bestin Pay payin stays pending before it expires (sandbox clock).
    #[arg(long, env = "DESHPAY_SANDBOX_BESTIN_PAYIN_TTL_SECS", default_value_t = 900)]
    bestin_payin_ttl_secs: u64,
    /// Clock Bestin Pay's `x-timestamp` is checked against: `sandbox` (moves with
    /// /__sandbox/clock/advance) or `system`.
    #[arg(long, env = "DESHPAY_SANDBOX_BESTIN_TIMESTAMP_CLOCK", default_value = "sandbox",
          value_parser = ["sandbox", "system"])]
    bestin_timestamp_clock: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let args = Args::parse();
    let sandbox = Sandbox::spawn(SandboxConfig {
        listen: args.listen,
        public_url: args.public_url,
        bestin_options: BestinOptions {
            payin_ttl: std::time::Duration::from_secs(args.bestin_payin_ttl_secs),
            timestamp_uses_sandbox_clock: args.bestin_timestamp_clock == "sandbox",
            ..BestinOptions::default()
        },
        ..SandboxConfig::default()
    })
    .await?;
    println!("sandbox: {}", sandbox.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
