//! Rx queue placement: which worker polls which (port, queue).
//!
//! Queues are dealt round-robin over the workers in port order, queue order — the
//! same first placement OVS makes before it measures load. Ports added while running
//! put each queue on the worker with the fewest; an operator can pin a queue to a
//! worker or deal them all again (`sluicectl pmd rxq-pin`, `pmd rxq-rebalance`).

/// One rx queue of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxqRef {
    /// Port index.
    pub port: usize,
    /// Queue number.
    pub queue: u16,
}

/// `rx_queues[p]` queues on port `p`, dealt over `workers` workers.
pub fn round_robin(rx_queues: &[u16], workers: usize) -> Vec<Vec<RxqRef>> {
    let mut out = vec![Vec::new(); workers.max(1)];
    let mut next = 0;
    for (port, &n) in rx_queues.iter().enumerate() {
        for queue in 0..n {
            out[next].push(RxqRef { port, queue });
            next = (next + 1) % out.len();
        }
    }
    out.truncate(workers);
    out
}

/// The worker polling the fewest queues (the lowest id among equals).
pub fn least_loaded(placement: &[Vec<RxqRef>]) -> usize {
    placement.iter().enumerate().min_by_key(|(w, q)| (q.len(), *w)).map(|(w, _)| w).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deals_every_queue_exactly_once() {
        let p = round_robin(&[2, 1, 3], 2);
        let r = |port, queue| RxqRef { port, queue };
        assert_eq!(p[0], vec![r(0, 0), r(1, 0), r(2, 1)]);
        assert_eq!(p[1], vec![r(0, 1), r(2, 0), r(2, 2)]);
        assert!(round_robin(&[1], 0).is_empty());
        assert_eq!(least_loaded(&[vec![r(0, 0)], vec![], vec![]]), 1);
        assert_eq!(least_loaded(&[]), 0);
    }
}
