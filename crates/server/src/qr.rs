//! The UPI QR code as an SVG path: dark modules only, one sub-path per horizontal run, inside a quiet zone.
//!
//! Drawn here rather than in the widget: the encoder costs the widget about 5 KB gzip of its 100 KB budget,
//! and the backend has the link anyway. The widget puts the path on a white plate, so the code stays
//! dark-on-light in every theme, as scanners need.

use deshpay_api::QrSvg;
use qrcodegen::{QrCode, QrCodeEcc};
use std::fmt::Write;

/// Light modules around the code on every side (the QR specification asks for 4).
pub const QUIET_ZONE: usize = 4;

/// Encodes `text` (error correction level M, which survives a smudged or glare-struck screen) and draws it.
/// `None` when the text is too long for any QR version.
pub fn draw(text: &str) -> Option<QrSvg> {
    // Byte mode: a UPI link is mixed-case text anyway.
    let code = QrCode::encode_binary(text.as_bytes(), QrCodeEcc::Medium).ok()?;
    let n = usize::try_from(code.size()).ok()?;
    let mut d = String::new();
    for y in 0..n {
        let mut x = 0;
        while x < n {
            if !dark(&code, x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < n && dark(&code, x, y) {
                x += 1;
            }
            let run = x - start;
            let _ = write!(d, "M{} {}h{run}v1h-{run}z", start + QUIET_ZONE, y + QUIET_ZONE);
        }
    }
    Some(QrSvg { size: u32::try_from(n + 2 * QUIET_ZONE).ok()?, path: d })
}

fn dark(code: &QrCode, x: usize, y: usize) -> bool {
    // Sizes are at most 177, so the casts are exact.
    code.get_module(x as i32, y as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paints a path of `M{x} {y}h{n}v1h-{n}z` runs into a bitmap.
    fn paint(qr: &QrSvg) -> Vec<Vec<bool>> {
        let size = qr.size as usize;
        let mut grid = vec![vec![false; size]; size];
        for run in qr.path.split('M').filter(|s| !s.is_empty()) {
            let (xy, rest) = run.split_once('h').unwrap();
            let (x, y) = xy.split_once(' ').unwrap();
            let n: usize = rest.split_once('v').unwrap().0.parse().unwrap();
            let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
            assert!(rest.ends_with(&format!("v1h-{n}z")), "{run}");
            for cell in &mut grid[y][x..x + n] {
                *cell = true;
            }
        }
        grid
    }

    #[test]
    fn the_drawing_reads_back_as_the_upi_link() {
        let link = "upi://pay?pa=deshpay.sandbox%40bestin&pn=DeshPay%20Sandbox%20Merchant&am=101.00&cu=INR\
                    &tr=PI01JDZ8Q6V4M2K7X9T3R5N8B6C4";
        let qr = draw(link).unwrap();
        let grid = paint(&qr);
        // Scale each module to 4 pixels, as a camera would see it, and decode.
        let scale = 4;
        let side = qr.size as usize * scale;
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(
                side,
                side,
                |x, y| {
                    if grid[y / scale][x / scale] { 0 } else { 255 }
                },
            );
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, link);
    }

    #[test]
    fn the_quiet_zone_stays_light() {
        let qr = draw("upi://pay?pa=a@b&am=1.00&cu=INR").unwrap();
        let grid = paint(&qr);
        for (y, row) in grid.iter().enumerate() {
            for (x, &dark) in row.iter().enumerate() {
                let inside = (QUIET_ZONE..qr.size as usize - QUIET_ZONE).contains(&x)
                    && (QUIET_ZONE..qr.size as usize - QUIET_ZONE).contains(&y);
                assert!(inside || !dark, "dark module at {x},{y} in the quiet zone");
            }
        }
        // The finder pattern's top-left corner is dark.
        assert!(grid[QUIET_ZONE][QUIET_ZONE]);
    }

    #[test]
    fn text_too_long_for_any_version_is_refused() {
        assert_eq!(draw(&"x".repeat(3000)), None);
    }
}
