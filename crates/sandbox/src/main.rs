//! `deshpay-sandbox`: runs the bKash simulator until Ctrl-C.
//!
//! `deshpay-sandbox --listen 127.0.0.1:8082 --public-url http://127.0.0.1:8082` prints
//! `sandbox: <url>` on stdout once listening; logs go to stderr (`RUST_LOG`, default `info`).

use std::io::IsTerminal;
use std::net::SocketAddr;

use clap::Parser;
use deshpay_sandbox::{Sandbox, SandboxConfig};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "deshpay-sandbox",
    version,
    about = "bKash tokenized checkout simulator"
)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, env = "DESHPAY_SANDBOX_LISTEN", default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// Base URL browsers use to reach the sandbox (used in `bkashURL`); defaults to the bound address.
    #[arg(long, env = "DESHPAY_SANDBOX_PUBLIC_URL")]
    public_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let sandbox = Sandbox::spawn(SandboxConfig {
        listen: args.listen,
        public_url: args.public_url,
        ..SandboxConfig::default()
    })
    .await?;
    println!("sandbox: {}", sandbox.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
