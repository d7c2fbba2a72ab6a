//! Size arithmetic for the kernels: every product of extents is checked, so that an overflowing
//! shape panics with a clear message instead of wrapping into a too-small buffer.

/// `a · b`, panicking with `what` in the message on overflow.
#[track_caller]
pub(crate) fn mul(a: usize, b: usize, what: &str) -> usize {
    a.checked_mul(b).unwrap_or_else(|| panic!("{what}: {a} × {b} overflows usize"))
}

/// The product of `dims`, panicking with `what` in the message on overflow.
#[track_caller]
pub(crate) fn product(dims: &[usize], what: &str) -> usize {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or_else(|| panic!("{what}: the product of {dims:?} overflows usize"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn products_are_checked() {
        assert_eq!(super::product(&[2, 3, 4], "x"), 24);
        assert_eq!(super::mul(6, 7, "x"), 42);
        assert!(std::panic::catch_unwind(|| super::mul(usize::MAX, 2, "x")).is_err());
        assert!(std::panic::catch_unwind(|| super::product(&[1 << 40, 1 << 40], "x")).is_err());
    }
}
