//! The responder's queue, fair across containers: each container has its own line and a cap
//! on its share, and the responder's thread takes from the lines in turn. One container
//! raising alerts without end (a new executable each time, so no dedupe collapses them) fills
//! only its own share, and a neighbour's alert waits behind at most one alert of each other
//! container, never behind the whole flood.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};

/// Why an item was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds its capacity.
    Full,
    /// The item's container holds its share of the queue.
    ContainerShare,
    /// The queue was closed.
    Closed,
}

struct Lines<T> {
    by_key: HashMap<String, VecDeque<T>>,
    /// Keys with a non-empty line, in the order they are served.
    turn: VecDeque<String>,
    len: usize,
    closed: bool,
}

/// A bounded multi-producer queue served round-robin by key (the container).
pub struct FairQueue<T> {
    lines: Mutex<Lines<T>>,
    ready: Condvar,
    capacity: usize,
    share: usize,
}

impl<T> FairQueue<T> {
    /// At most `capacity` items, at most `share` of them of one key.
    pub fn new(capacity: usize, share: usize) -> FairQueue<T> {
        FairQueue {
            lines: Mutex::new(Lines {
                by_key: HashMap::new(),
                turn: VecDeque::new(),
                len: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            share: share.clamp(1, capacity.max(1)),
        }
    }

    /// The per-key share for a queue of `capacity`: an eighth, at least one.
    pub fn default_share(capacity: usize) -> usize {
        (capacity / 8).max(1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lines<T>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item` in `key`'s line; never blocks. The item comes back with the refusal.
    pub fn push(&self, key: &str, item: T) -> Result<(), (Refused, T)> {
        let mut l = self.lock();
        if l.closed {
            return Err((Refused::Closed, item));
        }
        if l.len >= self.capacity {
            return Err((Refused::Full, item));
        }
        let line = l.by_key.entry(key.to_string()).or_default();
        if line.len() >= self.share {
            return Err((Refused::ContainerShare, item));
        }
        line.push_back(item);
        if line.len() == 1 {
            l.turn.push_back(key.to_string());
        }
        l.len += 1;
        drop(l);
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, the lines taking turns; blocks while empty, `None` once closed and
    /// drained.
    pub fn pop(&self) -> Option<T> {
        let mut l = self.lock();
        loop {
            if let Some(key) = l.turn.pop_front() {
                let Lines { by_key, turn, .. } = &mut *l;
                let Some(line) = by_key.get_mut(&key) else {
                    continue;
                };
                let item = line.pop_front();
                if line.is_empty() {
                    by_key.remove(&key);
                } else {
                    turn.push_back(key);
                }
                if item.is_some() {
                    l.len -= 1;
                    return item;
                }
                continue;
            }
            if l.closed {
                return None;
            }
            l = self.ready.wait(l).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Refuses new items; [`pop`](Self::pop) drains what is queued, then answers `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_key_fills_only_its_share_and_the_neighbour_is_served_next() {
        let q = FairQueue::new(16, 4);
        for i in 0..100 {
            let r = q.push("noisy", i);
            if i < 4 {
                assert!(r.is_ok());
            } else {
                assert_eq!(r.unwrap_err().0, Refused::ContainerShare);
            }
        }
        q.push("quiet", 1000).unwrap();
        // One of the noisy, then the neighbour: not behind the whole flood.
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.pop(), Some(1000));
        assert_eq!([q.pop(), q.pop(), q.pop()], [Some(1), Some(2), Some(3)]);
        assert!(q.is_empty());
    }

    #[test]
    fn the_capacity_holds_across_keys_and_close_drains() {
        let q = FairQueue::new(3, 2);
        q.push("a", 1).unwrap();
        q.push("b", 2).unwrap();
        q.push("c", 3).unwrap();
        assert_eq!(q.push("d", 4).unwrap_err().0, Refused::Full);
        q.close();
        assert_eq!(q.push("d", 5).unwrap_err().0, Refused::Closed);
        assert_eq!(
            [q.pop(), q.pop(), q.pop(), q.pop()],
            [Some(1), Some(2), Some(3), None]
        );
    }

    #[test]
    fn a_waiting_consumer_wakes_for_a_push_and_for_close() {
        let q = std::sync::Arc::new(FairQueue::new(8, 8));
        let q2 = q.clone();
        let t = std::thread::spawn(move || (q2.pop(), q2.pop()));
        q.push("a", 7).unwrap();
        q.close();
        assert_eq!(t.join().unwrap(), (Some(7), None));
        assert_eq!(FairQueue::<u8>::default_share(1024), 128);
        assert_eq!(FairQueue::<u8>::default_share(3), 1);
    }
}
