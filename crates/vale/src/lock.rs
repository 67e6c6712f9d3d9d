//! A spinlock in shared memory tagged with its owner's thread id, stolen from dead owners.
//!
//! The word is 0 when free, else the tid of the holder. Critical sections are a few dozen
//! instructions (slot reservation, lease completion), so waiters spin, yield now and then,
//! and after a while check with `kill(tid, 0)` whether the holder still exists; a holder
//! killed inside the section (SIGKILL) would otherwise wedge the switch. The protected state
//! is kept consistent at every store (see `forward.rs`), so a stolen lock is safe to use.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use netmap::SharedMem;

use crate::sys;

/// Spins before each liveness check of the holder.
const SPINS_BEFORE_CHECK: u32 = 1 << 14;

/// Holds the lock until dropped.
pub struct Guard<'a> {
    word: &'a AtomicU32,
    tid: u32,
}

/// Takes the lock at `word` for thread `tid`.
pub fn lock(word: &AtomicU32, tid: u32) -> Guard<'_> {
    let mut spins: u32 = 0;
    loop {
        let cur = word.load(Relaxed);
        if cur == 0 {
            if word.compare_exchange_weak(0, tid, Acquire, Relaxed).is_ok() {
                return Guard { word, tid };
            }
            continue;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
        if spins.is_multiple_of(SPINS_BEFORE_CHECK) && (cur == tid || !sys::alive(cur)) {
            // The holder is gone (or is a previous incarnation of us that cannot be
            // holding it): take the lock over.
            if word.compare_exchange(cur, tid, Acquire, Relaxed).is_ok() {
                log::warn!("took over a lock held by dead thread {cur}");
                return Guard { word, tid };
            }
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Release only if still ours (it cannot have been stolen from a live holder).
        let _ = self.word.compare_exchange(self.tid, 0, Release, Relaxed);
    }
}

/// Several locks held at once, released (in reverse order) when dropped. Callers take them
/// in one global order (a lossless sender: by port, then ring), so holders cannot deadlock.
pub struct Held {
    words: Vec<(SharedMem, usize)>,
    tid: u32,
}

impl Held {
    /// No lock yet, for thread `tid`.
    pub fn new(tid: u32) -> Self {
        Held {
            words: Vec::new(),
            tid,
        }
    }

    /// Takes the lock word at `ofs` of `mem` (which must stay mapped while held).
    pub fn take(&mut self, mem: SharedMem, ofs: usize) {
        std::mem::forget(lock(mem.atomic_u32(ofs), self.tid));
        self.words.push((mem, ofs));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for (mem, ofs) in self.words.iter().rev() {
            drop(Guard {
                word: mem.atomic_u32(*ofs),
                tid: self.tid,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn excludes_threads() {
        let word = Arc::new(AtomicU32::new(0));
        let counter = Arc::new(AtomicU32::new(0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (w, c) = (word.clone(), counter.clone());
                std::thread::spawn(move || {
                    let tid = sys::gettid();
                    for _ in 0..2000 {
                        let _g = lock(&w, tid);
                        // Non-atomic read-modify-write under the lock.
                        let v = c.load(Relaxed);
                        c.store(v + 1, Relaxed);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(counter.load(Relaxed), 8000);
        assert_eq!(word.load(Relaxed), 0);
    }

    #[test]
    fn steals_from_dead_owner() {
        // A tid that cannot exist (beyond pid_max).
        let word = AtomicU32::new(0x7fff_fff0);
        let g = lock(&word, sys::gettid());
        assert_eq!(word.load(Relaxed), sys::gettid());
        drop(g);
        assert_eq!(word.load(Relaxed), 0);
    }
}
