//! Packet mempools (`rte_pktmbuf_pool_create`).
//!
//! A mempool lives for the rest of the process: mbufs taken from it may sit in any
//! port's descriptor ring or any thread's hands, and DPDK gives no way to know when
//! the last one came back, so freeing the pool could never be proven sound. Pools are
//! created once at start-up (and when ports are added), so the leak is bounded.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::eal::Eal;
use crate::{raw, DpdkError, Result};

/// Default data room of an mbuf: 2048 bytes of packet plus the 128-byte headroom.
pub const DEFAULT_DATA_ROOM: u16 = 2048 + 128;

/// A packet mbuf pool. `&'static` once created (see the module doc).
#[derive(Debug)]
pub struct Mempool {
    ptr: NonNull<raw::rte_mempool>,
    name: String,
    size: u32,
}

// SAFETY: rte_mempool is designed for concurrent use from many threads (lockless ring
// backend plus per-lcore caches); the pointer is never freed.
unsafe impl Send for Mempool {}
// SAFETY: as above; every operation we expose is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Create a pool of `size` mbufs with a per-lcore cache of `cache_size` and
    /// `data_room` bytes of buffer each, on NUMA `socket` (`None` = any).
    pub fn create(
        _eal: &Eal,
        name: &str,
        size: u32,
        cache_size: u32,
        data_room: u16,
        socket: Option<u32>,
    ) -> Result<&'static Mempool> {
        let cname = CString::new(name).map_err(|_| DpdkError::new("rte_pktmbuf_pool_create", name, libc::EINVAL))?;
        let socket = socket.map_or(raw::SOCKET_ID_ANY, |s| s as i32);
        // SAFETY: the EAL is initialised (token); cname is a valid C string that DPDK
        // copies; other arguments are plain values DPDK validates.
        let ptr = unsafe { raw::rte_pktmbuf_pool_create(cname.as_ptr(), size, cache_size, 0, data_room, socket) };
        let ptr = NonNull::new(ptr).ok_or_else(|| {
            DpdkError::from_rte_errno("rte_pktmbuf_pool_create", format!("{name:?}, {size} mbufs of {data_room} bytes"))
        })?;
        Ok(Box::leak(Box::new(Mempool { ptr, name: name.to_owned(), size })))
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Total mbufs in the pool.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Mbufs free in the pool (approximate under concurrent use; includes lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool pointer is valid for the process lifetime.
        unsafe { raw::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs taken from the pool (approximate under concurrent use).
    pub fn in_use(&self) -> u32 {
        // SAFETY: as above.
        unsafe { raw::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut raw::rte_mempool {
        self.ptr.as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_reports_size_and_duplicate_name_is_an_error() {
        let eal = crate::test_eal::eal();
        let pool = Mempool::create(eal, "mp_test_dup", 511, 0, DEFAULT_DATA_ROOM, None).unwrap();
        assert_eq!(pool.size(), 511);
        assert_eq!(pool.available(), 511);
        assert_eq!(pool.in_use(), 0);
        let err = Mempool::create(eal, "mp_test_dup", 511, 0, DEFAULT_DATA_ROOM, None).unwrap_err();
        assert_eq!(err.errno, libc::EEXIST, "{err}");
        assert!(err.to_string().contains("mp_test_dup"));
    }
}
