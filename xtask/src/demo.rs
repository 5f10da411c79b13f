//! `cargo xtask demo`: builds and starts the sandbox, the merchant backend (SQLite) and the demo shop on
//! 127.0.0.1. Ports come from `DESHPAY_DEMO_PORT` (the shop; backend = +1, sandbox = +2), default 8080.

use crate::root;
use anyhow::{Context, Result, bail};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The demo's merchant API key. Demo only: production keys come from configuration.
pub const DEMO_API_KEY: &str = "sk_demo_deshpay_0123456789";

/// The secret the demo backend signs its webhooks to the demo shop with. Demo only.
pub const DEMO_WEBHOOK_SECRET: &str = "whsec_demo_deshpay_0123456789";

/// Ports of the three demo services.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Shop.
    pub shop: u16,
    /// Backend.
    pub backend: u16,
    /// Sandbox.
    pub sandbox: u16,
}

impl Ports {
    /// From `DESHPAY_DEMO_PORT`.
    pub fn from_env() -> Result<Ports> {
        let shop: u16 = match std::env::var("DESHPAY_DEMO_PORT") {
            Ok(p) => p.parse().context("DESHPAY_DEMO_PORT must be a port number")?,
            Err(_) => 8080,
        };
        Ok(Ports { shop, backend: shop + 1, sandbox: shop + 2 })
    }
}

/// A started service, killed when dropped.
#[derive(Debug)]
pub struct Service(pub Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn target_bin(name: &str) -> PathBuf {
    let dir = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    dir.join("debug").join(name)
}

/// Waits until something listens on the port.
pub fn wait_for_port(port: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not start listening on 127.0.0.1:{port}")
}

/// Writes the backend's demo configuration and returns its path.
fn write_config(ports: Ports) -> Result<PathBuf> {
    let dir = root().join(".demo");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("deshpay.toml");
    let key_file = root().join("crates/sandbox/keys/bestin-test-public.pem");
    let bestin_key = std::fs::read_to_string(&key_file).with_context(|| format!("reading {}", key_file.display()))?;
    // The sandbox's credentials are bKash's public sandbox ones; nothing here is a production secret.
    let config = format!(
        r#"# Written by `cargo xtask demo`.
[server]
listen = "127.0.0.1:{backend}"
allowed_origins = ["http://127.0.0.1:{shop}", "http://localhost:{shop}"]
widget_dir = "{pkg}"

[database]
url = "sqlite://{db}"

[merchant]
api_key = "{key}"
name = "DeshPay Demo Shop"

[bkash]
base_url = "http://127.0.0.1:{sandbox}/v1.2.0-beta"
username = "sandboxTokenizedUser02"
password = "sandboxTokenizedUser02@12345"
app_key = "4f6o0cjiki2rfm34kfdadl1eqq"
app_secret = "2is7hdktrekvrbljjh44ll3d9l1dtjo4pasmjvs5vl5qr3fug4b"

# The sandbox's Bestin Pay app and its notification signing key (crates/sandbox/keys/), for the INR product.
[bestin]
base_url = "http://127.0.0.1:{sandbox}/bestin"
app_id = "deshpay-sandbox-app"
secret = "sandbox-secret-5b1f0c2e9a7d4e63"
merchant_id = "M01KDESHPAYSANDBXX000000001"
public_key_pem = """
{bestin_key}"""

# The shop receives signed webhooks and shows them on its return page.
[webhook]
url = "http://127.0.0.1:{shop}/webhooks/deshpay"
secret = "{webhook_secret}"
retry_ms = 2000
"#,
        backend = ports.backend,
        shop = ports.shop,
        sandbox = ports.sandbox,
        db = dir.join("deshpay.db").display(),
        pkg = root().join("pkg").display(),
        key = DEMO_API_KEY,
        bestin_key = bestin_key.trim_end(),
        webhook_secret = DEMO_WEBHOOK_SECRET,
    );
    std::fs::write(&path, config)?;
    Ok(path)
}

/// Starts sandbox, backend and shop; returns them running. The binaries must be built.
pub fn start_services(ports: Ports) -> Result<Vec<(&'static str, Service)>> {
    let sandbox = Service(
        Command::new(target_bin("deshpay-sandbox"))
            .args(["--listen", &format!("127.0.0.1:{}", ports.sandbox)])
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting deshpay-sandbox")?,
    );
    wait_for_port(ports.sandbox, "the sandbox")?;
    let config = write_config(ports)?;
    let backend = Service(
        Command::new(target_bin("deshpay-server"))
            .arg("--config")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting deshpay-server")?,
    );
    wait_for_port(ports.backend, "the backend")?;
    let shop = Service(
        Command::new(target_bin("deshpay-demo-shop"))
            .args(["--listen", &format!("127.0.0.1:{}", ports.shop)])
            .args(["--backend", &format!("http://127.0.0.1:{}", ports.backend)])
            .args(["--api-key", DEMO_API_KEY])
            .args(["--webhook-secret", DEMO_WEBHOOK_SECRET])
            .arg("--www")
            .arg(root().join("www"))
            .arg("--pkg")
            .arg(root().join("pkg"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting deshpay-demo-shop")?,
    );
    wait_for_port(ports.shop, "the shop")?;
    Ok(vec![("sandbox", sandbox), ("backend", backend), ("shop", shop)])
}

/// `cargo xtask demo`.
pub fn run(_args: &[String]) -> Result<()> {
    let ports = Ports::from_env()?;
    crate::build()?;
    let mut services = start_services(ports)?;
    println!("sandbox: http://127.0.0.1:{}", ports.sandbox);
    println!("backend: http://127.0.0.1:{}", ports.backend);
    println!("shop: http://127.0.0.1:{}", ports.shop);
    println!("api key: {DEMO_API_KEY}");
    println!("(Ctrl-C stops everything; data stays in .demo/deshpay.db)");
    loop {
        for (name, service) in services.iter_mut() {
            if let Some(status) = service.0.try_wait()? {
                bail!("the {name} stopped ({status})");
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
