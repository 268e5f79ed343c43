//! Pixel operations on `u8` HWC buffers shared by the readers: decoding, resizing, cropping.

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, Luma, Rgb};

/// Decode an encoded image (format guessed from the content, not the extension) to RGB8.
pub fn decode_rgb(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    if w == 0 || h == 0 {
        return Err("image has zero size".into());
    }
    Ok((h as usize, w as usize, rgb.into_raw()))
}

/// Resize so the shorter side is `size` (bilinear with antialiasing), then take the central
/// `size`×`size` crop, like torchvision's `Resize(size)` + `CenterCrop(size)`. HWC in, HWC out;
/// `c` is 1 or 3. An image already `size`×`size` is returned unchanged.
pub fn resize_center_crop(h: usize, w: usize, c: usize, px: &[u8], size: usize) -> Vec<u8> {
    if h == size && w == size {
        return px.to_vec();
    }
    let (nh, nw) = if h <= w {
        (
            size,
            ((w as f64 * size as f64 / h as f64).round() as usize).max(size),
        )
    } else {
        (
            ((h as f64 * size as f64 / w as f64).round() as usize).max(size),
            size,
        )
    };
    let resized: Vec<u8> = match c {
        1 => {
            let img: ImageBuffer<Luma<u8>, Vec<u8>> =
                ImageBuffer::from_raw(w as u32, h as u32, px.to_vec()).unwrap_or_default();
            DynamicImage::ImageLuma8(img)
                .resize_exact(nw as u32, nh as u32, FilterType::Triangle)
                .to_luma8()
                .into_raw()
        }
        _ => {
            let img: ImageBuffer<Rgb<u8>, Vec<u8>> =
                ImageBuffer::from_raw(w as u32, h as u32, px.to_vec()).unwrap_or_default();
            DynamicImage::ImageRgb8(img)
                .resize_exact(nw as u32, nh as u32, FilterType::Triangle)
                .to_rgb8()
                .into_raw()
        }
    };
    let top = (nh - size) / 2;
    let left = (nw - size) / 2;
    let mut out = Vec::with_capacity(size * size * c);
    for y in top..top + size {
        let row = (y * nw + left) * c;
        out.extend_from_slice(&resized[row..row + size * c]);
    }
    out
}

/// Encode HWC pixels (1 or 3 channels) as PNG.
pub fn encode_png(h: usize, w: usize, c: usize, px: &[u8]) -> Result<Vec<u8>, String> {
    let color = match c {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        4 => image::ExtendedColorType::Rgba8,
        _ => return Err(format!("cannot encode {c} channels as PNG")),
    };
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut out);
    image::ImageEncoder::write_image(enc, px, w as u32, h as u32, color)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_takes_the_centre() {
        // 2 rows × 4 columns grey, resize to 2: shorter side already 2, crop columns 1..3.
        let px = vec![0, 10, 20, 30, 40, 50, 60, 70];
        let out = resize_center_crop(2, 4, 1, &px, 2);
        assert_eq!(out, vec![10, 20, 50, 60]);
    }

    #[test]
    fn png_roundtrip() {
        let px: Vec<u8> = (0..4 * 5 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let png = encode_png(4, 5, 3, &px).unwrap();
        assert_eq!(decode_rgb(&png).unwrap(), (4, 5, px));
    }
}
