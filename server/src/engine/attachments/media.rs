//! What an uploaded file is, and the copies of it the server keeps.
//!
//! The type is read from the bytes (`infer`), never from a name or a
//! header. Images are decoded and encoded again (`image`): what is kept
//! and served is the picture alone, turned upright as the camera meant it,
//! without EXIF, XMP or any other metadata, so no camera serial, owner
//! name or GPS position leaves with it. A location worth keeping is a field
//! of the record's reference, which the worker chooses to fill and the
//! record's readers see. Decoding also proves the file is an image, and is
//! bounded ([`MAX_PIXELS`]) so that a small file claiming a huge picture
//! is refused rather than allocated. PDFs are kept as sent.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

/// The largest picture decoded, in pixels: 50 megapixels, above any phone
/// camera.
pub const MAX_PIXELS: u64 = 50_000_000;

/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;

/// JPEG quality of kept photos; high enough that re-encoding a phone's
/// photo loses nothing a reader sees.
const JPEG_QUALITY: u8 = 88;

/// JPEG quality of thumbnails.
const THUMBNAIL_QUALITY: u8 = 75;

/// The copies of an accepted file.
#[derive(Debug)]
pub struct Prepared {
    /// What the bytes are, one of the allowed media types.
    pub media_type: &'static str,
    /// The file as kept and served.
    pub stored: Vec<u8>,
    /// A JPEG thumbnail, for images.
    pub thumbnail: Option<Vec<u8>>,
}

/// Why a file is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The bytes are not of an allowed type.
    #[error("the file is {found}, not one of {allowed}")]
    NotAllowed {
        /// What the bytes look like.
        found: String,
        /// The allowed media types.
        allowed: String,
    },
    /// The bytes are an allowed type, but not the one the upload claimed.
    #[error("the file is {found}, not {claimed} as the upload said")]
    Mismatch {
        /// What the bytes are.
        found: &'static str,
        /// What the upload said.
        claimed: String,
    },
    /// An image that does not decode, or is too large to.
    #[error("the image cannot be read: {0}")]
    BadImage(String),
}

/// What `bytes` are, by their first bytes: one of
/// `sync_core::records::ATTACHMENT_MEDIA_TYPES`, or why not.
pub fn sniff(bytes: &[u8]) -> Result<&'static str, MediaError> {
    let found = infer::get(bytes).map(|t| t.mime_type());
    match found {
        Some(t) if sync_core::records::ATTACHMENT_MEDIA_TYPES.contains(&t) => Ok(t),
        other => Err(MediaError::NotAllowed {
            found: other.unwrap_or("of no known type").to_owned(),
            allowed: sync_core::records::ATTACHMENT_MEDIA_TYPES.join(", "),
        }),
    }
}

/// Checks `bytes` against the media type the upload `claimed` (when it
/// said one) and makes the copies to keep. CPU-bound: run it off the async
/// workers.
pub fn prepare(bytes: &[u8], claimed: Option<&str>) -> Result<Prepared, MediaError> {
    let media_type = sniff(bytes)?;
    if let Some(claimed) = claimed
        && claimed != media_type
    {
        return Err(MediaError::Mismatch {
            found: media_type,
            claimed: claimed.to_owned(),
        });
    }
    let format = match media_type {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        "image/webp" => ImageFormat::WebP,
        _ => {
            return Ok(Prepared {
                media_type,
                stored: bytes.to_vec(),
                thumbnail: None,
            });
        }
    };
    let image = decode(bytes, format)?;
    let stored = encode(&image, format, JPEG_QUALITY)?;
    let thumb = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let thumbnail = encode(
        &DynamicImage::ImageRgb8(thumb.to_rgb8()),
        ImageFormat::Jpeg,
        THUMBNAIL_QUALITY,
    )?;
    Ok(Prepared {
        media_type,
        stored,
        thumbnail: Some(thumbnail),
    })
}

/// Decodes within [`MAX_PIXELS`] and turns the picture as its EXIF
/// orientation says, since the orientation tag goes with the rest.
fn decode(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, MediaError> {
    let bad = |e: image::ImageError| MediaError::BadImage(e.to_string());
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(MediaError::BadImage(format!(
            "{w} × {h} pixels is more than {MAX_PIXELS}"
        )));
    }
    let orientation = decoder.orientation().map_err(bad)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(bad)?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn encode(image: &DynamicImage, format: ImageFormat, quality: u8) -> Result<Vec<u8>, MediaError> {
    let mut out = Cursor::new(Vec::new());
    let done = match format {
        ImageFormat::Jpeg => {
            // JPEG has no alpha: flatten onto the RGB channels.
            let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
            rgb.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out, quality,
            ))
        }
        // The WebP encoder is lossless only: bigger than the phone's file,
        // but never worse.
        other => image.write_to(&mut out, other),
    };
    done.map_err(|e| MediaError::BadImage(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        encode(&DynamicImage::ImageRgb8(img), ImageFormat::Jpeg, 90).unwrap()
    }

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(&jpeg(8, 8)).unwrap(), "image/jpeg");
        assert_eq!(sniff(b"%PDF-1.7\n...").unwrap(), "application/pdf");
        assert!(matches!(
            sniff(b"<html><script>"),
            Err(MediaError::NotAllowed { .. })
        ));
        assert!(matches!(
            prepare(&jpeg(8, 8), Some("image/png")),
            Err(MediaError::Mismatch { .. })
        ));
    }

    #[test]
    fn photos_lose_their_metadata_and_get_a_thumbnail() {
        // A JPEG with an EXIF segment (APP1) carrying a made-up GPS tag.
        let plain = jpeg(640, 480);
        let mut tagged = plain[..2].to_vec();
        let exif = b"Exif\0\0GPSLatitude 31.2304 GPSLongitude 121.4737";
        tagged.extend([0xFF, 0xE1]);
        tagged.extend(((exif.len() + 2) as u16).to_be_bytes());
        tagged.extend(exif);
        tagged.extend(&plain[2..]);
        let kept = prepare(&tagged, Some("image/jpeg")).unwrap();
        assert_eq!(kept.media_type, "image/jpeg");
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(has(&tagged, b"GPSLatitude"));
        assert!(!has(&kept.stored, b"GPSLatitude"));
        assert!(!has(&kept.stored, b"Exif\0\0"));
        let thumb = image::load_from_memory(kept.thumbnail.as_ref().unwrap()).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 240));
    }

    #[test]
    fn a_broken_image_is_refused() {
        let mut broken = jpeg(64, 64);
        broken.truncate(40);
        assert!(matches!(
            prepare(&broken, None),
            Err(MediaError::BadImage(_))
        ));
    }
}
