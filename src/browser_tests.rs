//! Component tests in headless Chromium (`cargo xtask test` runs them with wasm-bindgen-test-runner).
