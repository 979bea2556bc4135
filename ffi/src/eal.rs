//! The Environment Abstraction Layer, initialised once per process.
//!
//! `rte_eal_init` cannot run twice in one process (a second call fails with
//! `EALREADY`, even after `rte_eal_cleanup`), so [`Eal::init_once`] keeps the first
//! result: later calls with the same arguments get the same handle, and calls with
//! other arguments get an error rather than a silently different EAL.

use std::ffi::{c_char, CString};
use std::sync::Mutex;

use crate::{raw, DpdkError, Result};

/// Proof that the EAL is initialised. Only [`Eal::init_once`] makes one.
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
}

static EAL: Mutex<Option<&'static Eal>> = Mutex::new(None);

impl Eal {
    /// Initialise the EAL with `args` (`args[0]` is the program name), or return the
    /// handle of the earlier initialisation if it used the same arguments.
    pub fn init_once(args: &[String]) -> Result<&'static Eal> {
        let mut slot = EAL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(eal) = *slot {
            if eal.args == args {
                return Ok(eal);
            }
            return Err(DpdkError::new(
                "rte_eal_init",
                format!("already initialised in this process with {:?}", eal.args),
                libc::EALREADY,
            ));
        }
        let mut cargs = Vec::with_capacity(args.len());
        for a in args {
            cargs.push(
                CString::new(a.as_str()).map_err(|_| {
                    DpdkError::new("rte_eal_init", format!("argument {a:?} contains NUL"), libc::EINVAL)
                })?,
            );
        }
        // The EAL keeps pointers into argv (and may permute it): leak the strings and
        // the array so they live as long as the process.
        let argv: &'static mut [*mut c_char] = Vec::leak(cargs.into_iter().map(|c| c.into_raw()).collect::<Vec<_>>());
        let argc = argv.len() as i32;
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed; the
        // mutex guarantees no concurrent or repeated rte_eal_init in this process.
        let ret = unsafe { raw::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno("rte_eal_init", args.join(" ")));
        }
        let eal: &'static Eal = Box::leak(Box::new(Eal { args: args.to_vec() }));
        *slot = Some(eal);
        Ok(eal)
    }

    /// The handle of an initialised EAL, if any.
    pub fn get() -> Option<&'static Eal> {
        *EAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The EAL for a test binary: no hugepages, no shared config, no PCI scan, 256 MB,
    /// main lcore 0, and a file prefix unique to the process, so test binaries can run
    /// side by side. Every test of one binary shares it. Panics if EAL init fails.
    pub fn for_tests(program: &str) -> &'static Eal {
        let args: Vec<String> = [
            program,
            "--no-huge",
            "--no-shconf",
            "-m",
            "256",
            "--no-pci",
            "--no-telemetry",
            "--log-level=*:warning",
            "-l",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--file-prefix={program}-{}", std::process::id())])
        .collect();
        match Eal::get() {
            Some(eal) => eal,
            None => Eal::init_once(&args).unwrap_or_else(|e| panic!("test EAL init failed: {e}")),
        }
    }

    /// The arguments the EAL was initialised with.
    pub fn args(&self) -> &[String] {
        &self.args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_init_with_other_args_is_refused_with_ealready() {
        let eal = crate::test_eal::eal();
        let mut other = eal.args().to_vec();
        other.push("--no-hpet".into());
        let err = Eal::init_once(&other).unwrap_err();
        assert_eq!(err.errno, libc::EALREADY);
        assert!(err.to_string().contains("already initialised"), "{err}");
        // The same arguments give back the same handle.
        assert!(std::ptr::eq(Eal::init_once(eal.args()).unwrap(), eal));
    }
}
