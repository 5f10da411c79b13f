//! Theme presets and the CSS custom properties they feed.
//!
//! Front-end developers theme the widget with `--deshpay-*` custom properties (on the host element or
//! inherited from the page, since custom properties cross shadow boundaries) or with a theme object in the JS
//! options, which the loader turns into the same properties. Presets only supply fallbacks:
//! `--dp-primary: var(--deshpay-color-primary, <preset value>)`, so a merchant's property always wins.
//! Every preset meets WCAG 2.2 AA contrast; the tests below compute it.

/// The colours of a theme, as `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// Buttons and accents.
    pub primary: &'static str,
    /// Text on `primary`.
    pub on_primary: &'static str,
    /// Background of the widget.
    pub bg: &'static str,
    /// Body text.
    pub text: &'static str,
    /// Secondary text (labels).
    pub muted: &'static str,
    /// The widget's and separators' borders.
    pub border: &'static str,
    /// Failure icons and error borders (also used as text).
    pub error: &'static str,
    /// Success icon (also used as text).
    pub success: &'static str,
    /// Focus outline.
    pub focus: &'static str,
}

impl Palette {
    /// Custom-property suffix and value of each colour, in `--deshpay-color-<suffix>` order.
    pub fn entries(&self) -> [(&'static str, &'static str); 9] {
        [
            ("primary", self.primary),
            ("on-primary", self.on_primary),
            ("bg", self.bg),
            ("text", self.text),
            ("muted", self.muted),
            ("border", self.border),
            ("error", self.error),
            ("success", self.success),
            ("focus", self.focus),
        ]
    }
}

/// A built-in theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// Light, neutral (default).
    #[default]
    Light,
    /// Dark surfaces, light text.
    Dark,
    /// bKash's brand pink (#E2136E) on white.
    Bkash,
    /// Maximum contrast: white and yellow on black.
    HighContrast,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 4] = [Preset::Light, Preset::Dark, Preset::Bkash, Preset::HighContrast];

    /// The name used in the `theme` option and attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Light => "light",
            Preset::Dark => "dark",
            Preset::Bkash => "bkash",
            Preset::HighContrast => "high-contrast",
        }
    }

    /// Reads a preset name.
    pub fn parse(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == name.trim())
    }

    /// The preset's colours.
    pub fn palette(self) -> Palette {
        match self {
            Preset::Light => Palette {
                primary: "#0b57d0",
                on_primary: "#ffffff",
                bg: "#ffffff",
                text: "#1a1a1a",
                muted: "#5c5c66",
                border: "#8c8c96",
                error: "#b3261e",
                success: "#1b7a35",
                focus: "#0b57d0",
            },
            Preset::Dark => Palette {
                primary: "#8ab4f8",
                on_primary: "#0b1d3a",
                bg: "#1b1b1f",
                text: "#f1f1f3",
                muted: "#b4b4bd",
                border: "#80808c",
                error: "#ffb4ab",
                success: "#7fd99a",
                focus: "#a8c7fa",
            },
            Preset::Bkash => Palette {
                primary: "#E2136E",
                on_primary: "#ffffff",
                bg: "#ffffff",
                text: "#1f1f1f",
                muted: "#5c5c66",
                border: "#8c8c96",
                error: "#b3261e",
                success: "#1b7a35",
                focus: "#b30e57",
            },
            Preset::HighContrast => Palette {
                primary: "#ffff00",
                on_primary: "#000000",
                bg: "#000000",
                text: "#ffffff",
                muted: "#e6e6e6",
                border: "#ffffff",
                error: "#ff8f8f",
                success: "#6dff6d",
                focus: "#00ffff",
            },
        }
    }
}

/// CSS for every preset: `.dp[data-theme=NAME]` sets the private `--dp-*` properties, each falling back from
/// the public `--deshpay-color-*` property to the preset's value.
pub fn presets_css() -> String {
    let mut css = String::new();
    for preset in Preset::ALL {
        css.push_str(".dp[data-theme=\"");
        css.push_str(preset.as_str());
        css.push_str("\"]{");
        for (name, value) in preset.palette().entries() {
            css.push_str("--dp-");
            css.push_str(name);
            css.push_str(":var(--deshpay-color-");
            css.push_str(name);
            css.push(',');
            css.push_str(value);
            css.push_str(");");
        }
        css.push('}');
    }
    css
}

/// WCAG 2.x relative luminance of a `#rrggbb` colour.
pub fn luminance(hex: &str) -> Option<f64> {
    let hex = hex.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let channel = |i: usize| -> Option<f64> {
        let c = f64::from(u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) })
    };
    Some(0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?)
}

/// WCAG contrast ratio of two `#rrggbb` colours (1.0 to 21.0).
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (luminance(a)?, luminance(b)?);
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    Some((hi + 0.05) / (lo + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text needs 4.5:1 (AA, normal size); UI parts and focus indicators need 3:1 (SC 1.4.11, 2.4.13's base).
    const TEXT: f64 = 4.5;
    const UI: f64 = 3.0;

    #[test]
    fn contrast_matches_known_values() {
        assert!((contrast("#000000", "#ffffff").unwrap() - 21.0).abs() < 1e-9);
        assert!((contrast("#ffffff", "#ffffff").unwrap() - 1.0).abs() < 1e-9);
        assert!((contrast("#767676", "#ffffff").unwrap() - 4.54).abs() < 0.01);
        assert_eq!(contrast("#fff", "#000000"), None);
        assert_eq!(contrast("#gg0000", "#000000"), None);
    }

    #[test]
    fn every_preset_meets_wcag_aa() {
        for preset in Preset::ALL {
            let p = preset.palette();
            let pairs = [
                ("text/bg", p.text, p.bg, TEXT),
                ("on-primary/primary", p.on_primary, p.primary, TEXT),
                ("muted/bg", p.muted, p.bg, TEXT),
                ("error/bg", p.error, p.bg, TEXT),
                ("success/bg", p.success, p.bg, TEXT),
                ("primary/bg", p.primary, p.bg, UI),
                ("focus/bg", p.focus, p.bg, UI),
                ("border/bg", p.border, p.bg, UI),
            ];
            for (name, fg, bg, min) in pairs {
                let ratio = contrast(fg, bg).unwrap_or_else(|| panic!("{preset:?} {name}: bad colour"));
                assert!(ratio >= min, "{preset:?} {name}: {ratio:.2}:1 is below {min}:1");
            }
        }
    }

    #[test]
    fn bkash_preset_uses_the_brand_pink() {
        assert_eq!(Preset::Bkash.palette().primary, "#E2136E");
    }

    #[test]
    fn preset_css_lets_public_properties_win() {
        let css = presets_css();
        for preset in Preset::ALL {
            assert!(css.contains(&format!(".dp[data-theme=\"{}\"]{{", preset.as_str())));
        }
        assert!(css.contains("--dp-primary:var(--deshpay-color-primary,#E2136E);"));
        assert!(css.contains("--dp-on-primary:var(--deshpay-color-on-primary,#ffffff);"));
        assert_eq!(Preset::parse("high-contrast"), Some(Preset::HighContrast));
        assert_eq!(Preset::parse("neon"), None);
    }
}
