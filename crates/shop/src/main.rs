//! `deshpay-demo-shop`: the demo merchant shop binary.

use clap::Parser;
use std::path::PathBuf;

/// The DeshPay demo shop.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The DeshPay backend URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    backend: String,
    /// Merchant API key (also from DESHPAY_SHOP_API_KEY).
    #[arg(long, env = "DESHPAY_SHOP_API_KEY")]
    api_key: String,
    /// Directory with deshpay.js and gallery.html.
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// Directory with the built widget package.
    #[arg(long, default_value = "pkg")]
    pkg: PathBuf,
    /// Secret of the backend's signed webhooks (also from DESHPAY_SHOP_WEBHOOK_SECRET); none taken without it.
    #[arg(long, env = "DESHPAY_SHOP_WEBHOOK_SECRET")]
    webhook_secret: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).init();
    let args = Args::parse();
    let shop = deshpay_shop::spawn(deshpay_shop::ShopConfig {
        listen: args.listen,
        backend_url: args.backend.trim_end_matches('/').to_owned(),
        public_backend_url: None,
        api_key: args.api_key,
        www_dir: args.www,
        pkg_dir: args.pkg,
        webhook_secret: args.webhook_secret,
    })
    .await?;
    println!("shop: {}", shop.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
