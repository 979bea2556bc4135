//! DPDK's global log level (`rte_log_set_global_level`), by the names DPDK's
//! `--log-level` option takes.

use crate::raw;

/// DPDK's level names, from 1 (`emerg`) to 8 (`debug`).
pub const LEVELS: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

/// The level number of `name` (`error` and `warn` are accepted too).
pub fn level_of(name: &str) -> Option<u32> {
    let n = match name.to_ascii_lowercase().as_str() {
        "error" => "err",
        "warn" => "warning",
        other => return LEVELS.iter().position(|l| *l == other).map(|i| i as u32 + 1),
    };
    LEVELS.iter().position(|l| *l == n).map(|i| i as u32 + 1)
}

/// The name of level `n`.
pub fn name_of(n: u32) -> &'static str {
    LEVELS.get((n as usize).wrapping_sub(1)).copied().unwrap_or("unknown")
}

/// DPDK's global log level now.
pub fn global_level() -> u32 {
    // SAFETY: reads a global integer; needs no initialisation.
    unsafe { raw::rte_log_get_global_level() }
}

/// Set DPDK's global log level; returns the previous one. Fails on a name DPDK does
/// not have.
pub fn set_global_level(name: &str) -> Result<u32, String> {
    let Some(n) = level_of(name) else {
        return Err(format!("unknown log level {name:?}; levels: {}", LEVELS.join(", ")));
    };
    let prev = global_level();
    // SAFETY: writes a global integer (DPDK guards the range, checked above).
    unsafe { raw::rte_log_set_global_level(n) };
    Ok(prev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_level_is_set() {
        assert_eq!(level_of("debug"), Some(8));
        assert_eq!(level_of("ERROR"), Some(4));
        assert_eq!(level_of("warn"), Some(5));
        assert_eq!(level_of("loud"), None);
        assert_eq!(name_of(7), "info");
        assert_eq!(name_of(0), "unknown");
        let prev = set_global_level("notice").unwrap();
        assert_eq!(global_level(), 6);
        set_global_level(name_of(prev)).unwrap();
        assert!(set_global_level("loud").unwrap_err().contains("levels: emerg"));
    }
}
