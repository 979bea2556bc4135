//! A server thread with a stop signal: the P4Runtime, management and metrics
//! servers each run a tokio runtime on one of these. Dropping the handle signals
//! the stop and joins the thread, so a server is gone when its handle is.

use tokio::sync::watch;

/// The stop signal, as the server thread sees it (clone it for each listener).
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves when the handle is dropped.
    pub async fn stopped(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// Whether the handle is gone (for threads that poll instead of awaiting).
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}

/// A running server thread.
#[derive(Debug)]
pub struct Background {
    stop: Option<watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Run `f` on a new thread named `name`; `f` returns when its signal resolves.
    pub fn spawn(name: &str, f: impl FnOnce(StopSignal) + Send + 'static) -> std::io::Result<Background> {
        let (tx, rx) = watch::channel(false);
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || f(StopSignal(rx)))?;
        Ok(Background { stop: Some(tx), thread: Some(thread) })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_handle_stops_and_joins_the_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let b = Background::spawn("bg-test", move |stop| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(stop.stopped());
            tx.send("stopped").unwrap();
        })
        .unwrap();
        assert!(rx.try_recv().is_err(), "runs until dropped");
        drop(b);
        assert_eq!(rx.try_recv(), Ok("stopped"), "joined on drop");
    }
}
