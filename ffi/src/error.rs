//! `rte_errno` and negative return codes as a typed error that names the failing call.

use crate::raw;

/// A failed DPDK call: which call, on what, and the errno it gave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}({subject}): {message} ({errno_name})", errno_name = errno_name(*.errno))]
pub struct DpdkError {
    /// The DPDK function that failed, e.g. `rte_eth_dev_configure`.
    pub call: &'static str,
    /// What it was called on, e.g. `port 0 "in"`.
    pub subject: String,
    /// The positive errno value.
    pub errno: i32,
    /// `rte_strerror(errno)`.
    pub message: String,
}

/// `Result` with a [`DpdkError`].
pub type Result<T, E = DpdkError> = std::result::Result<T, E>;

impl DpdkError {
    /// An error from a call that returned `-errno` (most of ethdev).
    pub fn from_ret(call: &'static str, subject: impl Into<String>, ret: i32) -> Self {
        Self::new(call, subject, ret.saturating_abs())
    }

    /// An error from a call that signals failure out of band and sets `rte_errno`.
    pub fn from_rte_errno(call: &'static str, subject: impl Into<String>) -> Self {
        Self::new(call, subject, rte_errno())
    }

    /// An error with an explicit errno.
    pub fn new(call: &'static str, subject: impl Into<String>, errno: i32) -> Self {
        Self { call, subject: subject.into(), errno, message: strerror(errno) }
    }
}

/// The calling thread's `rte_errno` (a thread-local, read through a C shim).
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: reads this thread's rte_errno; no arguments, no preconditions.
    unsafe { raw::sluice_rte_errno() }
}

fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a static or
    // thread-local NUL-terminated buffer, valid until the next call on this thread.
    let p = unsafe { raw::rte_strerror(errno) };
    if p.is_null() {
        return format!("errno {errno}");
    }
    // SAFETY: non-null NUL-terminated string, copied out immediately.
    unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The symbolic name of an errno value (`EINVAL`, `ENOTSUP`, ...), for messages and matching.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENODEV => "ENODEV",
        libc::ENOMEM => "ENOMEM",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTSUP => "ENOTSUP",
        libc::EALREADY => "EALREADY",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EPROTO => "EPROTO",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        1001 => "E_RTE_SECONDARY",
        1002 => "E_RTE_NO_CONFIG",
        _ => "errno",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_call_subject_and_errno() {
        let e = DpdkError::from_ret("rte_eth_dev_configure", "port 3 \"in\"", -libc::EINVAL);
        let s = e.to_string();
        assert!(s.starts_with("rte_eth_dev_configure(port 3 \"in\"): "), "{s}");
        assert!(s.ends_with("(EINVAL)"), "{s}");
        assert_eq!(e.errno, libc::EINVAL);
    }

    #[test]
    fn rte_errno_roundtrips_through_the_shim() {
        // SAFETY: writes this thread's rte_errno; no preconditions.
        unsafe { raw::sluice_set_rte_errno(libc::ENOSPC) };
        assert_eq!(rte_errno(), libc::ENOSPC);
        let e = DpdkError::from_rte_errno("rte_ring_create", "ring x");
        assert_eq!(e.errno, libc::ENOSPC);
    }
}
