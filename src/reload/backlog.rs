//! A bounded queue between threads whose memory follows what waits in it.
//!
//! The watch thread's input must be bounded (notify's threads hand events over without ever
//! blocking, and a burst beyond the bound becomes one "everything changed"), but the bound is
//! large, for checkouts of thousands of files. `std::sync::mpsc::sync_channel` allocates and
//! touches a slot for every place up front: 8,192 events took 576 KiB of an idle server's
//! memory, for good. This queue is std's unbounded channel (which grows in small blocks and
//! gives them back) with a count of what waits, so the bound is kept and costs nothing idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvError, RecvTimeoutError};
use std::time::Duration;

/// Makes a queue that holds at most `capacity` items sent with [`BacklogSender::try_send`].
pub fn backlog<T>(capacity: usize) -> (BacklogSender<T>, BacklogReceiver<T>) {
    let (sender, receiver) = mpsc::channel();
    let waiting = Arc::new(AtomicUsize::new(0));
    (
        BacklogSender {
            sender,
            waiting: waiting.clone(),
            capacity: capacity.max(1),
        },
        BacklogReceiver { receiver, waiting },
    )
}

/// Why an item was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `capacity` items wait already.
    Full,
    /// The receiver is gone.
    Disconnected,
}

pub struct BacklogSender<T> {
    sender: mpsc::Sender<T>,
    waiting: Arc<AtomicUsize>,
    capacity: usize,
}

impl<T> Clone for BacklogSender<T> {
    fn clone(&self) -> Self {
        BacklogSender {
            sender: self.sender.clone(),
            waiting: self.waiting.clone(),
            capacity: self.capacity,
        }
    }
}

impl<T> BacklogSender<T> {
    /// Queues `item` unless the queue is full. Never blocks.
    pub fn try_send(&self, item: T) -> Result<(), Refused> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.send_counted(item)
    }

    /// Queues `item` even when the queue is full: for the rare message that must arrive (stop).
    pub fn send_past_bound(&self, item: T) -> Result<(), Refused> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.send_counted(item)
    }

    /// Sends an item already counted as waiting; uncounts it when nobody is left to receive it.
    fn send_counted(&self, item: T) -> Result<(), Refused> {
        self.sender.send(item).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            Refused::Disconnected
        })
    }
}

pub struct BacklogReceiver<T> {
    receiver: mpsc::Receiver<T>,
    waiting: Arc<AtomicUsize>,
}

impl<T> BacklogReceiver<T> {
    /// The next item, or an error once every sender is gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        let item = self.receiver.recv()?;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        Ok(item)
    }

    /// The next item, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let item = self.receiver.recv_timeout(timeout)?;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_takes_more_once_some_are_received() {
        let (sender, receiver) = backlog(2);
        assert_eq!(sender.try_send(1), Ok(()));
        assert_eq!(sender.clone().try_send(2), Ok(()));
        assert_eq!(sender.try_send(3), Err(Refused::Full));
        assert_eq!(receiver.recv(), Ok(1));
        assert_eq!(sender.try_send(4), Ok(()));
        assert_eq!(sender.try_send(5), Err(Refused::Full));
        assert_eq!(sender.send_past_bound(6), Ok(()));
        let received: Vec<_> =
            std::iter::from_fn(|| receiver.recv_timeout(Duration::from_millis(1)).ok()).collect();
        assert_eq!(received, [2, 4, 6]);
        assert_eq!(sender.try_send(7), Ok(()));
    }

    #[test]
    fn tells_when_the_receiver_is_gone() {
        let (sender, receiver) = backlog(1);
        drop(receiver);
        assert_eq!(sender.try_send(1), Err(Refused::Disconnected));
        let (sender, receiver) = backlog::<u8>(1);
        drop(sender);
        assert_eq!(receiver.recv(), Err(RecvError));
    }
}
