//! Settings spelled as words (`augmentation = "pad-crop-flip"`): one list of spellings per enum,
//! shared by serde, `FromStr` and `Display`, and an error that names the accepted spellings and
//! suggests the closest one.

use std::fmt;

/// A word that is not one of a setting's spellings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSpelling {
    /// What the setting is, e.g. `augmentation`.
    pub what: &'static str,
    /// The text that was given.
    pub given: String,
    /// The accepted spellings.
    pub expected: &'static [&'static str],
}

impl UnknownSpelling {
    /// The accepted spelling closest to [`given`](Self::given), if one is close enough to be a
    /// likely typo.
    pub fn suggestion(&self) -> Option<&'static str> {
        closest(&self.given, self.expected)
    }
}

impl fmt::Display for UnknownSpelling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.given)?;
        if let Some(near) = self.suggestion() {
            write!(f, "; did you mean {near:?}?")?;
        }
        write!(f, " (expected {})", one_of(self.expected))
    }
}

impl std::error::Error for UnknownSpelling {}

/// `a`, `a or b`, `a, b or c`.
pub fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [only] => (*only).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The word of `candidates` most similar to `given` (normalised Damerau-Levenshtein, case
/// insensitive), if at least half of it matches.
pub fn closest(given: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let given = given.trim().to_ascii_lowercase();
    candidates
        .iter()
        .map(|&c| (c, strsim::normalized_damerau_levenshtein(&given, c)))
        .filter(|&(_, score)| score >= 0.5)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// Implements, for a fieldless enum, `ALL`, `VARIANTS`, `as_str`, `Display`, `FromStr`
/// (exact spellings only, error [`UnknownSpelling`]), `Serialize` and `Deserialize` from one list
/// of `Variant => "spelling"` pairs.
macro_rules! spelled_enum {
    ($ty:ident, $what:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in the order of [`VARIANTS`](Self::VARIANTS).
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// The accepted spellings, one per value: the only ones serde, `FromStr` and
            /// `Display` use.
            pub const VARIANTS: &'static [&'static str] = &[$($name),+];

            /// The spelling of this value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::spelling::UnknownSpelling;

            fn from_str(text: &str) -> ::std::result::Result<Self, Self::Err> {
                match text {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::spelling::UnknownSpelling {
                        what: $what,
                        given: text.to_string(),
                        expected: Self::VARIANTS,
                    }),
                }
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use spelled_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_naturally() {
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(one_of(&["a", "b"]), "a or b");
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn suggests_only_near_misses() {
        let words = &["none", "random-resized-crop", "pad-crop-flip"];
        assert_eq!(closest("random-resize-crop", words), Some("random-resized-crop"));
        assert_eq!(closest("random_resized_crop", words), Some("random-resized-crop"));
        assert_eq!(closest("pad-crop", words), Some("pad-crop-flip"));
        assert_eq!(closest("NONE", words), Some("none"));
        assert_eq!(closest("mixup", words), None);
    }
}
