//! Commands from the control side to one worker, with completion tickets.
//!
//! A [`Mailbox`] is a bounded single-consumer ring of boxed closures. The worker
//! checks it once per loop iteration, between bursts (an empty check is one atomic
//! load), runs every waiting command on its own stage, and then publishes how many it
//! has completed. Control [`Poster::post`]s a command, gets a ticket, and
//! [`Poster::wait`]s until the worker's completed count reaches it. The worker never
//! blocks on control: a full ring refuses the post on the control side.
//!
//! This is how a state change becomes visible on return: control posts the change
//! to every worker and waits for every ticket; each worker applies it between two
//! bursts (no packet is half-processed then) and makes the megaflows it
//! invalidates stale before completing (no lookup returns them; they are removed
//! later, see `cache`), so any packet a worker takes after the ticket is complete
//! sees the new state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stats::WorkerStats;
use crate::worker::Io;

/// Work for a worker: runs on its core with its stage, queues and counters.
pub type Command<P> = Box<dyn FnOnce(&mut P, &mut Io, &WorkerStats) + Send>;

/// Commands queued at most per worker.
pub const MAILBOX_DEPTH: usize = 1024;

struct Shared {
    /// Commands the worker has completed.
    done: AtomicU64,
    /// The worker has stopped taking commands.
    closed: AtomicBool,
}

/// The worker's end.
pub struct Mailbox<P> {
    rx: Receiver<Command<P>>,
    shared: Arc<Shared>,
}

impl<P> std::fmt::Debug for Mailbox<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").field("done", &self.shared.done.load(Ordering::Relaxed)).finish()
    }
}

/// Control's end (shareable: posts are serialised so tickets follow ring order).
pub struct Poster<P> {
    tx: Mutex<(SyncSender<Command<P>>, u64)>,
    shared: Arc<Shared>,
}

impl<P> std::fmt::Debug for Poster<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster").field("done", &self.shared.done.load(Ordering::Relaxed)).finish()
    }
}

/// Why a command did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// The ring is full (the worker is not keeping up or not running).
    #[error("the worker's command ring is full ({MAILBOX_DEPTH} commands)")]
    Full,
    /// The worker has stopped.
    #[error("the worker has stopped")]
    Closed,
    /// The worker did not complete the command in time.
    #[error("the worker did not complete the command within {0:?}")]
    Timeout(Duration),
}

/// A connected pair.
pub fn mailbox<P>() -> (Poster<P>, Mailbox<P>) {
    let (tx, rx) = sync_channel(MAILBOX_DEPTH);
    let shared = Arc::new(Shared { done: AtomicU64::new(0), closed: AtomicBool::new(false) });
    (Poster { tx: Mutex::new((tx, 0)), shared: Arc::clone(&shared) }, Mailbox { rx, shared })
}

impl<P> Mailbox<P> {
    /// Run every waiting command. Called by the worker between bursts.
    #[inline(always)]
    pub fn serve(&self, stage: &mut P, io: &mut Io, stats: &WorkerStats) {
        while let Ok(cmd) = self.rx.try_recv() {
            cmd(stage, io, stats);
            // Release: everything the command did happens-before control sees it done.
            self.shared.done.fetch_add(1, Ordering::Release);
        }
    }
}

impl<P> Drop for Mailbox<P> {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
    }
}

impl<P> Poster<P> {
    /// Queue a command; returns its ticket.
    pub fn post(&self, cmd: Command<P>) -> Result<u64, MailboxError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(MailboxError::Closed);
        }
        let mut g = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match g.0.try_send(cmd) {
            Ok(()) => {
                g.1 += 1;
                Ok(g.1)
            }
            Err(TrySendError::Full(_)) => Err(MailboxError::Full),
            Err(TrySendError::Disconnected(_)) => Err(MailboxError::Closed),
        }
    }

    /// Commands posted and not yet completed (the ring's depth).
    pub fn pending(&self) -> u64 {
        let posted = self.tx.lock().unwrap_or_else(|e| e.into_inner()).1;
        posted.saturating_sub(self.shared.done.load(Ordering::Acquire))
    }

    /// Whether the command with `ticket` has completed.
    pub fn is_done(&self, ticket: u64) -> bool {
        self.shared.done.load(Ordering::Acquire) >= ticket
    }

    /// Wait until the command with `ticket` has completed: spin briefly (a worker
    /// serves its mailbox every loop iteration, a few microseconds apart), then
    /// sleep in short steps.
    pub fn wait(&self, ticket: u64, timeout: Duration) -> Result<(), MailboxError> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.is_done(ticket) {
                return Ok(());
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return if self.is_done(ticket) { Ok(()) } else { Err(MailboxError::Closed) };
            }
            if spins < 2000 {
                spins += 1;
                std::hint::spin_loop();
                if spins.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            } else {
                if start.elapsed() >= timeout {
                    return Err(MailboxError::Timeout(timeout));
                }
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_complete_in_order_and_errors_are_clear() {
        let (post, mb) = mailbox::<Vec<u32>>();
        let stats = WorkerStats::new(0);
        let mut io = Io::new(vec![], crate::egress::Egress::new(vec![]));
        let mut stage = vec![];
        let t1 = post.post(Box::new(|s: &mut Vec<u32>, _: &mut Io, _: &WorkerStats| s.push(1))).unwrap();
        let t2 = post.post(Box::new(|s: &mut Vec<u32>, _: &mut Io, _: &WorkerStats| s.push(2))).unwrap();
        assert_eq!((t1, t2), (1, 2));
        assert!(!post.is_done(t1));
        assert_eq!(post.wait(t2, Duration::from_millis(1)), Err(MailboxError::Timeout(Duration::from_millis(1))));
        mb.serve(&mut stage, &mut io, &stats);
        assert_eq!(stage, vec![1, 2]);
        assert!(post.is_done(t2));
        post.wait(t2, Duration::ZERO).unwrap();
        for _ in 0..MAILBOX_DEPTH {
            post.post(Box::new(|_: &mut Vec<u32>, _: &mut Io, _: &WorkerStats| {})).unwrap();
        }
        assert_eq!(post.post(Box::new(|_: &mut Vec<u32>, _: &mut Io, _: &WorkerStats| {})), Err(MailboxError::Full));
        drop(mb);
        assert_eq!(post.post(Box::new(|_: &mut Vec<u32>, _: &mut Io, _: &WorkerStats| {})), Err(MailboxError::Closed));
        assert_eq!(post.wait(MAILBOX_DEPTH as u64 + 2, Duration::from_secs(1)), Err(MailboxError::Closed));
    }

    #[test]
    fn a_worker_thread_serves_while_control_waits() {
        let (post, mb) = mailbox::<u64>();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = Arc::clone(&stop);
        let h = std::thread::spawn(move || {
            let stats = WorkerStats::new(0);
            let mut io = Io::new(vec![], crate::egress::Egress::new(vec![]));
            let mut sum = 0u64;
            while !s2.load(Ordering::Relaxed) {
                mb.serve(&mut sum, &mut io, &stats);
            }
            sum
        });
        let mut last = 0;
        for i in 1..=100u64 {
            last = post.post(Box::new(move |s: &mut u64, _: &mut Io, _: &WorkerStats| *s += i)).unwrap();
        }
        post.wait(last, Duration::from_secs(10)).unwrap();
        stop.store(true, Ordering::Relaxed);
        assert_eq!(h.join().unwrap(), 5050);
    }
}
