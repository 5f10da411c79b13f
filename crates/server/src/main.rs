//! `deshpay-server`: the merchant backend binary.

use clap::Parser;
use deshpay_server::Application;
use deshpay_server::configuration::Settings;
use std::path::PathBuf;

/// DeshPay merchant backend.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML settings file; `DESHPAY_<SECTION>__<KEY>` environment variables override it.
    #[arg(long, env = "DESHPAY_CONFIG")]
    config: Option<PathBuf>,
    /// Print the API's OpenAPI 3.1 document (what `GET /openapi.json` serves) and exit.
    #[arg(long)]
    openapi: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    deshpay_server::telemetry::init();
    let args = Args::parse();
    if args.openapi {
        println!("{}", deshpay_server::openapi::json());
        return Ok(());
    }
    let settings = Settings::load(args.config.as_deref())?;
    let app = Application::build(settings).await?;
    println!("backend: {}", app.url());
    tracing::info!(url = %app.url(), "deshpay-server listening");
    app.run_until_stopped().await?;
    Ok(())
}
