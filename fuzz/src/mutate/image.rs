//! Image mutations: PNG chunk-aware edits (IHDR fields, chunk lengths, CRCs fixed or not),
//! header-field integers for the other formats, or bytes.

use super::bytes::bytes;
use crate::rng::Rng;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// CRC-32 (ISO-HDLC), as PNG chunks use.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The (offset, length) of each chunk of a PNG, up to the first malformed one.
fn png_chunks(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = PNG_SIGNATURE.len();
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap_or([0; 4])) as usize;
        if at + 12 + len > data.len() {
            break;
        }
        out.push((at, len));
        at += 12 + len;
    }
    out
}

fn fix_crc(data: &mut [u8], at: usize, len: usize) {
    let crc = crc32(&data[at + 4..at + 8 + len]);
    data[at + 8 + len..at + 12 + len].copy_from_slice(&crc.to_be_bytes());
}

/// Dimensions a header might claim.
fn claimed_dimension(rng: &mut Rng) -> u32 {
    *rng.pick(&[
        0u32,
        1,
        2,
        3,
        7,
        32,
        255,
        256,
        4096,
        16383,
        16384,
        16385,
        65535,
        65536,
        100_000,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX,
    ])
}

/// A mutation of an image file: PNG chunk-aware (IHDR width/height/depth/colour type, chunk
/// lengths, CRCs fixed or not), header-field integers for the other formats, or bytes.
pub fn image(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    if data.starts_with(PNG_SIGNATURE) && rng.below(3) != 0 {
        let chunks = png_chunks(data);
        if chunks.is_empty() {
            return bytes(rng, data, others);
        }
        let fix = rng.below(5) != 0;
        let (at, len) = if rng.one_in(2) { chunks[0] } else { *rng.pick(&chunks) };
        match rng.below(7) {
            0 | 1 if &data[at + 4..at + 8] == b"IHDR" && len >= 13 => {
                // width and height: 100000x100000, 0x0, u32::MAX...
                let w = claimed_dimension(rng);
                let h = if rng.one_in(2) { w } else { claimed_dimension(rng) };
                if rng.below(3) != 0 {
                    data[at + 8..at + 12].copy_from_slice(&w.to_be_bytes());
                }
                if rng.below(3) != 0 {
                    data[at + 12..at + 16].copy_from_slice(&h.to_be_bytes());
                }
            }
            2 if &data[at + 4..at + 8] == b"IHDR" && len >= 13 => {
                // bit depth, colour type, compression, filter, interlace
                let field = at + 16 + rng.below(5);
                data[field] = *rng.pick(&[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 16, 255]);
            }
            3 => {
                // chunk length field
                let v = match rng.below(3) {
                    0 => claimed_dimension(rng),
                    1 => (len as u32).wrapping_add(rng.range(1, 8) as u32),
                    _ => (len as u32).wrapping_sub(rng.range(1, 8) as u32),
                };
                data[at..at + 4].copy_from_slice(&v.to_be_bytes());
                return;
            }
            4 => {
                // insert a chunk of a type the decoder interprets
                let kind = *rng.pick(&[
                    &b"tRNS"[..],
                    b"PLTE",
                    b"acTL",
                    b"fcTL",
                    b"fdAT",
                    b"iCCP",
                    b"zTXt",
                    b"gAMA",
                    b"sBIT",
                    b"cICP",
                    b"IDAT",
                    b"IEND",
                    b"eXIf",
                ]);
                let n = rng.small_len(64);
                let mut chunk = (n as u32).to_be_bytes().to_vec();
                chunk.extend_from_slice(kind);
                chunk.extend((0..n).map(|_| rng.byte()));
                let crc = crc32(&chunk[4..]);
                chunk.extend_from_slice(&crc.to_be_bytes());
                let (after, after_len) = *rng.pick(&chunks);
                let pos = after + 12 + after_len;
                data.splice(pos..pos, chunk);
                return;
            }
            5 => {
                // remove or duplicate a chunk
                let chunk = data[at..at + 12 + len].to_vec();
                if rng.one_in(2) {
                    data.drain(at..at + 12 + len);
                } else {
                    data.splice(at..at, chunk);
                }
                return;
            }
            _ => {
                if len > 0 {
                    for _ in 0..rng.range(1, 4) {
                        let i = at + 8 + rng.below(len);
                        data[i] = if rng.one_in(2) { rng.byte() } else { data[i] ^ (1 << rng.below(8)) };
                    }
                }
            }
        }
        if fix {
            fix_crc(data, at, len);
        }
        return;
    }
    if rng.one_in(3) && data.len() > 4 {
        // an integer field in the first 64 bytes (where most formats keep their dimensions)
        let v = claimed_dimension(rng) as u64;
        let width = *rng.pick(&[2usize, 4]);
        let i = rng.below(data.len().min(64));
        let b: Vec<u8> =
            if rng.one_in(2) { v.to_le_bytes()[..width].to_vec() } else { v.to_be_bytes()[8 - width..].to_vec() };
        for (k, byte) in b.into_iter().enumerate() {
            if let Some(slot) = data.get_mut(i + k) {
                *slot = byte;
            }
        }
        return;
    }
    bytes(rng, data, others)
}
