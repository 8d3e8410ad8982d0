//! Image files `read` shows the model: the type from the magic bytes (a
//! name can lie), the size in pixels where the header gives it cheaply,
//! and the line naming the image that clients show as the result.

/// Largest image sent: the limit Anthropic sets on an image (the other
/// APIs take at least as much). A larger file is named, not sent: it would
/// be stored in the history and fail every later request.
pub(crate) const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;

/// Bytes of the file enough to tell the type and, for all but some JPEGs,
/// the size in pixels.
pub(crate) const SNIFF_BYTES: usize = 64;

/// The image types every API takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageType {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageType {
    /// The type by its magic bytes.
    pub(crate) fn sniff(head: &[u8]) -> Option<ImageType> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageType::Png)
        } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(ImageType::Jpeg)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(ImageType::Gif)
        } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(ImageType::Webp)
        } else {
            None
        }
    }

    /// Whether a file name says it is one of these types: a file system
    /// serving text (the editor's) is asked for the bytes only then.
    pub(crate) fn by_name(path: &std::path::Path) -> bool {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        matches!(
            ext.as_deref(),
            Some("png" | "jpg" | "jpeg" | "gif" | "webp")
        )
    }

    pub(crate) fn media_type(self) -> &'static str {
        match self {
            ImageType::Png => "image/png",
            ImageType::Jpeg => "image/jpeg",
            ImageType::Gif => "image/gif",
            ImageType::Webp => "image/webp",
        }
    }

    fn name(self) -> &'static str {
        match self {
            ImageType::Png => "PNG",
            ImageType::Jpeg => "JPEG",
            ImageType::Gif => "GIF",
            ImageType::Webp => "WebP",
        }
    }

    /// Width and height from the header, `None` when they are not where
    /// the format puts them (a damaged file, a JPEG whose frame header
    /// comes late).
    pub(crate) fn dimensions(self, bytes: &[u8]) -> Option<(u32, u32)> {
        let be32 = |at: usize| {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let le16 = |at: usize| {
            bytes
                .get(at..at + 2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
        };
        let le24 = |at: usize| {
            bytes
                .get(at..at + 3)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
        };
        match self {
            // IHDR is the first chunk: width and height at 16 and 20.
            ImageType::Png => Some((be32(16)?, be32(20)?)),
            // The logical screen size.
            ImageType::Gif => Some((le16(6)?, le16(8)?)),
            ImageType::Webp => match bytes.get(12..16)? {
                b"VP8 " => {
                    let w = le16(26)? & 0x3fff;
                    let h = le16(28)? & 0x3fff;
                    Some((w, h))
                }
                b"VP8L" => {
                    let b = bytes.get(21..25)?;
                    let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
                }
                b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
                _ => None,
            },
            ImageType::Jpeg => jpeg_dimensions(bytes),
        }
    }
}

/// Walks the JPEG's segments to its frame header (SOF0..SOF15 but DHT,
/// JPG and DAC), which holds height then width.
fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        // Segments start with 0xFF, possibly padded with more of them.
        while *bytes.get(at)? == 0xff && *bytes.get(at + 1)? == 0xff {
            at += 1;
        }
        if *bytes.get(at)? != 0xff {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        if (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            let h = u16::from_be_bytes([*bytes.get(at + 5)?, *bytes.get(at + 6)?]);
            let w = u16::from_be_bytes([*bytes.get(at + 7)?, *bytes.get(at + 8)?]);
            return Some((u32::from(w), u32::from(h)));
        }
        if len < 2 {
            return None;
        }
        at += 2 + len;
    }
}

/// "Image a.png (PNG, 800×600, 12 KB)": what the result says about an
/// image sent to the model.
pub(crate) fn describe(shown: &str, kind: ImageType, bytes: &[u8]) -> String {
    let size = human_size(bytes.len() as u64);
    match kind.dimensions(bytes) {
        Some((w, h)) => format!("Image {shown} ({}, {w}×{h}, {size})", kind.name()),
        None => format!("Image {shown} ({}, {size})", kind.name()),
    }
}

/// The line for an image too large to send.
pub(crate) fn too_large(shown: &str, kind: ImageType, len: u64) -> String {
    format!(
        "Image {shown} ({}, {}) is over the {} MB an image may have; not shown to the model",
        kind.name(),
        human_size(len),
        MAX_IMAGE_BYTES / (1024 * 1024)
    )
}

fn human_size(len: u64) -> String {
    if len < 1024 {
        format!("{len} bytes")
    } else if len < 1024 * 1024 {
        format!("{} KB", len.div_ceil(1024))
    } else {
        format!("{:.1} MB", len as f64 / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG's signature and IHDR chunk for a `w`×`h` image.
    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn types_and_sizes_from_headers() {
        let p = png(800, 600);
        assert_eq!(ImageType::sniff(&p), Some(ImageType::Png));
        assert_eq!(ImageType::Png.dimensions(&p), Some((800, 600)));
        assert_eq!(
            describe("a.png", ImageType::Png, &p),
            format!("Image a.png (PNG, 800×600, {} bytes)", p.len())
        );

        let gif = b"GIF89a\x0a\x00\x05\x00\x80\x00\x00";
        assert_eq!(ImageType::sniff(gif), Some(ImageType::Gif));
        assert_eq!(ImageType::Gif.dimensions(gif), Some((10, 5)));

        // SOI, an APP0 segment, then SOF0 with height 7 and width 9.
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x4a, 0x46, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00,
            0x07, 0x00, 0x09, 0x03,
        ];
        assert_eq!(ImageType::sniff(&jpeg), Some(ImageType::Jpeg));
        assert_eq!(ImageType::Jpeg.dimensions(&jpeg), Some((9, 7)));
        assert_eq!(ImageType::Jpeg.dimensions(&jpeg[..10]), None);

        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
        webp.extend_from_slice(&[99, 0, 0, 49, 0, 0]);
        assert_eq!(ImageType::sniff(&webp), Some(ImageType::Webp));
        assert_eq!(ImageType::Webp.dimensions(&webp), Some((100, 50)));

        assert_eq!(ImageType::sniff(b"hello"), None);
        assert!(ImageType::by_name(std::path::Path::new("x/Shot.PNG")));
        assert!(!ImageType::by_name(std::path::Path::new("x/a.svg")));
        assert_eq!(
            too_large("big.png", ImageType::Png, 6 * 1024 * 1024),
            "Image big.png (PNG, 6.0 MB) is over the 5 MB an image may have; not shown to the model"
        );
    }
}
