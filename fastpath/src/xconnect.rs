//! Cross-connect: every packet received on port A leaves on port B. The simplest
//! forwarding stage, and the baseline the benchmarks compare against testpmd's io mode.

use crate::egress::Egress;
use crate::stats::{DropReason, WorkerStats};
use crate::{Burst, BurstProcessor, PortIndex};

/// A port-to-port table: `table[in] = Some(out)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossConnect {
    table: Box<[Option<PortIndex>]>,
}

impl CrossConnect {
    /// Build from `(from, to)` pairs over `ports` ports. A port may appear as `from`
    /// at most once; the caller validates names and indices.
    pub fn new(ports: usize, pairs: &[(PortIndex, PortIndex)]) -> Self {
        let mut table = vec![None; ports];
        for &(from, to) in pairs {
            if from < ports && to < ports {
                table[from] = Some(to);
            }
        }
        Self { table: table.into_boxed_slice() }
    }

    /// Send packets from `from` to `to` from now on (`None`: nowhere, counted as
    /// `no_route`), growing the table as needed.
    pub fn set(&mut self, from: PortIndex, to: Option<PortIndex>) {
        if from >= self.table.len() {
            let mut v = std::mem::take(&mut self.table).into_vec();
            v.resize(from + 1, None);
            self.table = v.into_boxed_slice();
        }
        self.table[from] = to;
    }

    /// Where packets from `port` go.
    pub fn out_port(&self, port: PortIndex) -> Option<PortIndex> {
        self.table.get(port).copied().flatten()
    }
}

impl BurstProcessor for CrossConnect {
    #[inline(always)]
    fn process(&mut self, in_port: PortIndex, burst: &mut Burst, egress: &mut Egress, stats: &WorkerStats) {
        match self.out_port(in_port) {
            Some(out) => egress.send(out, burst, stats),
            None => stats.drop_packets(DropReason::NoRoute, burst.free_all()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_pairs_and_ignores_out_of_range() {
        let x = CrossConnect::new(3, &[(0, 1), (1, 0), (2, 7)]);
        assert_eq!(x.out_port(0), Some(1));
        assert_eq!(x.out_port(1), Some(0));
        assert_eq!(x.out_port(2), None);
        assert_eq!(x.out_port(99), None);
        let mut x = x;
        x.set(5, Some(0));
        x.set(0, None);
        assert_eq!((x.out_port(5), x.out_port(0), x.out_port(1)), (Some(0), None, Some(0)));
    }
}
