//! The AMX tile unit: one output block as four 16×16 float32 accumulator tiles (`tmm0`–`tmm3`),
//! two tiles of the left operand (`tmm4`, `tmm5`) and two of the right (`tmm6`, `tmm7`), 32
//! values of k per step through `tdpbf16ps`.
//!
//! Each block configures the tiles, runs and releases them, so no tile state outlives a call
//! (rayon may run anything on the thread afterwards). Linux hands out the tile registers only
//! after `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, which [`enable`] asks for.

use super::packing::BLOCK;

/// Why this process cannot use AMX, or `Ok` once the tile registers are granted.
pub(super) fn enable() -> Result<(), String> {
    imp::enable()
}

/// `out = A·B` for one block, as [`super::emulated::block`].
///
/// # Safety
/// As [`super::emulated::block`], and [`enable`] must have returned `Ok`.
pub(super) unsafe fn block(a: *const u16, b: *const u16, kp: usize, out: &mut [f32; BLOCK * BLOCK]) {
    // SAFETY: the caller's contract.
    unsafe { imp::block(a, b, kp, out) }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use std::arch::asm;
    use std::arch::x86_64::{__cpuid, __cpuid_count};

    use super::BLOCK;

    /// Bits of CPUID leaf 7 (EDX): AMX-BF16 and AMX-TILE.
    const AMX_BF16: u32 = 1 << 22;
    const AMX_TILE: u32 = 1 << 24;
    /// CPUID leaf 1 (ECX): the OS uses XSAVE, so XCR0 can be read.
    const OSXSAVE: u32 = 1 << 27;
    /// XCR0: the tile configuration and tile data states.
    const XCR0_TILES: u64 = (1 << 17) | (1 << 18);
    /// Linux's `arch_prctl` request and the tile data feature number.
    const ARCH_GET_XCOMP_PERM: libc::c_ulong = 0x1022;
    const ARCH_REQ_XCOMP_PERM: libc::c_ulong = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_ulong = 18;

    pub(super) fn enable() -> Result<(), String> {
        let (leaf1, leaf7) = (__cpuid(1), __cpuid_count(7, 0));
        if leaf7.edx & AMX_TILE == 0 || leaf7.edx & AMX_BF16 == 0 {
            return Err("the CPU has no AMX-BF16 (CPUID)".into());
        }
        if leaf1.ecx & OSXSAVE == 0 {
            return Err("the OS has not enabled XSAVE".into());
        }
        let (low, high): (u32, u32);
        // SAFETY: XGETBV with ECX = 0 reads XCR0; OSXSAVE says the instruction is enabled.
        unsafe {
            asm!("xgetbv", in("ecx") 0u32, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
        };
        let xcr0 = ((high as u64) << 32) | low as u64;
        if xcr0 & XCR0_TILES != XCR0_TILES {
            return Err("the OS does not enable the AMX tile state (XCR0)".into());
        }
        // SAFETY: a plain system call with integer arguments.
        let status = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) };
        if status != 0 {
            return Err(format!(
                "Linux refused the AMX tile registers (arch_prctl ARCH_REQ_XCOMP_PERM: {})",
                std::io::Error::last_os_error()
            ));
        }
        let mut permitted: u64 = 0;
        // SAFETY: the call writes the permitted feature bitmap into `permitted`.
        let status = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mut permitted as *mut u64) };
        if status != 0 || permitted & XCR0_TILES != XCR0_TILES {
            return Err(format!("Linux did not grant the AMX tile state (permitted features {permitted:#x})"));
        }
        Ok(())
    }

    /// The `ldtilecfg` operand: palette 1, eight tiles of 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    const _: () = assert!(std::mem::size_of::<TileConfig>() == 64);

    const CONFIG: TileConfig = {
        let mut bytes_per_row = [0u16; 16];
        let mut rows = [0u8; 16];
        let mut t = 0;
        while t < 8 {
            bytes_per_row[t] = 64;
            rows[t] = 16;
            t += 1;
        }
        TileConfig { palette: 1, start_row: 0, reserved: [0; 14], bytes_per_row, rows }
    };

    pub(super) unsafe fn block(a: *const u16, b: *const u16, kp: usize, out: &mut [f32; BLOCK * BLOCK]) {
        let a_stride = kp * 2;
        let b_stride = 2 * BLOCK * 2;
        // SAFETY: `enable` granted the tiles; the configuration is a valid palette-1 layout.
        unsafe {
            asm!(
                "ldtilecfg [{config}]",
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                config = in(reg) &CONFIG,
                options(nostack, readonly, preserves_flags),
            );
        }
        for step in 0..kp / BLOCK {
            // SAFETY: the tiles read rows inside the packed blocks (the caller's contract).
            unsafe {
                let a0 = a.add(step * BLOCK);
                let a1 = a0.add(16 * kp);
                let b0 = b.add(step * 16 * 2 * BLOCK);
                let b1 = b0.add(32);
                asm!(
                    "tileloadd tmm4, [{a0} + {a_stride}*1]",
                    "tileloadd tmm5, [{a1} + {a_stride}*1]",
                    "tileloadd tmm6, [{b0} + {b_stride}*1]",
                    "tileloadd tmm7, [{b1} + {b_stride}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0,
                    a1 = in(reg) a1,
                    b0 = in(reg) b0,
                    b1 = in(reg) b1,
                    a_stride = in(reg) a_stride,
                    b_stride = in(reg) b_stride,
                    options(nostack, readonly, preserves_flags),
                );
            }
        }
        let c = out.as_mut_ptr();
        // SAFETY: the four 16×16 tiles land in the four quarters of `out` (row stride 128 bytes).
        unsafe {
            asm!(
                "tilestored [{c00} + {stride}*1], tmm0",
                "tilestored [{c01} + {stride}*1], tmm1",
                "tilestored [{c10} + {stride}*1], tmm2",
                "tilestored [{c11} + {stride}*1], tmm3",
                "tilerelease",
                c00 = in(reg) c,
                c01 = in(reg) c.add(16),
                c10 = in(reg) c.add(16 * BLOCK),
                c11 = in(reg) c.add(16 * BLOCK + 16),
                stride = in(reg) BLOCK * 4,
                options(nostack, preserves_flags),
            );
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod imp {
    use super::BLOCK;

    pub(super) fn enable() -> Result<(), String> {
        Err("AMX is used on x86-64 Linux only".into())
    }

    pub(super) unsafe fn block(_: *const u16, _: *const u16, _: usize, _: &mut [f32; BLOCK * BLOCK]) {
        unreachable!("AMX block without AMX: enable() refuses on this platform")
    }
}
