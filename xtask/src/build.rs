//! `cargo xtask build` for the widget: wasm32 release build, wasm-bindgen, wasm-opt, and the npm package in
//! `pkg/`; and the widget's component tests in headless Chromium.
//!
//! The release wasm is compiled by the nightly toolchain with the size options when it is installed (see
//! [`compile_widget`]), else by stable with a warning; everything else builds on stable.
//!
//! Tools are pinned and installed under `target/tools/` on first use:
//! - wasm-bindgen-cli at exactly the `wasm-bindgen` version of Cargo.lock (the CLI and the library must match),
//!   from crates.io with `cargo install`;
//! - wasm-opt from npm's `binaryen@132` (Debian's binaryen is too old for current Rust output and miscompiles it);
//! - terser from npm, which minifies the JS glue and the loader in `pkg/` (about 3 KB gzip of the budget).

use crate::{cargo, root, run};
use anyhow::{Context, Result, bail};
use deshpay_widget::i18n::Locale;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// binaryen release whose wasm-opt optimises the widget.
const BINARYEN: &str = "132";

/// terser release that minifies the shipped JS.
const TERSER: &str = "5.51.2";

/// Banner of the minified loader (the source's long comment, with the CSP a page needs, is in README.md).
const LOADER_BANNER: &str =
    "/*! DeshPay Checkout loader. Embedding and Content-Security-Policy: see README.md and deshpay.d.ts. */";

/// wasm-opt passes: size first, repeated while they still shrink the module (`--converge`), and without the
/// custom sections no browser reads (tool versions, target features). Measured on the widget: -Oz alone is
/// about 0.4 KB gzip larger; `--gufa` and `-O3`/`-Os` variants are larger too.
const WASM_OPT: &[&str] = &["-Oz", "--converge", "--strip-producers", "--strip-target-features"];

/// Wasm features the Rust 1.95 wasm32-unknown-unknown output uses beyond the MVP; wasm-opt refuses the module
/// without them.
const WASM_FEATURES: &[&str] =
    &["--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext", "--enable-mutable-globals"];

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "wasm-release";

fn tools_dir() -> PathBuf {
    root().join("target").join("tools")
}

fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"))
}

/// The `wasm-bindgen` version in Cargo.lock.
pub fn locked_wasm_bindgen_version() -> Result<String> {
    locked_version("wasm-bindgen")
}

/// The version of `package` in Cargo.lock (its first entry).
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let name = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == name
            && let Some(version) = lines.next().and_then(|l| l.trim().strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_owned());
        }
    }
    bail!("Cargo.lock has no {package} package")
}

/// `program --version` output, if it runs.
fn version_of(program: &Path) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The directory holding `wasm-bindgen` and `wasm-bindgen-test-runner` of exactly the locked version,
/// installing them into `target/tools/bin` when neither that directory nor PATH has them.
pub fn ensure_wasm_bindgen() -> Result<PathBuf> {
    let version = locked_wasm_bindgen_version()?;
    let wanted = format!("wasm-bindgen {version}");
    let local = tools_dir().join("bin");
    if version_of(&local.join("wasm-bindgen")).as_deref() == Some(&wanted) {
        return Ok(local);
    }
    if let Some(dir) = which("wasm-bindgen")
        && version_of(&dir.join("wasm-bindgen")).as_deref() == Some(&wanted)
        && dir.join("wasm-bindgen-test-runner").exists()
    {
        return Ok(dir);
    }
    eprintln!("installing wasm-bindgen-cli {version} into target/tools (takes a few minutes, once)");
    // Not --locked: the CLI's lockfile pins crates this toolchain refuses.
    run(cargo().args(["install", "wasm-bindgen-cli", "--version", &version, "--root"]).arg(tools_dir()))?;
    match version_of(&local.join("wasm-bindgen")) {
        Some(v) if v == wanted => Ok(local),
        other => bail!("installed wasm-bindgen reports {other:?}, expected {wanted:?}"),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| dir.join(program).is_file())
}

/// `wasm-split-cli` from `wasm_split_cli_support` of the locked `wasm_split_helpers` version, installed into
/// `target/tools/bin` (the tool has no `--version`: a stamp file beside it records the version).
pub fn ensure_wasm_split() -> Result<PathBuf> {
    // The splitting tool must match Leptos' lazy-loading runtime.
    let version = locked_version("wasm_split_helpers")?;
    let bin = tools_dir().join("bin").join("wasm-split-cli");
    let stamp = tools_dir().join("wasm-split-cli.version");
    if bin.exists() && std::fs::read_to_string(&stamp).is_ok_and(|v| v == version) {
        return Ok(bin);
    }
    eprintln!("installing wasm_split_cli_support {version} into target/tools (takes a few minutes, once)");
    run(cargo()
        .args(["install", "--locked", "wasm_split_cli_support", "--features", "build-binary", "--version", &version])
        .arg("--root")
        .arg(tools_dir()))?;
    std::fs::write(&stamp, &version)?;
    Ok(bin)
}

/// wasm-opt from npm's binaryen, installed into `target/tools/npm`.
pub fn ensure_wasm_opt() -> Result<PathBuf> {
    let npm_root = tools_dir().join("npm");
    let wasm_opt = npm_root.join("node_modules").join(".bin").join("wasm-opt");
    let pinned = |v: Option<String>| v.is_some_and(|v| v.contains(&format!("version {BINARYEN}")));
    if pinned(version_of(&wasm_opt)) {
        return Ok(wasm_opt);
    }
    crate::tools::require("npm", "apt-get install -y npm (Node.js and npm)")?;
    std::fs::create_dir_all(&npm_root)?;
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&npm_root)
        .arg(format!("binaryen@{BINARYEN}")))?;
    if !pinned(version_of(&wasm_opt)) {
        bail!("{} is not binaryen {BINARYEN}", wasm_opt.display());
    }
    Ok(wasm_opt)
}

/// terser from npm, installed into `target/tools/npm` beside binaryen.
pub fn ensure_terser() -> Result<PathBuf> {
    let npm_root = tools_dir().join("npm");
    let terser = npm_root.join("node_modules").join(".bin").join("terser");
    let wanted = format!("terser {TERSER}");
    if version_of(&terser).as_deref() == Some(&wanted) {
        return Ok(terser);
    }
    crate::tools::require("npm", "apt-get install -y npm (Node.js and npm)")?;
    std::fs::create_dir_all(&npm_root)?;
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&npm_root)
        .arg(format!("terser@{TERSER}")))?;
    match version_of(&terser) {
        Some(v) if v == wanted => Ok(terser),
        other => bail!("{} reports {other:?}, expected {wanted:?}", terser.display()),
    }
}

/// Minifies an ES module in place (exports keep their names); `banner` replaces its comments.
fn minify(terser: &Path, file: &Path, banner: Option<&str>) -> Result<()> {
    let out = file.with_extension("min.js");
    run(Command::new(terser)
        .arg(file)
        .args(["--module", "--compress", "passes=2", "--mangle", "--comments", "false", "--output"])
        .arg(&out))?;
    let minified = std::fs::read_to_string(&out)?;
    std::fs::write(file, banner.map_or(minified.clone(), |b| [b, "\n", &minified].concat()))?;
    std::fs::remove_file(&out)?;
    Ok(())
}

/// Puts wasm-split's loader of the split modules (`__wasm_split.js`, which imports the glue's `initSync`) into
/// the glue, in place of the glue's import of it: one module less to fetch and evaluate, one after the other,
/// before the widget can start (BENCHMARKS.md, "Page load"), and 0.15 KB brotli less.
fn merge_split_link(glue: &str, link: &str) -> Result<String> {
    let import = format!("import * as import1 from \"./{SPLIT_LINK}\"");
    let link_import = "import { initSync } from \"./deshpay_widget.js\";";
    if glue.matches(&import).count() != 1 || !link.contains(link_import) {
        bail!(
            "wasm-bindgen's glue or wasm-split's {SPLIT_LINK} changed shape; update merge_split_link in xtask/src/build.rs"
        );
    }
    // The glue's functions are hoisted, so the loader's `initSync` is the glue's own; its exports become the
    // import object the glue hands the wasm under the module name "./__wasm_split.js".
    let exported: Vec<&str> = link
        .match_indices("export const ")
        .filter_map(|(at, m)| link[at + m.len()..].split([' ', '=']).next())
        .collect();
    let body = link.replace(link_import, "").replace("export const ", "const ");
    let fetch_low = "const fetch_low = (url) => fetch(url, { priority: 'low' });";
    let namespace = format!("const import1 = {{ {} }};", exported.join(", "));
    Ok(glue.replace(&import, &[fetch_low, &body, &namespace].join("\n")))
}

/// The classes wasm-bindgen exports for `wasm-streams`, which Leptos always links in (through `server_fn`'s
/// `browser` feature) for streaming server functions. The widget has none: nothing creates them, and the glue has
/// no way to receive one from the wasm. Their exports and classes cost about 1.8 KB brotli on the first screen.
const STREAM_CLASSES: [&str; 3] = ["IntoUnderlyingByteSource", "IntoUnderlyingSink", "IntoUnderlyingSource"];

/// The wasm exports behind [`STREAM_CLASSES`] (methods and destructors), for wasm-opt's `--remove-exports`.
const STREAM_EXPORTS: &str = "intounderlying*,__wbg_intounderlying*";

/// Removes [`STREAM_CLASSES`] from the glue: each class with its `Symbol.dispose` line, and its finalization
/// registry (which terser would keep: constructing it is a side effect).
fn drop_stream_classes(glue: &str) -> Result<String> {
    let mut glue = glue.to_owned();
    for class in STREAM_CLASSES {
        let dispose = format!("if (Symbol.dispose) {class}.prototype[Symbol.dispose] = {class}.prototype.free;\n");
        let registry = format!("const {class}Finalization = ");
        let (Some(start), Some(end)) = (glue.find(&format!("export class {class} {{")), glue.find(&dispose)) else {
            bail!("wasm-bindgen's glue has no class {class} any more; update STREAM_CLASSES in xtask/src/build.rs");
        };
        glue.replace_range(start..end + dispose.len(), "");
        let Some(start) = glue.find(&registry) else {
            bail!("wasm-bindgen's glue has no {registry}...; update drop_stream_classes in xtask/src/build.rs");
        };
        let end = start + glue[start..].find(");\n").context("unterminated finalization registry")? + 3;
        glue.replace_range(start..end, "");
    }
    if glue.to_lowercase().contains("intounderlying") {
        bail!("the glue still refers to wasm-streams' classes after drop_stream_classes");
    }
    Ok(glue)
}

/// Removes [`STREAM_CLASSES`] and their wasm exports from the glue's type declarations.
fn drop_stream_types(dts: &str) -> String {
    let mut out = String::with_capacity(dts.len());
    let mut in_class = false;
    for line in dts.lines() {
        if STREAM_CLASSES.iter().any(|c| line.starts_with(&format!("export class {c} {{"))) {
            in_class = true;
        }
        if !in_class && !line.contains("intounderlying") {
            out.push_str(line);
            out.push('\n');
        }
        in_class &= line != "}";
    }
    out
}

/// Builds the widget into `pkg/`: wasm, JS glue, loader, types and package.json; prints the sizes.
pub fn widget() -> Result<()> {
    let (toolchain, compiled) = compile_widget()?;
    let bindgen = ensure_wasm_bindgen()?;
    let wasm_opt = ensure_wasm_opt()?;
    let terser = ensure_terser()?;
    let wasm_split = ensure_wasm_split()?;
    let root = root();
    let pkg = root.join("pkg");
    clean_pkg(&pkg)?;

    // The UPI screen's code into its own module (see `upi_screen` in src/ui.rs): wasm-split writes the main
    // module for wasm-bindgen, the UPI module and the JS that loads it, which goes into the glue.
    let split = target_dir().join("wasm-split");
    if split.exists() {
        std::fs::remove_dir_all(&split)?;
    }
    run(Command::new(&wasm_split).arg(&compiled).arg(&split).args([
        "--out-name",
        "deshpay_widget",
        "--target",
        "web",
    ]))?;
    let input = split.join("deshpay_widget.wasm");
    for name in UPI_ON_TAP {
        let optimised = pkg.join(name);
        run(Command::new(&wasm_opt)
            .args(WASM_OPT)
            .args(WASM_FEATURES)
            .arg("--strip-debug")
            .arg(split.join(name))
            .arg("-o")
            .arg(&optimised))?;
    }
    let link = std::fs::read_to_string(split.join(SPLIT_LINK))?;
    // Prefetched after the first screen (src/ui.rs): it must not compete with what the page itself loads.
    let fetch = "fetch(new URL(";
    if !link.contains(fetch) {
        bail!("wasm-split's {SPLIT_LINK} no longer fetches with {fetch:?}; update xtask/src/build.rs");
    }
    let link = link.replace(fetch, "fetch_low(new URL(");

    // `--keep-lld-exports`: the split module reaches the main module's function table through its export.
    run(Command::new(bindgen.join("wasm-bindgen"))
        .args(["--target", "web", "--keep-lld-exports", "--out-name", "deshpay_widget", "--out-dir"])
        .arg(&pkg)
        .arg(&input))?;
    let glue = pkg.join("deshpay_widget.js");
    let merged = merge_split_link(&std::fs::read_to_string(&glue)?, &link)?;
    std::fs::write(&glue, drop_stream_classes(&merged)?)?;
    let types = pkg.join("deshpay_widget.d.ts");
    std::fs::write(&types, drop_stream_types(&std::fs::read_to_string(&types)?))?;

    let wasm = pkg.join("deshpay_widget_bg.wasm");
    let optimised = pkg.join("deshpay_widget_bg.opt.wasm");
    run(Command::new(&wasm_opt)
        .args(["--remove-exports", &format!("--pass-arg=remove-exports@{STREAM_EXPORTS}")])
        .args(WASM_OPT)
        .args(WASM_FEATURES)
        .arg(&wasm)
        .arg("-o")
        .arg(&optimised))?;
    std::fs::rename(&optimised, &wasm)?;
    minify(&terser, &pkg.join("deshpay_widget.js"), None)?;

    // The loader imports './pkg/deshpay_widget.js' when served from a site root; in the package it sits
    // beside the glue.
    let loader = std::fs::read_to_string(root.join("www/deshpay.js"))?;
    let pkg_path = "'./pkg/'";
    if !loader.contains(pkg_path) {
        bail!("www/deshpay.js no longer finds the package at {pkg_path}; update xtask/src/build.rs");
    }
    std::fs::write(pkg.join("deshpay.js"), loader.replace(pkg_path, "'./'"))?;
    minify(&terser, &pkg.join("deshpay.js"), Some(LOADER_BANNER))?;
    std::fs::copy(root.join("www/deshpay.d.ts"), pkg.join("deshpay.d.ts"))?;
    for locale in LAZY_LOCALES {
        // The loader's own words when the widget cannot start come last; it takes them off.
        let mut table = deshpay_widget::i18n::table(locale);
        table.push(deshpay_widget::i18n::loader_fallback(locale));
        std::fs::write(pkg.join(locale_file(locale)), serde_json::to_string(&table)?)?;
    }
    std::fs::write(pkg.join("package.json"), package_json())?;

    let sizes = precompress(&pkg)?;
    print_sizes(&sizes);
    println!("built with: {}", toolchain.describe());
    if let Toolchain::Stable { why } = &toolchain {
        eprintln!(
            "warning: the widget was built on stable because {why}: its wasm is about {NIGHTLY_SAVING_GZ} bytes gzip \
             larger than the nightly build's (measured, see BENCHMARKS.md); pkg/ is not the size we ship"
        );
    }
    Ok(())
}

/// Which compiler built the wasm.
#[derive(Debug)]
enum Toolchain {
    /// Nightly with the size options ([`NIGHTLY_FLAGS`], `build-std`).
    Nightly,
    /// Stable, and why nightly was not used.
    Stable { why: String },
}

impl Toolchain {
    fn describe(&self) -> String {
        match self {
            Toolchain::Nightly => format!("{} with build-std and {}", crate::tools::NIGHTLY, NIGHTLY_FLAGS.join(" ")),
            Toolchain::Stable { why } => format!("stable ({why})"),
        }
    }
}

/// rustc options of the nightly build: panics abort at once without formatting a message
/// (`-Cpanic=immediate-abort`, which needs std rebuilt with it: `-Z build-std`), no file/line/column strings for
/// panic locations, and `{:?}` formatting compiled to nothing. None of them changes what the widget does; a
/// panic in release aborted before too (`panic = "abort"`), and the console hook is debug-only.
const NIGHTLY_FLAGS: &[&str] =
    &["-Zunstable-options", "-Cpanic=immediate-abort", "-Zlocation-detail=none", "-Zfmt-debug=none"];

/// What the nightly size options save, gzip (zopfli) of the shipped wasm, measured on this widget with
/// `DESHPAY_WIDGET_TOOLCHAIN=stable cargo xtask build` against `cargo xtask build` (2026-12-07: 84,919 against
/// 74,993 bytes; 10,123 bytes on everything before the first interaction).
const NIGHTLY_SAVING_GZ: usize = 9_900;

/// Compiles the widget to wasm32 (release, size profile): on nightly with the size options when that toolchain is
/// installed (its `rust-src` and wasm32 target are added when missing), else on stable.
/// `DESHPAY_WIDGET_TOOLCHAIN=stable` forces stable (to compare). Returns the toolchain and the wasm's path.
fn compile_widget() -> Result<(Toolchain, PathBuf)> {
    let flags = remap_paths()?;
    let args = ["rustc", "-p", "deshpay-widget", "--target", TARGET, "--profile", PROFILE];
    // For the widget crate only (dependencies keep their build): the split point on, relocations kept and
    // symbols not stripped, which wasm-split reads; wasm-opt strips what is left afterwards.
    let split = ["--", "--cfg", "deshpay_split", "-Clink-arg=--emit-relocs", "-Cstrip=none"];
    let nightly = match std::env::var("DESHPAY_WIDGET_TOOLCHAIN").as_deref() {
        Ok("stable") => Err("DESHPAY_WIDGET_TOOLCHAIN=stable".to_owned()),
        _ => crate::tools::nightly_for_wasm(),
    };
    let why = match nightly {
        Ok(()) => {
            // Its own target directory: the stable builds (tests, clippy) and this one do not evict each other.
            let dir = target_dir().join("nightly");
            let flags = [flags.as_str()].into_iter().chain(NIGHTLY_FLAGS.iter().copied()).collect::<Vec<_>>();
            let built = run(crate::tools::nightly_cargo()
                .args(args)
                .args(["-Z", "build-std=std,panic_abort"])
                .args(split)
                .env("CARGO_TARGET_DIR", &dir)
                .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}")));
            match built {
                Ok(()) => return Ok((Toolchain::Nightly, dir.join(TARGET).join(PROFILE).join("deshpay_widget.wasm"))),
                Err(e) => format!("the nightly build failed ({e})"),
            }
        }
        Err(why) => why,
    };
    eprintln!("warning: building the widget on stable: {why}");
    run(cargo().args(args).args(split).env("CARGO_ENCODED_RUSTFLAGS", flags))?;
    Ok((Toolchain::Stable { why }, target_dir().join(TARGET).join(PROFILE).join("deshpay_widget.wasm")))
}

/// rustc flags that shorten the source paths kept in the wasm for panic locations: dependencies' paths start at
/// their crate directory instead of `~/.cargo/registry/src/index.crates.io-<hash>/` (about 1 KB gzip), and this
/// machine's paths do not end up in the shipped file. Separated by 0x1f, as `CARGO_ENCODED_RUSTFLAGS` wants.
fn remap_paths() -> Result<String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let mut prefixes = vec![(root(), "")];
    if let Ok(registries) = std::fs::read_dir(cargo_home.join("registry").join("src")) {
        prefixes.extend(registries.filter_map(|r| Some((r.ok()?.path(), ""))));
    }
    let flags: Vec<String> =
        prefixes.iter().map(|(from, to)| format!("--remap-path-prefix={}/={to}", from.display())).collect();
    Ok(flags.join("\u{1f}"))
}

/// Removes the previous build's files from `pkg/`, keeping the tracked `.gitkeep`.
fn clean_pkg(pkg: &Path) -> Result<()> {
    std::fs::create_dir_all(pkg)?;
    for entry in std::fs::read_dir(pkg)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n != ".gitkeep") && path.is_file() {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn package_json() -> String {
    let files = [
        "deshpay.js",
        "deshpay.d.ts",
        "deshpay_widget.js",
        "deshpay_widget.d.ts",
        "deshpay_widget_bg.wasm",
        "deshpay_widget_bg.wasm.d.ts",
        "split_*.wasm",
        "*.gz",
        "*.br",
    ];
    let files = files.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ");
    format!(
        r#"{{
  "name": "@deshpay/checkout",
  "version": "{version}",
  "description": "DeshPay Checkout widget: bKash and UPI payments in one script tag (Rust, WebAssembly, Leptos)",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "deshpay.js",
  "module": "deshpay.js",
  "types": "deshpay.d.ts",
  "exports": {{ ".": {{ "types": "./deshpay.d.ts", "default": "./deshpay.js" }} }},
  "files": [{files}],
  "sideEffects": ["deshpay.js"]
}}
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// What the browser downloads before the first interaction (the CSS is inside the wasm): the wasm, the JS glue
/// and the loader; plus, for Bengali and Hindi, that locale's texts ([`LAZY_LOCALES`]).
pub const FIRST_INTERACTION: [&str; 3] = ["deshpay_widget_bg.wasm", "deshpay_widget.js", "deshpay.js"];

/// What "Pay with UPI" loads on top of [`FIRST_INTERACTION`]: the UPI screen's wasm module, split off by
/// wasm-split (prefetched once the first screen shows when the session offers UPI; never on the bKash path).
pub const UPI_ON_TAP: [&str; 1] = ["split_upi.wasm"];

/// The module wasm-split writes beside the glue, which imports it: it loads the split modules. The build merges
/// it into the glue ([`merge_split_link`]); it is not shipped.
const SPLIT_LINK: &str = "__wasm_split.js";

/// Locales whose texts the wasm does not carry: the loader fetches `pkg/deshpay-<locale>.json` when one is used.
const LAZY_LOCALES: [Locale; 2] = [Locale::Bn, Locale::Hi];

fn locale_file(locale: Locale) -> String {
    format!("deshpay-{}.json", locale.as_str())
}

/// The budget for [`FIRST_INTERACTION`] in English, checked on the shipped `.gz`: 85 KB.
pub const BUDGET_GZIP: usize = 85 * 1024;

/// The same budget for the shipped `.br`: 72 KB.
pub const BUDGET_BROTLI: usize = 72 * 1024;

/// Sizes of one shipped file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    pub raw: usize,
    /// `gzip -9` (zlib), what a server compressing on the fly at its best level sends.
    pub gzip9: usize,
    /// The shipped `.gz` (zopfli), what a server sending precompressed files sends.
    pub gz: usize,
    /// The shipped `.br` (brotli 11).
    pub br: usize,
}

/// Writes `<file>.gz` (zopfli) and `<file>.br` (brotli 11) beside each file a browser loads, for servers that
/// send precompressed files (the demo shop does; so can nginx `gzip_static`/`brotli_static` and most CDNs).
/// Zopfli output is plain gzip, about 5 % smaller than `gzip -9`. Returns the sizes of [`FIRST_INTERACTION`]
/// and of the locale files.
pub fn precompress(pkg: &Path) -> Result<Vec<(String, Sizes)>> {
    let mut sizes = Vec::new();
    let names = FIRST_INTERACTION
        .map(str::to_owned)
        .into_iter()
        .chain(UPI_ON_TAP.map(str::to_owned))
        .chain(LAZY_LOCALES.map(locale_file));
    for name in names {
        let file = pkg.join(&name);
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let mut gz = Vec::new();
        zopfli::compress(zopfli::Options::default(), zopfli::Format::Gzip, &bytes[..], &mut gz)?;
        let br = brotli_bytes(&bytes)?;
        std::fs::write(pkg.join(format!("{name}.gz")), &gz)?;
        std::fs::write(pkg.join(format!("{name}.br")), &br)?;
        sizes.push((name, Sizes { raw: bytes.len(), gzip9: gzip9_len(&bytes)?, gz: gz.len(), br: br.len() }));
    }
    Ok(sizes)
}

fn gzip9_len(bytes: &[u8]) -> Result<usize> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}

fn brotli_bytes(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        writer.write_all(bytes)?;
    }
    Ok(out)
}

impl std::ops::Add for Sizes {
    type Output = Sizes;
    fn add(self, o: Sizes) -> Sizes {
        Sizes { raw: self.raw + o.raw, gzip9: self.gzip9 + o.gzip9, gz: self.gz + o.gz, br: self.br + o.br }
    }
}

/// Prints the sizes of what a browser downloads before the first interaction, per locale, and checks the English
/// total of the shipped `.gz` and `.br` against [`BUDGET_GZIP`] and [`BUDGET_BROTLI`]. Also prints the two
/// payment paths: bKash (nothing more before the redirect) and UPI (what "Pay with UPI" loads, [`UPI_ON_TAP`]).
fn print_sizes(sizes: &[(String, Sizes)]) {
    let row = |name: &str, s: Sizes| println!("{name:<24} {:>8} {:>8} {:>8} {:>8}", s.raw, s.gzip9, s.gz, s.br);
    println!("{:<24} {:>8} {:>8} {:>8} {:>8}", "widget transfer (bytes)", "raw", "gzip -9", ".gz", ".br");
    for (name, s) in sizes {
        row(name, *s);
    }
    let sum = |start: Sizes, wanted: &dyn Fn(&str) -> bool| {
        sizes.iter().filter(|(n, _)| wanted(n)).fold(start, |total, (_, s)| total + *s)
    };
    let english = sum(Sizes::default(), &|n| FIRST_INTERACTION.contains(&n));
    row("total, en", english);
    for locale in LAZY_LOCALES {
        let file = locale_file(locale);
        row(&format!("total, {}", locale.as_str()), sum(english, &|n| n == file));
    }
    let upi = sum(Sizes::default(), &|n| UPI_ON_TAP.contains(&n));
    row("bKash path, en", english);
    row("UPI path, en", english + upi);
    row("  of it after the tap", upi);
    let verdict = |size, budget| if size <= budget { "within" } else { "OVER" };
    println!(
        "budget (English, first interaction): shipped .gz {} of {BUDGET_GZIP} bytes ({}), .br {} of {BUDGET_BROTLI} \
         bytes ({}); {} with gzip -9 on the fly",
        english.gz,
        verdict(english.gz, BUDGET_GZIP),
        english.br,
        verdict(english.br, BUDGET_BROTLI),
        english.gzip9,
    );
}

/// Runs the widget's component tests (wasm-bindgen-test) in headless Chromium through chromedriver.
pub fn widget_tests() -> Result<()> {
    let bin = ensure_wasm_bindgen()?;
    let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if !Path::new(&chromedriver).exists() {
        bail!("chromedriver not found at {chromedriver}; install it with: apt-get install -y chromium chromium-driver");
    }
    run(cargo()
        .args(["test", "-p", "deshpay-widget", "--target", TARGET])
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", bin.join("wasm-bindgen-test-runner"))
        .env("CHROMEDRIVER", &chromedriver)
        .env("WASM_BINDGEN_USE_BROWSER", "1")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "60"))
}
