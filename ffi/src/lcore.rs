//! Threads and time: registering non-EAL threads with DPDK, and the TSC.

use crate::eal::Eal;
use crate::{raw, DpdkError, Result};

/// A thread registered with DPDK (it has an lcore id, hence a per-lcore mempool
/// cache: unregistered threads forward at about half speed). Unregisters on drop.
/// Not `Send`: registration belongs to the thread that made it.
#[derive(Debug)]
pub struct ThreadRegistration {
    lcore_id: u32,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ThreadRegistration {
    /// Register the calling thread (`rte_thread_register`).
    pub fn register(_eal: &Eal) -> Result<Self> {
        // SAFETY: the EAL is initialised (we hold its token); registers the calling thread.
        let ret = unsafe { raw::rte_thread_register() };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno("rte_thread_register", "worker thread"));
        }
        Ok(Self { lcore_id: lcore_id(), _not_send: std::marker::PhantomData })
    }

    /// The lcore id DPDK gave this thread.
    pub fn lcore_id(&self) -> u32 {
        self.lcore_id
    }
}

impl Drop for ThreadRegistration {
    fn drop(&mut self) {
        // SAFETY: this thread registered itself in `register` (the type is !Send, so
        // drop runs on that same thread).
        unsafe { raw::rte_thread_unregister() };
    }
}

/// The calling thread's lcore id (`u32::MAX` = LCORE_ID_ANY for unregistered threads).
pub fn lcore_id() -> u32 {
    // SAFETY: reads the per-thread lcore id; valid on any thread.
    unsafe { raw::rte_lcore_id() }
}

/// The time-stamp counter (inline `rdtsc`; DPDK's `rte_rdtsc` is the same instruction
/// behind an out-of-line wrapper call).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    #[allow(unused_unsafe)]
    // SAFETY: rdtsc reads the time-stamp counter; no memory access, always available on x86_64.
    let t = unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: rte_rdtsc reads the platform's cycle counter; no memory access.
    let t = unsafe { raw::rte_rdtsc() };
    t
}

/// Ask the CPU to bring the cache line holding `*r` into all cache levels, without
/// waiting for it: a hint for a load the caller will make soon. No effect on
/// architectures other than x86_64.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` only hints the cache; it never faults or writes memory, and
    // the address comes from a live reference. SSE is baseline on x86_64.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Ask the CPU to bring the cache line holding `*r` close, owned for writing
/// (`prefetchw`), without waiting for it: a hint for stores the caller will make
/// soon to a line another core may hold, so the ownership request is under way
/// before the stores reach it. Falls back to [`prefetch`] where the CPU lacks
/// `prefetchw` (asked once, then cached); no effect on architectures other
/// than x86_64.
#[inline(always)]
pub fn prefetch_write<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    if has_prefetchw() {
        // SAFETY: `prefetchw` only hints the cache; it never faults or changes memory
        // (the line's contents stay as they are), and the address comes from a live
        // reference. The CPU reports the instruction (checked just above).
        unsafe {
            core::arch::asm!("prefetchw [{p}]", p = in(reg) (r as *const T), options(nostack, preserves_flags, readonly))
        }
    } else {
        prefetch(r)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Whether the CPU has `prefetchw` (CPUID 8000_0001h ECX bit 8): asked once, then
/// read from a cached flag.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn has_prefetchw() -> bool {
    match PREFETCHW.load(std::sync::atomic::Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => ask_prefetchw(),
    }
}

/// 0: not asked yet; 1: no `prefetchw`; 2: `prefetchw`.
#[cfg(target_arch = "x86_64")]
static PREFETCHW: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

#[cfg(target_arch = "x86_64")]
#[cold]
fn ask_prefetchw() -> bool {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID is available on every x86_64 CPU and only reads identification
    // registers; leaf 8000_0001h exists on all of them. (Older Rust declares it unsafe.)
    let ecx = unsafe { core::arch::x86_64::__cpuid(0x8000_0001) }.ecx;
    let yes = ecx & 1 << 8 != 0;
    PREFETCHW.store(1 + yes as u8, std::sync::atomic::Ordering::Relaxed);
    yes
}

/// TSC ticks per second, as the EAL calibrated it.
pub fn tsc_hz(_eal: &Eal) -> u64 {
    // SAFETY: the EAL is initialised (token), so the TSC frequency is calibrated.
    unsafe { raw::rte_get_tsc_hz() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_thread_gets_an_lcore_and_the_tsc_advances() {
        let eal = crate::test_eal::eal();
        assert!(tsc_hz(eal) > 100_000_000);
        std::thread::spawn(move || {
            assert_eq!(lcore_id(), u32::MAX, "fresh thread has no lcore");
            let reg = ThreadRegistration::register(eal).unwrap();
            assert_ne!(reg.lcore_id(), u32::MAX);
            assert_eq!(lcore_id(), reg.lcore_id());
            let t = rdtsc();
            assert!(rdtsc() >= t);
            drop(reg);
            assert_eq!(lcore_id(), u32::MAX, "unregistered on drop");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn prefetches_leave_memory_as_it_was() {
        let mut v = [7u64; 16];
        for w in &v {
            prefetch(w);
            prefetch_write(w);
        }
        v[3] = 9;
        prefetch_write(&v[3]);
        assert_eq!(v.iter().sum::<u64>(), 7 * 15 + 9);
        #[cfg(target_arch = "x86_64")]
        {
            // Asked once: the cached answer is the CPU's.
            let asked = has_prefetchw();
            assert_eq!(PREFETCHW.load(std::sync::atomic::Ordering::Relaxed), 1 + asked as u8);
            assert_eq!(has_prefetchw(), ask_prefetchw());
        }
    }
}
