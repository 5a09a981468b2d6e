//! Profile photos: uploaded bytes or a generated avatar, with the media ETag Graph reports.

use std::sync::Arc;

/// A user's profile photo.
#[derive(Clone, Debug)]
pub enum PhotoData {
    /// Uploaded (seed or `PUT /photo/$value`) bytes.
    Bytes {
        /// Raw image bytes.
        data: Arc<Vec<u8>>,
        /// `image/png` or `image/jpeg`.
        content_type: String,
        /// Pixel width.
        width: u32,
        /// Pixel height.
        height: u32,
    },
    /// A generated 48x48 PNG, rendered on request from this seed (keeps `--users 100000` small).
    Generated {
        /// Deterministic render seed.
        seed: u64,
    },
}

/// A profile photo plus its media ETag (changes whenever the photo changes).
#[derive(Clone, Debug)]
pub struct Photo {
    /// The image.
    pub data: PhotoData,
    /// Value for `@odata.mediaEtag` (already quoted, e.g. `"\"BA09D118\""`).
    pub etag: String,
}

/// Side length of generated photos (Graph keeps the uploaded size and serves the documented
/// smaller sizes from it, https://learn.microsoft.com/graph/api/profilephoto-get).
pub const GENERATED_PHOTO_SIZE: u32 = 96;

/// The square sizes Graph serves photos in
/// (https://learn.microsoft.com/graph/api/profilephoto-get: "48x48, 64x64, 96x96, 120x120,
/// 240x240, 360x360, 432x432, 504x504, and 648x648").
pub const PHOTO_SIZES: &[u32] = &[48, 64, 96, 120, 240, 360, 432, 504, 648];

impl Photo {
    /// Photo from uploaded bytes; `None` when the bytes are neither PNG nor JPEG.
    pub fn from_bytes(data: Vec<u8>) -> Option<Photo> {
        let (content_type, width, height) = image_info(&data)?;
        let etag = format!("\"{:08X}\"", fnv32(&data));
        Some(Photo {
            data: PhotoData::Bytes {
                data: Arc::new(data),
                content_type: content_type.to_string(),
                width,
                height,
            },
            etag,
        })
    }

    /// A generated photo for `seed`.
    pub fn generated(seed: u64) -> Photo {
        Photo {
            data: PhotoData::Generated { seed },
            etag: format!("\"{:08X}\"", fnv32(&seed.to_le_bytes())),
        }
    }

    /// Content type, width and height.
    pub fn info(&self) -> (&str, u32, u32) {
        match &self.data {
            PhotoData::Bytes {
                content_type,
                width,
                height,
                ..
            } => (content_type, *width, *height),
            PhotoData::Generated { .. } => {
                ("image/png", GENERATED_PHOTO_SIZE, GENERATED_PHOTO_SIZE)
            }
        }
    }

    /// The documented sizes this photo can be served in (those not larger than it).
    pub fn sizes(&self) -> Vec<u32> {
        let (_, w, h) = self.info();
        PHOTO_SIZES
            .iter()
            .copied()
            .filter(|s| *s <= w && *s <= h)
            .collect()
    }

    /// The image at `size` pixels square: generated photos are rendered at that size; uploaded
    /// bytes are served as stored (the sim does not rescale images).
    pub fn bytes_at(&self, size: u32) -> Arc<Vec<u8>> {
        match &self.data {
            PhotoData::Generated { seed } => Arc::new(render_png_sized(*seed, size)),
            PhotoData::Bytes { data, .. } => data.clone(),
        }
    }

    /// The image bytes (rendering generated photos on the fly).
    pub fn bytes(&self) -> Arc<Vec<u8>> {
        match &self.data {
            PhotoData::Bytes { data, .. } => data.clone(),
            PhotoData::Generated { seed } => {
                Arc::new(render_png_sized(*seed, GENERATED_PHOTO_SIZE))
            }
        }
    }
}

/// FNV-1a 32-bit, used for short deterministic ETags.
pub fn fnv32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// Detects PNG/JPEG and reads the pixel size from the header.
pub fn image_info(data: &[u8]) -> Option<(&'static str, u32, u32)> {
    if data.len() >= 24 && data.starts_with(b"\x89PNG\r\n\x1a\n") {
        let w = u32::from_be_bytes(data[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(data[20..24].try_into().ok()?);
        return Some(("image/png", w, h));
    }
    if data.len() >= 4 && data[0] == 0xFF && data[1] == 0xD8 {
        // Walk the JPEG segments to the first SOFn marker, which holds the size.
        let mut i = 2;
        while i + 9 < data.len() {
            if data[i] != 0xFF {
                i += 1;
                continue;
            }
            let marker = data[i + 1];
            let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
            if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
                let h = u16::from_be_bytes([data[i + 5], data[i + 6]]) as u32;
                let w = u16::from_be_bytes([data[i + 7], data[i + 8]]) as u32;
                return Some(("image/jpeg", w, h));
            }
            i += 2 + len;
        }
        return Some(("image/jpeg", 0, 0));
    }
    None
}

/// Renders a deterministic 48x48 PNG avatar: a coloured background with a lighter disc.
pub fn render_png(seed: u64) -> Vec<u8> {
    render_png_sized(seed, 48)
}

/// Renders the avatar of `seed` at `s` pixels square.
pub fn render_png_sized(seed: u64, s: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) ^ 0xD1B54A32D192ED03;
    let mut next = || {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        x ^= x >> 33;
        (x & 0xff) as u8
    };
    let bg = [next() / 2 + 40, next() / 2 + 40, next() / 2 + 40];
    let fg = [bg[0] / 2 + 120, bg[1] / 2 + 120, bg[2] / 2 + 120];
    let mut pixels = Vec::with_capacity((s * s * 3) as usize);
    let c = s as i32 / 2;
    for y in 0..s as i32 {
        for xx in 0..s as i32 {
            // head and shoulders silhouette, drawn on a 48-unit grid
            let (gx, gy) = (xx * 48 / s as i32, y * 48 / s as i32);
            let gc = c * 48 / s as i32;
            let head = (gx - gc).pow(2) + (gy - 18).pow(2) < 81;
            let body = (gx - gc).pow(2) + (gy - 48).pow(2) < 300;
            let px = if head || body { fg } else { bg };
            pixels.extend_from_slice(&px);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, s, s);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("png header to memory");
        w.write_image_data(&pixels).expect("png data to memory");
    }
    out
}
