//! `rte_ring`: a bounded lock-free multi-producer multi-consumer queue of plain values.
//!
//! Elements are copied bitwise into the ring (`rte_ring_*_elem`), so `T` must be
//! `Copy` and its size a multiple of 4 bytes (DPDK's rule). Full rings refuse, never
//! block: callers count and retry (a worker never waits on control).

use std::ffi::CString;
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::ptr::NonNull;

use crate::eal::Eal;
use crate::{raw, DpdkError, Result};

/// A ring of `T` values, safe to use from any number of threads.
#[derive(Debug)]
pub struct Ring<T: Copy + Send> {
    ptr: NonNull<raw::rte_ring>,
    _t: PhantomData<T>,
}

// SAFETY: the ring is created multi-producer/multi-consumer (flags 0), so every
// enqueue/dequeue is thread-safe; it holds plain Copy + Send values.
unsafe impl<T: Copy + Send> Send for Ring<T> {}
// SAFETY: as above.
unsafe impl<T: Copy + Send> Sync for Ring<T> {}

impl<T: Copy + Send> Ring<T> {
    /// Create a ring with room for at least `capacity` elements (`RING_F_EXACT_SZ`).
    /// `name` must be unique in the process.
    pub fn create(_eal: &Eal, name: &str, capacity: u32) -> Result<Self> {
        let esize = size_of::<T>();
        if esize == 0 || !esize.is_multiple_of(4) {
            return Err(DpdkError::new(
                "rte_ring_create_elem",
                format!("ring {name:?}: element size {esize} is not a non-zero multiple of 4"),
                libc::EINVAL,
            ));
        }
        let cname = CString::new(name).map_err(|_| DpdkError::new("rte_ring_create_elem", name, libc::EINVAL))?;
        // SAFETY: EAL initialised (token); cname valid; flags = MP/MC + exact size.
        let ptr = unsafe {
            raw::rte_ring_create_elem(cname.as_ptr(), esize as u32, capacity, raw::SOCKET_ID_ANY, raw::RING_F_EXACT_SZ)
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| {
            DpdkError::from_rte_errno("rte_ring_create_elem", format!("ring {name:?}, {capacity} slots"))
        })?;
        Ok(Self { ptr, _t: PhantomData })
    }

    /// Enqueue as many of `items` as fit; returns how many were taken.
    pub fn enqueue_burst(&self, items: &[T]) -> usize {
        // SAFETY: valid MP ring; items points at items.len() values of the ring's esize.
        unsafe {
            raw::rte_ring_enqueue_burst_elem(
                self.ptr.as_ptr(),
                items.as_ptr().cast(),
                size_of::<T>() as u32,
                items.len() as u32,
                std::ptr::null_mut(),
            ) as usize
        }
    }

    /// Dequeue up to `out.len()` values into the front of `out`; returns the filled prefix.
    pub fn dequeue_burst<'a>(&self, out: &'a mut [MaybeUninit<T>]) -> &'a [T] {
        // SAFETY: valid MC ring; out has room for out.len() elements of esize.
        let n = unsafe {
            raw::rte_ring_dequeue_burst_elem(
                self.ptr.as_ptr(),
                out.as_mut_ptr().cast(),
                size_of::<T>() as u32,
                out.len() as u32,
                std::ptr::null_mut(),
            ) as usize
        };
        // SAFETY: the first n slots were initialised by the dequeue with values that
        // were valid T when enqueued (bitwise copies of Copy values).
        unsafe { std::slice::from_raw_parts(out.as_ptr().cast::<T>(), n) }
    }

    /// Elements queued now.
    pub fn len(&self) -> usize {
        // SAFETY: valid ring; a plain read of its indices.
        unsafe { raw::rte_ring_count(self.ptr.as_ptr()) as usize }
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free slots now.
    pub fn free_count(&self) -> usize {
        // SAFETY: valid ring; a plain read of its indices.
        unsafe { raw::rte_ring_free_count(self.ptr.as_ptr()) as usize }
    }
}

impl<T: Copy + Send> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: we own the ring; &mut self means no one else is using it.
        unsafe { raw::rte_ring_free(self.ptr.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Msg {
        a: u32,
        b: u64,
    }

    #[test]
    fn values_cross_threads_in_order_and_full_ring_refuses() {
        let eal = crate::test_eal::eal();
        let ring: Ring<Msg> = Ring::create(eal, "ring_test_msgs", 8).unwrap();
        let items: Vec<Msg> = (0..10).map(|i| Msg { a: i, b: u64::from(i) * 3 }).collect();
        assert_eq!(ring.enqueue_burst(&items), 8, "exact size: 8 fit, 2 refused");
        assert_eq!(ring.free_count(), 0);
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                let mut buf = [MaybeUninit::uninit(); 16];
                ring.dequeue_burst(&mut buf).to_vec()
            })
            .join()
            .unwrap()
        });
        assert_eq!(got, items[..8]);
        assert!(ring.is_empty());
    }

    #[test]
    fn odd_element_size_is_refused() {
        let eal = crate::test_eal::eal();
        let err = Ring::<[u8; 3]>::create(eal, "ring_test_odd", 8).unwrap_err();
        assert!(err.to_string().contains("element size 3"), "{err}");
    }
}
