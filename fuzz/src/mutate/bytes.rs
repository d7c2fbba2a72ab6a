//! The byte-level mutations every format shares, and the numbers and literals they draw from.

use crate::rng::Rng;

/// Inputs never grow beyond this many bytes.
pub const MAX_INPUT: usize = 2 << 20;

/// Integers that tend to sit on boundaries (sizes, signs, overflows).
pub const INTERESTING_U64: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    15,
    16,
    31,
    32,
    63,
    64,
    127,
    128,
    255,
    256,
    1023,
    1024,
    4095,
    4096,
    16383,
    16384,
    16385,
    32767,
    32768,
    65535,
    65536,
    100_000,
    1 << 20,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    (1 << 32) + 1,
    1 << 40,
    (1 << 53) + 1,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

/// Number literals a JSON/TOML reader has to refuse or handle: out of range, negative zero,
/// floats where integers are expected, beyond u64.
pub const EXTREME_LITERALS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "0.0",
    "0.5",
    "-0.5",
    "1.0",
    "1e2",
    "1e-400",
    "1e400",
    "-1e400",
    "1e308",
    "-1e308",
    "5e-324",
    "2.2250738585072014e-308",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "100000000000000000000000000000000000000000000000000",
    "01",
    ".5",
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "inf",
    "0x10",
    "\"12\"",
    "\"\"",
    "null",
    "true",
    "[]",
    "{}",
];

/// Caps `data` at [`MAX_INPUT`] bytes.
pub(super) fn put(data: &mut Vec<u8>) {
    data.truncate(MAX_INPUT);
}

/// One generic byte-level mutation of `data`; `others` are inputs to splice from.
pub fn bytes(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
    if data.is_empty() {
        data.extend((0..rng.small_len(16)).map(|_| rng.byte()));
        return;
    }
    let len = data.len();
    match rng.below(13) {
        0 => {
            // bit flips
            for _ in 0..rng.range(1, 4) {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(len);
            data[i] = rng.byte();
        }
        2 => {
            let i = rng.below(len);
            data[i] = *rng.pick(&[0u8, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'"', b'{', b'[', b',', b'-', b'e']);
        }
        3 => {
            // an interesting 16/32/64-bit integer, either endianness
            let v = *rng.pick(INTERESTING_U64);
            let width = *rng.pick(&[2usize, 4, 8]);
            let b: Vec<u8> =
                if rng.one_in(2) { v.to_le_bytes()[..width].to_vec() } else { v.to_be_bytes()[8 - width..].to_vec() };
            let i = rng.below(len);
            for (k, byte) in b.into_iter().enumerate() {
                if let Some(slot) = data.get_mut(i + k) {
                    *slot = byte;
                }
            }
        }
        4 => {
            let i = rng.below(len);
            let delta = rng.range(1, 35) as u8;
            data[i] = if rng.one_in(2) { data[i].wrapping_add(delta) } else { data[i].wrapping_sub(delta) };
        }
        5 => {
            // insert random bytes
            let at = rng.below(len + 1);
            let n = rng.small_len(256);
            let ins: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            data.splice(at..at, ins);
        }
        6 => {
            // insert a copy of one of our own chunks
            let from = rng.below(len);
            let n = rng.small_len(len - from);
            let chunk = data[from..from + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        7 => {
            // delete a range
            let from = rng.below(len);
            let n = rng.small_len(len - from);
            data.drain(from..from + n);
        }
        8 => {
            // truncate
            data.truncate(rng.below(len));
        }
        9 if !others.is_empty() => {
            // splice: our prefix, another input's suffix
            let other = rng.pick(others);
            if !other.is_empty() {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
        10 => {
            // overwrite a range with another range of ourselves
            let from = rng.below(len);
            let n = rng.small_len(len - from);
            let chunk = data[from..from + n].to_vec();
            let to = rng.below(len);
            for (k, b) in chunk.into_iter().enumerate() {
                if let Some(slot) = data.get_mut(to + k) {
                    *slot = b;
                }
            }
        }
        11 => {
            // repeat a byte many times (long runs, big numbers in text)
            let at = rng.below(len + 1);
            let b = if rng.one_in(2) { data[rng.below(len)] } else { rng.byte() };
            let n = rng.small_len(4096);
            data.splice(at..at, std::iter::repeat_n(b, n));
        }
        _ => {
            let n = rng.small_len(64);
            data.extend((0..n).map(|_| rng.byte()));
        }
    }
    put(data);
}

/// Applies 1 to 4 mutations, each chosen by `one`.
pub fn stacked(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>], one: fn(&mut Rng, &mut Vec<u8>, &[Vec<u8>])) {
    let n = match rng.below(8) {
        0..=3 => 1,
        4..=5 => 2,
        6 => 3,
        _ => 4,
    };
    for _ in 0..n {
        one(rng, data, others);
    }
}
