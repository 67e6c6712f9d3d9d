//! The benchmark's reference limit: one thread copying the same frames slot by slot from a
//! TX ring of one netmap region into an RX ring of another, with the same accessors and
//! per-slot validation the switch uses, but no locks, lookups or second process.

use std::ptr::NonNull;

use netmap::{ring, RegionConfig, RegionLayout, RingView, SharedMem};

/// Two netmap regions in private memory.
pub struct CopyLoop {
    _a: Vec<u64>,
    _b: Vec<u64>,
    a: SharedMem,
    b: SharedMem,
    layout: RegionLayout,
    pos: u32,
}

fn region(layout: &RegionLayout) -> (Vec<u64>, SharedMem) {
    let mut v = vec![0u64; layout.size / 8];
    let p = NonNull::new(v.as_mut_ptr().cast::<u8>()).expect("heap pointer");
    // SAFETY: the vector is stored next to the window in `CopyLoop` and never resized, so the
    // memory (8-aligned, `size` bytes) outlives every use of the window.
    let mem = unsafe { SharedMem::new(p, layout.size) };
    (v, mem)
}

impl CopyLoop {
    /// Two default-sized regions; every TX buffer of the first holds `frame`.
    pub fn new(frame: &[u8]) -> CopyLoop {
        let layout = RegionLayout::new(RegionConfig::default()).expect("default layout");
        let (va, a) = region(&layout);
        let (vb, b) = region(&layout);
        layout.init(&a, "copy:a");
        layout.init(&b, "copy:b");
        let tx = RingView::new(a, layout.tx_ring_offset(0), layout.config.tx_slots);
        for i in 0..tx.num_slots() {
            let s = tx.slot(i);
            let o = layout.buf_offset(s.buf_idx()).expect("fresh slot");
            a.write_bytes(o, frame);
            s.set_len(frame.len() as u16);
        }
        CopyLoop {
            _a: va,
            _b: vb,
            a,
            b,
            layout,
            pos: 0,
        }
    }

    /// Copies `batch` frames; returns the bytes copied.
    pub fn run_batch(&mut self, batch: u32) -> u64 {
        let l = &self.layout;
        let n = l.config.tx_slots;
        let tx = RingView::new(self.a, l.tx_ring_offset(0), n);
        let rx = RingView::new(self.b, l.rx_ring_offset(0), l.config.rx_slots);
        let mut bytes = 0u64;
        let mut j = self.pos;
        for _ in 0..batch {
            let (idx, len, _flags) = tx.slot(j).load();
            let d = rx.slot(j);
            if let (Some(so), Some(dofs)) = (l.buf_offset(idx), l.buf_offset(d.buf_idx())) {
                if len as u32 <= l.config.buf_size {
                    self.a.copy_to(so, &self.b, dofs, len as usize);
                    d.set_len_flags(len, 0);
                    bytes += len as u64;
                }
            }
            j = ring::next(j, n);
        }
        self.pos = j;
        bytes
    }

    /// Reads back frame `i` of the destination (for tests).
    pub fn dst_frame(&self, i: u32) -> Vec<u8> {
        let rx = RingView::new(
            self.b,
            self.layout.rx_ring_offset(0),
            self.layout.config.rx_slots,
        );
        let s = rx.slot(i);
        let mut v = vec![0u8; s.len() as usize];
        self.b
            .read_bytes(self.layout.buf_offset(s.buf_idx()).expect("valid"), &mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{build, verify, Endpoints};

    #[test]
    fn copies_frames() {
        let f = build(&Endpoints::default(), 60);
        let mut c = CopyLoop::new(&f);
        assert_eq!(c.run_batch(512), 512 * 60);
        assert_eq!(c.run_batch(1000), 1000 * 60);
        assert_eq!(c.dst_frame(3), f);
        assert_eq!(verify(&c.dst_frame(1023)), Ok(()));
    }
}
