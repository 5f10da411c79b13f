//! The UPI QR code as an SVG path: dark modules only, one sub-path per horizontal run, inside a quiet zone.
//!
//! Pure (built and tested natively): the widget puts the path on a white plate (`ui.rs`), so the code stays
//! dark-on-light in every theme, as scanners need.

use crate::money::push_digits;
use qrcodegen::{QrCode, QrCodeEcc};

/// Light modules around the code on every side (the QR specification asks for 4).
pub const QUIET_ZONE: usize = 4;

/// A QR code ready to draw: the side of the square in modules (quiet zone included) and the SVG path of the
/// dark modules in those units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrPath {
    /// Width and height of the `viewBox`, in modules.
    pub size: usize,
    /// `d` of the `<path>`: `M{x} {y}h{n}v1h-{n}z` for each run of dark modules.
    pub d: String,
}

/// Encodes `text` (error correction level M, which survives a smudged or glare-struck screen) and draws it.
/// `None` when the text is too long for any QR version.
pub fn path(text: &str) -> Option<QrPath> {
    // Byte mode only: a UPI link is mixed-case text anyway, and the numeric/alphanumeric analysis of
    // `encode_text` would only add bytes to the wasm.
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
            // By hand rather than `write!`: core's formatting machinery is large in the wasm.
            let run = run as i64;
            d.push('M');
            push_digits(&mut d, (start + QUIET_ZONE) as i64, 1);
            d.push(' ');
            push_digits(&mut d, (y + QUIET_ZONE) as i64, 1);
            d.push('h');
            push_digits(&mut d, run, 1);
            d.push_str("v1h-");
            push_digits(&mut d, run, 1);
            d.push('z');
        }
    }
    Some(QrPath { size: n + 2 * QUIET_ZONE, d })
}

fn dark(code: &QrCode, x: usize, y: usize) -> bool {
    // Sizes are at most 177, so the casts are exact.
    code.get_module(x as i32, y as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paints a path of `M{x} {y}h{n}v1h-{n}z` runs into a bitmap.
    fn paint(qr: &QrPath) -> Vec<Vec<bool>> {
        let mut grid = vec![vec![false; qr.size]; qr.size];
        for run in qr.d.split('M').filter(|s| !s.is_empty()) {
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
        let qr = path(link).unwrap();
        let grid = paint(&qr);
        // Scale each module to 4 pixels, as a camera would see it, and decode.
        let scale = 4;
        let side = qr.size * scale;
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
        let qr = path("upi://pay?pa=a@b&am=1.00&cu=INR").unwrap();
        let grid = paint(&qr);
        for (y, row) in grid.iter().enumerate() {
            for (x, &dark) in row.iter().enumerate() {
                let inside =
                    (QUIET_ZONE..qr.size - QUIET_ZONE).contains(&x) && (QUIET_ZONE..qr.size - QUIET_ZONE).contains(&y);
                assert!(inside || !dark, "dark module at {x},{y} in the quiet zone");
            }
        }
        // The finder pattern's top-left corner is dark.
        assert!(grid[QUIET_ZONE][QUIET_ZONE]);
    }

    #[test]
    fn text_too_long_for_any_version_is_refused() {
        assert_eq!(path(&"x".repeat(3000)), None);
    }
}
