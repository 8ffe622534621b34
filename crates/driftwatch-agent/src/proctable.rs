//! Executable paths of recently exec'd processes, for the parent fields (`proc.pexepath`) of
//! the next exec. Bounded: the oldest half is dropped when full.

use std::collections::HashMap;

pub struct ProcTable {
    exepaths: HashMap<u32, (u64, String)>,
    next: u64,
    capacity: usize,
}

impl ProcTable {
    pub fn new(capacity: usize) -> Self {
        ProcTable {
            exepaths: HashMap::new(),
            next: 0,
            capacity: capacity.max(2),
        }
    }

    pub fn insert(&mut self, pid: u32, exepath: &str) {
        self.next += 1;
        self.exepaths.insert(pid, (self.next, exepath.to_string()));
        if self.exepaths.len() > self.capacity {
            let keep_after = self.next - (self.capacity as u64 / 2);
            self.exepaths.retain(|_, (seq, _)| *seq > keep_after);
        }
    }

    pub fn exepath(&self, pid: u32) -> Option<&str> {
        self.exepaths.get(&pid).map(|(_, p)| p.as_str())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.exepaths.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_the_newest() {
        let mut t = ProcTable::new(10);
        for pid in 0..100 {
            t.insert(pid, &format!("/bin/p{pid}"));
        }
        assert!(t.len() <= 10);
        assert_eq!(t.exepath(99), Some("/bin/p99"));
        assert_eq!(t.exepath(0), None);
        t.insert(99, "/bin/other");
        assert_eq!(t.exepath(99), Some("/bin/other"));
    }
}
