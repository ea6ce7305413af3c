//! The vector instructions the kernels are written in, and which set runs here.
//!
//! Every kernel is generic over [`Simd`] and instantiated three times: AVX-512 (16 lanes),
//! AVX2 + FMA (8 lanes) and a portable fallback. Each output element is one lane of one
//! accumulator that sums its terms in a fixed order with fused multiply-adds, whatever the
//! vector width, so the three produce bit-identical results (tested) and a recording made on
//! one machine replays exactly on the other.

use std::sync::OnceLock;

/// The instruction sets the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Floats per vector register in this set.
    pub fn lanes(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Avx512::LANES,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Avx2::LANES,
            _ => Portable::LANES,
        }
    }

    /// Whether this CPU can run the set (the portable one always).
    pub fn is_available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
                Isa::Avx2 => {
                    std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                }
                Isa::Portable => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Portable
        }
    }

    /// The set the kernels run: the widest this CPU has, AVX-512 only in builds with the
    /// `avx512` feature (as for gemm's kernels, so `--no-default-features` runs the AVX2 kernels
    /// everywhere); `RSLAD_TUI_CONV_ISA=avx2` or `=portable` forces a narrower one, for
    /// measurements and tests. Decided once per process.
    pub fn detected() -> Isa {
        static CHOSEN: OnceLock<Isa> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let widest = [Isa::Avx512, Isa::Avx2, Isa::Portable]
                .into_iter()
                .find(|isa| isa.is_available() && (*isa != Isa::Avx512 || cfg!(feature = "avx512")))
                .unwrap_or(Isa::Portable);
            match std::env::var("RSLAD_TUI_CONV_ISA").as_deref() {
                Ok("avx2") if Isa::Avx2.is_available() && widest != Isa::Portable => Isa::Avx2,
                Ok("portable") => Isa::Portable,
                Ok("avx512") | Err(_) => widest,
                Ok(other) => {
                    eprintln!(
                        "RSLAD_TUI_CONV_ISA={other} is not available here; using {}",
                        widest.name()
                    );
                    widest
                }
            }
        })
    }
}

/// Who made this CPU, where the engines' rules follow measurements that differ between the
/// two: the channel engine's with AVX-512 (`channel_forward::chosen`,
/// `channels::chosen_for_input_grad`). On a Zen 4 (AMD, AVX-512 on 256-bit units) it
/// was faster than the main and position engines on long reductions and at stride 2; on an Ice
/// Lake (Intel, full-width AVX-512) 0.4–0.9× as fast on both (docs/performance.md, "An Ice
/// Lake guest"). The engines give the same bits, so the rules change the speed only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Amd,
    /// Intel, and any other maker (none with AVX-512 measured).
    Intel,
}

impl Vendor {
    /// The maker CPUID names, or the one `RSLAD_TUI_CONV_VENDOR=amd` or `=intel` asks for (to
    /// measure one rule against the other on one machine). Decided once per process.
    pub fn detected() -> Vendor {
        static CHOSEN: OnceLock<Vendor> = OnceLock::new();
        *CHOSEN.get_or_init(|| match std::env::var("RSLAD_TUI_CONV_VENDOR").as_deref() {
            Ok("amd") => Vendor::Amd,
            Ok("intel") => Vendor::Intel,
            Ok(other) => {
                eprintln!("RSLAD_TUI_CONV_VENDOR={other} is neither `amd` nor `intel`; ignored");
                Vendor::of_this_cpu()
            }
            Err(_) => Vendor::of_this_cpu(),
        })
    }

    fn of_this_cpu() -> Vendor {
        match cpuid_maker() {
            Some(name) if &name == b"AuthenticAMD" => Vendor::Amd,
            _ => Vendor::Intel,
        }
    }
}

/// The maker's name CPUID's leaf 0 spells in EBX, EDX, ECX ("AuthenticAMD", "GenuineIntel").
fn cpuid_maker() -> Option<[u8; 12]> {
    #[cfg(target_arch = "x86_64")]
    {
        #[allow(unused_unsafe)]
        // SAFETY: every x86_64 CPU has CPUID and its leaf 0.
        let id = unsafe { std::arch::x86_64::__cpuid(0) };
        let mut name = [0; 12];
        for (part, register) in name.chunks_exact_mut(4).zip([id.ebx, id.edx, id.ecx]) {
            part.copy_from_slice(&register.to_le_bytes());
        }
        Some(name)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// One vector register's worth of f32 lanes and the operations the kernels need.
///
/// # Safety
/// The methods are only called from functions compiled for the instruction set (see
/// `run_on`), on pointers valid for `LANES` floats (the `_lanes` methods: for the lanes they
/// name; the byte methods: for their `n ≤ LANES` bytes).
// This section covers every method below; clippy would have it repeated on each.
#[allow(clippy::missing_safety_doc)]
pub trait Simd: Copy {
    /// The set these vectors belong to (for kernels that tile differently per set).
    const ISA: Isa;
    const LANES: usize;
    /// Output rows of the forward/input-gradient register tile.
    const ROWS: usize;
    type V: Copy;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    /// Loads lanes `start..end` from `p + start..p + end`, the other lanes zero; `p` may point
    /// outside the allocation (only the loaded lanes must be inside it).
    unsafe fn load_lanes(p: *const f32, start: usize, end: usize) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Stores lanes `start..end` of `v` at `p + start..p + end`; `p` itself may point before
    /// the allocation (only the stored lanes must be inside it).
    unsafe fn store_lanes(p: *mut f32, v: Self::V, start: usize, end: usize);
    /// [`Simd::load_lanes`], a whole-vector load when the lanes are all of them.
    #[inline(always)]
    unsafe fn load_part(p: *const f32, start: usize, end: usize) -> Self::V {
        // SAFETY: the caller's, as for `load_lanes`.
        unsafe {
            if start == 0 && end == Self::LANES {
                Self::load(p)
            } else {
                Self::load_lanes(p, start, end)
            }
        }
    }
    /// [`Simd::store_lanes`], a whole-vector store when the lanes are all of them.
    #[inline(always)]
    unsafe fn store_part(p: *mut f32, v: Self::V, start: usize, end: usize) {
        // SAFETY: the caller's, as for `store_lanes`.
        unsafe {
            if start == 0 && end == Self::LANES {
                Self::store(p, v)
            } else {
                Self::store_lanes(p, v, start, end)
            }
        }
    }
    /// Whether a store of some lanes costs many times a whole-vector store, so that it pays to
    /// gather the lanes to the vector's front first ([`Simd::permute`]): AVX2's `vmaskmovps`
    /// takes about 30 cycles on AMD Zen 3 (10 ns a store, against 1.5 for a permute and a plain
    /// store; docs/performance.md). AVX-512's masked stores are as fast as plain ones.
    const PACK_PARTIAL_STORES: bool = false;
    /// Lane `i` of the result is lane `index[i]` of `v` (only the first `LANES` of `index`).
    unsafe fn permute(v: Self::V, index: &[u32; 16]) -> Self::V;
    /// `v` where `out > 0` or `out` is NaN, else +0: the ReLU's backward step given its output
    /// (burn's rule: the gradient is zeroed where the output is ≤ 0).
    unsafe fn relu_mask(v: Self::V, out: Self::V) -> Self::V;
    /// `a · b + c`, rounded once.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`, `a − b`, `a · b` and `a / b` lane by lane, each rounded as f32's operators round
    /// them (an epilogue that must give the bits of scalar code: [`super::norm`]).
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// The bits of `a` or `b`: two vectors whose set lanes do not overlap (the others +0),
    /// merged exactly (an addition would turn a −0 into +0).
    unsafe fn or(a: Self::V, b: Self::V) -> Self::V;
    /// The bits of `a` and `b`: with `b` a lane mask (all bits set, or none), `a` where it is
    /// set and +0 elsewhere, whatever `a` holds there (NaN included).
    unsafe fn and(a: Self::V, b: Self::V) -> Self::V;
    /// Lanes `0, 2, 4, …` and lanes `1, 3, 5, …` of the `2 · LANES` values `lo` then `hi`
    /// (max pooling's two columns of a window).
    unsafe fn deinterleave(lo: Self::V, hi: Self::V) -> (Self::V, Self::V);
    /// The inverse of [`Simd::deinterleave`]: `even` and `odd` lane by lane in turn, the first
    /// `LANES` of those values, then the rest.
    unsafe fn interleave(even: Self::V, odd: Self::V) -> (Self::V, Self::V);
    /// `(v, index)` in the lanes where `v > best` or `v` is NaN, `(best, at)` in the others:
    /// one step of max pooling's scan of a window (the first maximum wins, a NaN always wins).
    unsafe fn max_step(
        best: Self::V,
        at: Self::V,
        v: Self::V,
        index: Self::V,
    ) -> (Self::V, Self::V);
    /// `v` in the lanes where `at == index`, +0 in the others.
    unsafe fn select_equal(at: Self::V, index: Self::V, v: Self::V) -> Self::V;
    /// Lanes `0..n` of `v` (n ≤ LANES), whole numbers 0–255 held as floats, stored as bytes at
    /// `p..p + n`.
    unsafe fn store_bytes(p: *mut u8, v: Self::V, n: usize);
    /// The `n ≤ LANES` bytes at `p..p + n` as floats in lanes `0..n`, the other lanes zero.
    unsafe fn load_bytes(p: *const u8, n: usize) -> Self::V;
    /// The first `LANES` vectors, read as a `LANES` × `LANES` matrix, transposed in place (the
    /// others untouched): `log2(LANES)` rounds of [`Simd::interleave`], round pairs vector `j`
    /// with vector `j + LANES / 2` (the weight gradient's rows of channels per position, the
    /// channel engine's planes).
    #[inline(always)]
    unsafe fn transpose(block: &mut [Self::V; 16]) {
        let half = Self::LANES / 2;
        for _round in 0..Self::LANES.trailing_zeros() {
            let mut next = *block;
            for j in 0..half {
                // SAFETY: plain lane moves.
                (next[2 * j], next[2 * j + 1]) =
                    unsafe { Self::interleave(block[j], block[j + half]) };
            }
            *block = next;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Isa, Simd};
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub struct Avx512;

    impl Simd for Avx512 {
        const ISA: Isa = Isa::Avx512;
        const LANES: usize = 16;
        const ROWS: usize = 8;
        type V = __m512;
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_lanes(p: *const f32, start: usize, end: usize) -> __m512 {
            let mask = ((1u32 << end) - 1) & !((1u32 << start) - 1);
            unsafe { _mm512_maskz_loadu_ps(mask as __mmask16, p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            unsafe { _mm512_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn store_lanes(p: *mut f32, v: __m512, start: usize, end: usize) {
            let mask = ((1u32 << end) - 1) & !((1u32 << start) - 1);
            unsafe { _mm512_mask_storeu_ps(p, mask as __mmask16, v) }
        }
        #[inline(always)]
        unsafe fn permute(v: __m512, index: &[u32; 16]) -> __m512 {
            unsafe { _mm512_permutexvar_ps(_mm512_loadu_si512(index.as_ptr().cast()), v) }
        }
        #[inline(always)]
        unsafe fn relu_mask(v: __m512, out: __m512) -> __m512 {
            unsafe {
                let keep = _mm512_cmp_ps_mask::<_CMP_NLE_UQ>(out, _mm512_setzero_ps());
                _mm512_maskz_mov_ps(keep, v)
            }
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_sub_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn div(a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_div_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn or(a: __m512, b: __m512) -> __m512 {
            // `_mm512_or_ps` needs AVX-512 DQ; the integer form only F.
            unsafe {
                _mm512_castsi512_ps(_mm512_or_si512(
                    _mm512_castps_si512(a),
                    _mm512_castps_si512(b),
                ))
            }
        }
        #[inline(always)]
        unsafe fn and(a: __m512, b: __m512) -> __m512 {
            // `_mm512_and_ps` needs AVX-512 DQ, as `_mm512_or_ps` does.
            unsafe {
                _mm512_castsi512_ps(_mm512_and_si512(
                    _mm512_castps_si512(a),
                    _mm512_castps_si512(b),
                ))
            }
        }
        #[inline(always)]
        unsafe fn deinterleave(lo: __m512, hi: __m512) -> (__m512, __m512) {
            unsafe {
                let even =
                    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                let odd =
                    _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                (
                    _mm512_permutex2var_ps(lo, even, hi),
                    _mm512_permutex2var_ps(lo, odd, hi),
                )
            }
        }
        #[inline(always)]
        unsafe fn interleave(even: __m512, odd: __m512) -> (__m512, __m512) {
            unsafe {
                let first =
                    _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
                let second =
                    _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
                (
                    _mm512_permutex2var_ps(even, first, odd),
                    _mm512_permutex2var_ps(even, second, odd),
                )
            }
        }
        #[inline(always)]
        unsafe fn max_step(best: __m512, at: __m512, v: __m512, index: __m512) -> (__m512, __m512) {
            unsafe {
                let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                    | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                (
                    _mm512_mask_mov_ps(best, take, v),
                    _mm512_mask_mov_ps(at, take, index),
                )
            }
        }
        #[inline(always)]
        unsafe fn select_equal(at: __m512, index: __m512, v: __m512) -> __m512 {
            unsafe { _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(at, index), v) }
        }
        #[inline(always)]
        unsafe fn store_bytes(p: *mut u8, v: __m512, n: usize) {
            let mask = ((1u32 << n) - 1) as __mmask16;
            unsafe { _mm512_mask_cvtepi32_storeu_epi8(p.cast(), mask, _mm512_cvttps_epi32(v)) }
        }
        #[inline(always)]
        unsafe fn load_bytes(p: *const u8, n: usize) -> __m512 {
            unsafe {
                let bytes = if n == 16 {
                    _mm_loadu_si128(p.cast())
                } else {
                    let mut buffer = [0u8; 16];
                    for (lane, byte) in buffer.iter_mut().enumerate().take(n) {
                        *byte = p.add(lane).read();
                    }
                    _mm_loadu_si128(buffer.as_ptr().cast())
                };
                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes))
            }
        }
    }

    #[derive(Clone, Copy)]
    pub struct Avx2;

    impl Simd for Avx2 {
        const ISA: Isa = Isa::Avx2;
        const LANES: usize = 8;
        const ROWS: usize = 6;
        type V = __m256;
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn load_lanes(p: *const f32, start: usize, end: usize) -> __m256 {
            unsafe {
                let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let from = _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(start as i32 - 1));
                let to = _mm256_cmpgt_epi32(_mm256_set1_epi32(end as i32), lane);
                _mm256_maskload_ps(p, _mm256_and_si256(from, to))
            }
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            unsafe { _mm256_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn store_lanes(p: *mut f32, v: __m256, start: usize, end: usize) {
            unsafe {
                let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let from = _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(start as i32 - 1));
                let to = _mm256_cmpgt_epi32(_mm256_set1_epi32(end as i32), lane);
                _mm256_maskstore_ps(p, _mm256_and_si256(from, to), v)
            }
        }
        const PACK_PARTIAL_STORES: bool = true;
        #[inline(always)]
        unsafe fn permute(v: __m256, index: &[u32; 16]) -> __m256 {
            unsafe { _mm256_permutevar8x32_ps(v, _mm256_loadu_si256(index.as_ptr().cast())) }
        }
        #[inline(always)]
        unsafe fn relu_mask(v: __m256, out: __m256) -> __m256 {
            unsafe { _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(out, _mm256_setzero_ps()), v) }
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn sub(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_sub_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_mul_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn div(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_div_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn or(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_or_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn and(a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_and_ps(a, b) }
        }
        #[inline(always)]
        unsafe fn deinterleave(lo: __m256, hi: __m256) -> (__m256, __m256) {
            unsafe {
                // Within each 128-bit half: (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6); then the
                // 64-bit pairs in order 0, 2, 1, 3.
                let even = _mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(lo, hi));
                let odd = _mm256_castps_pd(_mm256_shuffle_ps::<0b11_01_11_01>(lo, hi));
                (
                    _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(even)),
                    _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(odd)),
                )
            }
        }
        /// The usual 8 × 8 transpose in 24 shuffles (pairs of rows, then of pairs, then the
        /// 128-bit halves) instead of the default's 48: half of them cross the halves.
        #[inline(always)]
        unsafe fn transpose(block: &mut [__m256; 16]) {
            unsafe {
                let r = *block;
                let t = [
                    _mm256_unpacklo_ps(r[0], r[1]),
                    _mm256_unpackhi_ps(r[0], r[1]),
                    _mm256_unpacklo_ps(r[2], r[3]),
                    _mm256_unpackhi_ps(r[2], r[3]),
                    _mm256_unpacklo_ps(r[4], r[5]),
                    _mm256_unpackhi_ps(r[4], r[5]),
                    _mm256_unpacklo_ps(r[6], r[7]),
                    _mm256_unpackhi_ps(r[6], r[7]),
                ];
                let q = [
                    _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                    _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                    _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                    _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                    _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                    _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                    _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                    _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
                ];
                for i in 0..4 {
                    block[i] = _mm256_permute2f128_ps::<0x20>(q[i], q[i + 4]);
                    block[i + 4] = _mm256_permute2f128_ps::<0x31>(q[i], q[i + 4]);
                }
            }
        }
        #[inline(always)]
        unsafe fn interleave(even: __m256, odd: __m256) -> (__m256, __m256) {
            unsafe {
                // (e0 o0 e1 o1 | e4 o4 e5 o5) and (e2 o2 e3 o3 | e6 o6 e7 o7), then the halves.
                let low = _mm256_unpacklo_ps(even, odd);
                let high = _mm256_unpackhi_ps(even, odd);
                (
                    _mm256_permute2f128_ps::<0x20>(low, high),
                    _mm256_permute2f128_ps::<0x31>(low, high),
                )
            }
        }
        #[inline(always)]
        unsafe fn max_step(best: __m256, at: __m256, v: __m256, index: __m256) -> (__m256, __m256) {
            unsafe {
                let take = _mm256_or_ps(
                    _mm256_cmp_ps::<_CMP_GT_OQ>(v, best),
                    _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v),
                );
                (
                    _mm256_blendv_ps(best, v, take),
                    _mm256_blendv_ps(at, index, take),
                )
            }
        }
        #[inline(always)]
        unsafe fn select_equal(at: __m256, index: __m256, v: __m256) -> __m256 {
            unsafe { _mm256_and_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(at, index), v) }
        }
        #[inline(always)]
        unsafe fn store_bytes(p: *mut u8, v: __m256, n: usize) {
            unsafe {
                // Packed to 16 and then 8 bits within each 128-bit half: lanes 0–3 are the
                // first four bytes of the low half, lanes 4–7 of the high half.
                let words = _mm256_cvttps_epi32(v);
                let bytes = _mm256_packus_epi16(
                    _mm256_packs_epi32(words, words),
                    _mm256_packs_epi32(words, words),
                );
                let low = _mm256_extract_epi32::<0>(bytes) as u32 as u64;
                let high = _mm256_extract_epi32::<4>(bytes) as u32 as u64;
                let all = low | (high << 32);
                if n == 8 {
                    p.cast::<u64>().write_unaligned(all);
                } else {
                    for (lane, byte) in all.to_le_bytes().into_iter().enumerate().take(n) {
                        p.add(lane).write(byte);
                    }
                }
            }
        }
        #[inline(always)]
        unsafe fn load_bytes(p: *const u8, n: usize) -> __m256 {
            unsafe {
                let all = if n == 8 {
                    p.cast::<i64>().read_unaligned()
                } else {
                    let mut all = [0u8; 8];
                    for (lane, byte) in all.iter_mut().enumerate().take(n) {
                        *byte = p.add(lane).read();
                    }
                    i64::from_le_bytes(all)
                };
                let bytes = _mm_cvtsi64_si128(all);
                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes))
            }
        }
    }
}

/// Plain Rust, 8 lanes, `f32::mul_add` (fused, so it rounds as the vector kernels do).
#[derive(Clone, Copy)]
pub struct Portable;

impl Simd for Portable {
    const ISA: Isa = Isa::Portable;
    const LANES: usize = 8;
    const ROWS: usize = 4;
    type V = [f32; 8];
    #[inline(always)]
    unsafe fn splat(x: f32) -> [f32; 8] {
        [x; 8]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> [f32; 8] {
        unsafe { p.cast::<[f32; 8]>().read_unaligned() }
    }
    #[inline(always)]
    unsafe fn load_lanes(p: *const f32, start: usize, end: usize) -> [f32; 8] {
        std::array::from_fn(|lane| {
            if (start..end).contains(&lane) {
                unsafe { p.wrapping_add(lane).read() }
            } else {
                0.0
            }
        })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: [f32; 8]) {
        unsafe { p.cast::<[f32; 8]>().write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn store_lanes(p: *mut f32, v: [f32; 8], start: usize, end: usize) {
        for (lane, value) in v.iter().enumerate().take(end).skip(start) {
            unsafe { p.wrapping_add(lane).write(*value) }
        }
    }
    #[inline(always)]
    unsafe fn permute(v: [f32; 8], index: &[u32; 16]) -> [f32; 8] {
        std::array::from_fn(|i| v[index[i] as usize])
    }
    #[inline(always)]
    unsafe fn relu_mask(v: [f32; 8], out: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| relu_backward(v[i], out[i]))
    }
    #[inline(always)]
    unsafe fn fma(a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i].mul_add(b[i], c[i]))
    }
    #[inline(always)]
    unsafe fn add(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    unsafe fn sub(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] - b[i])
    }
    #[inline(always)]
    unsafe fn mul(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] * b[i])
    }
    #[inline(always)]
    unsafe fn div(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| a[i] / b[i])
    }
    #[inline(always)]
    unsafe fn or(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| f32::from_bits(a[i].to_bits() | b[i].to_bits()))
    }
    #[inline(always)]
    unsafe fn and(a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| f32::from_bits(a[i].to_bits() & b[i].to_bits()))
    }
    #[inline(always)]
    unsafe fn deinterleave(lo: [f32; 8], hi: [f32; 8]) -> ([f32; 8], [f32; 8]) {
        let at = |i: usize| if i < 8 { lo[i] } else { hi[i - 8] };
        (
            std::array::from_fn(|i| at(2 * i)),
            std::array::from_fn(|i| at(2 * i + 1)),
        )
    }
    #[inline(always)]
    unsafe fn interleave(even: [f32; 8], odd: [f32; 8]) -> ([f32; 8], [f32; 8]) {
        let at = |i: usize| {
            if i.is_multiple_of(2) {
                even[i / 2]
            } else {
                odd[i / 2]
            }
        };
        (std::array::from_fn(at), std::array::from_fn(|i| at(i + 8)))
    }
    #[inline(always)]
    unsafe fn max_step(
        best: [f32; 8],
        at: [f32; 8],
        v: [f32; 8],
        index: [f32; 8],
    ) -> ([f32; 8], [f32; 8]) {
        let take: [bool; 8] = std::array::from_fn(|i| v[i] > best[i] || v[i].is_nan());
        (
            std::array::from_fn(|i| if take[i] { v[i] } else { best[i] }),
            std::array::from_fn(|i| if take[i] { index[i] } else { at[i] }),
        )
    }
    #[inline(always)]
    unsafe fn select_equal(at: [f32; 8], index: [f32; 8], v: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|i| if at[i] == index[i] { v[i] } else { 0.0 })
    }
    #[inline(always)]
    unsafe fn store_bytes(p: *mut u8, v: [f32; 8], n: usize) {
        for (lane, value) in v.iter().enumerate().take(n) {
            unsafe { p.add(lane).write(*value as u8) }
        }
    }
    #[inline(always)]
    unsafe fn load_bytes(p: *const u8, n: usize) -> [f32; 8] {
        std::array::from_fn(|lane| {
            if lane < n {
                f32::from(unsafe { p.add(lane).read() })
            } else {
                0.0
            }
        })
    }
}

/// A kernel written once over [`Simd`], for one plan and the arguments `A` of one call;
/// [`run_on`] runs it compiled for the plan's instruction set.
pub(crate) trait SimdKernel<A> {
    /// The kernel on `S`'s vectors. Implementations are `#[inline(always)]`, so that they are
    /// compiled into [`run_on`]'s per-set functions with those sets' target features (a
    /// function they call without it, or a closure, may not be: see first_layer_taps.rs).
    ///
    /// # Safety
    /// `S` runs on this CPU, and the arguments satisfy the kernel's own preconditions.
    unsafe fn run<S: Simd>(&self, args: A);
}

/// Runs `kernel` on `isa`'s vectors: the one place a convolution engine's instruction set
/// becomes code compiled for it.
///
/// # Safety
/// `isa` is available on this CPU (as [`Isa::detected`] ensures), and `args` satisfy the
/// kernel's preconditions.
#[inline(always)]
pub(crate) unsafe fn run_on<A, K: SimdKernel<A>>(isa: Isa, kernel: &K, args: A) {
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => run_avx512(kernel, args),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => run_avx2(kernel, args),
            _ => kernel.run::<Portable>(args),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<A, K: SimdKernel<A>>(kernel: &K, args: A) {
    unsafe { kernel.run::<Avx512>(args) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<A, K: SimdKernel<A>>(kernel: &K, args: A) {
    unsafe { kernel.run::<Avx2>(args) }
}

/// Asks for the cache line at `p` (x86-64; nothing elsewhere).
#[inline(always)]
pub fn prefetch_line(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The ReLU: `x` where `x > 0` or NaN, else +0 (burn's rule, NaN passes).
#[inline(always)]
pub fn relu(x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { x }
}

/// The ReLU's backward step for one element, given its output (see [`Simd::relu_mask`]).
#[inline(always)]
pub fn relu_backward(grad: f32, out: f32) -> f32 {
    if out <= 0.0 { 0.0 } else { grad }
}

#[cfg(test)]
mod tests {
    use super::{Isa, Simd, SimdKernel, Vendor, cpuid_maker, run_on};

    /// CPUID's maker as the kernels read it against the one Linux names.
    #[test]
    fn the_maker_is_the_one_the_operating_system_names() {
        let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
            return;
        };
        let Some(line) = cpuinfo.lines().find(|l| l.starts_with("vendor_id")) else {
            return;
        };
        let named = line.rsplit(' ').next().unwrap_or_default();
        let read = cpuid_maker().expect("x86_64 has CPUID");
        assert_eq!(std::str::from_utf8(&read).unwrap(), named);
        let expected = if named == "AuthenticAMD" {
            Vendor::Amd
        } else {
            Vendor::Intel
        };
        assert_eq!(Vendor::of_this_cpu(), expected);
    }

    /// Transposes a `LANES` × `LANES` matrix of distinct values through [`Simd::transpose`].
    struct TransposeProbe;

    impl SimdKernel<*mut [f32; 256]> for TransposeProbe {
        unsafe fn run<S: Simd>(&self, matrix: *mut [f32; 256]) {
            let lanes = S::LANES;
            unsafe {
                let values = matrix.cast::<f32>();
                let mut block = [S::splat(-1.0); 16];
                for (r, v) in block.iter_mut().enumerate().take(lanes) {
                    *v = S::load(values.add(r * lanes));
                }
                S::transpose(&mut block);
                for (r, v) in block.iter().enumerate().take(lanes) {
                    S::store(values.add(r * lanes), *v);
                }
            }
        }
    }

    #[test]
    fn transpose_swaps_rows_and_columns_on_every_isa() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            if !isa.is_available() {
                continue;
            }
            let lanes = isa.lanes();
            let mut matrix: [f32; 256] = std::array::from_fn(|i| i as f32);
            // SAFETY: the ISA is available; the matrix holds LANES² ≤ 256 values.
            unsafe { run_on(isa, &TransposeProbe, &mut matrix as *mut _) };
            for r in 0..lanes {
                for c in 0..lanes {
                    let expected = (c * lanes + r) as f32;
                    assert_eq!(matrix[r * lanes + c], expected, "{} ({r}, {c})", isa.name());
                }
            }
        }
    }
}
