//! The netmap side of a [`Port`]: `NetmapPort` (region, txsync/rxsync, receiver sleep and
//! wake-up, lossless senders' waits) and the waker a receiver's wait token is woken by.

use super::*;

/// After a receiver advanced `hwcur` of the RX ring at `rs`: wakes lossless senders waiting
/// in `tx_wait` for room there (the flag check costs a fence per sync that frees slots).
fn wake_held_senders(m: &SharedMem, rs: usize) {
    forward::wake_if_asked(m, rs + RX_SPACE_WANTED, rs + RX_SPACE_SEQ);
}

struct RxWaker {
    map: Arc<Mapping>,
    seq_ofs: usize,
}

impl Waker for RxWaker {
    fn wake(&self) {
        let mem = self.map.mem();
        let seq = mem.atomic_u32(self.seq_ofs);
        seq.fetch_add(1, Release);
        sys::futex_wake(seq);
    }
}

impl NetmapPort for Port {
    fn name(&self) -> &str {
        &self.full_name
    }

    fn region(&self) -> RegionInfo {
        RegionInfo {
            fd: self.fd.as_raw_fd(),
            size: self.layout.size,
            mem: self.map.mem().sub(0, self.layout.size),
            layout: self.layout,
            nifp_offset: self.layout.nifp_offset() as u32,
            mem_id: self.idx as u16 + 1,
        }
    }

    fn ring_state(&self, kind: RingKind, ring: u32) -> Result<SyncResult, PortError> {
        self.check_ring(kind, ring)?;
        let m = self.mem();
        Ok(match kind {
            RingKind::Tx => {
                let t = self.priv_layout.tx(ring);
                SyncResult {
                    hwcur: m.load_u32(t + TX_HWCUR, Relaxed),
                    hwtail: m.load_u32(t + TX_HWTAIL, Relaxed),
                }
            }
            RingKind::Rx => {
                let r = self.priv_layout.rx(ring);
                SyncResult {
                    hwcur: m.load_u32(r + RX_HWCUR, Relaxed),
                    hwtail: m.load_u32(r + RX_HWTAIL, Acquire) % self.layout.config.rx_slots,
                }
            }
        })
    }

    fn txsync(&self, ring: u32, head: u32, cur: u32) -> Result<SyncResult, PortError> {
        self.check_ring(RingKind::Tx, ring)?;
        let mut t = self.tx[ring as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let m = self.mem();
        let n = self.layout.config.tx_slots;
        let ts = self.priv_layout.tx(ring);
        let hwcur = m.load_u32(ts + TX_HWCUR, Relaxed);
        let hwtail = m.load_u32(ts + TX_HWTAIL, Relaxed);
        // Pending slots of a held lossless sender are `hwcur..head` with `hwtail = hwcur - 1`,
        // so the window `[hwcur, hwtail]` admits the next head as usual.
        let (head, _cur) = txsync_prologue(hwcur, hwtail, n, head, cur)?;
        let mut done = head;
        t.ctx.blocker = None;
        if head != hwcur {
            let sw = self.sw.mem();
            t.ctx
                .peers
                .refresh(&sw, &self.sw.dir, &self.sw.name, self.idx);
            let src = Sender {
                mem: m,
                layout: &self.layout,
                idx: self.idx,
                gen: self.gen,
                sw,
                tid: sys::gettid(),
                hdr_len: self.hdr_len.load(Relaxed),
            };
            let (st, stop) = t.ctx.forward(&src, ring, hwcur, head);
            done = stop;
            let e = entry(self.idx);
            sw.add_u64(e + E_TX_PKTS, st.pkts);
            sw.add_u64(e + E_TX_BYTES, st.bytes);
            sw.add_u64(e + E_TX_BAD, st.bad);
        }
        let hwtail = ring::prev(done, n);
        m.store_u32(ts + TX_HWCUR, done, Relaxed);
        m.store_u32(ts + TX_HWTAIL, hwtail, Relaxed);
        self.maintain(&mut t);
        Ok(SyncResult {
            hwcur: done,
            hwtail,
        })
    }

    fn rxsync(&self, ring: u32, head: u32, cur: u32) -> Result<SyncResult, PortError> {
        self.check_ring(RingKind::Rx, ring)?;
        let m = self.mem();
        let n = self.layout.config.rx_slots;
        let rs = self.priv_layout.rx(ring);
        let hwcur = m.load_u32(rs + RX_HWCUR, Relaxed);
        let hwtail = m.load_u32(rs + RX_HWTAIL, Acquire) % n;
        let (head, _cur) = rxsync_prologue(hwcur, hwtail, n, head, cur)?;
        if head != hwcur {
            m.store_u32(rs + RX_HWCUR, head, Release);
            wake_held_senders(&m, rs);
        }
        let hwtail = m.load_u32(rs + RX_HWTAIL, Acquire) % n;
        Ok(SyncResult {
            hwcur: head,
            hwtail,
        })
    }

    fn rx_wait(
        &self,
        ring: u32,
        seen_hwtail: u32,
        timeout: Option<Duration>,
    ) -> Result<bool, PortError> {
        let token = self.rx_wait_token(ring)?;
        self.rx_wait_since(ring, token, seen_hwtail, true, timeout)
    }

    fn rx_wait_token(&self, ring: u32) -> Result<u32, PortError> {
        self.check_ring(RingKind::Rx, ring)?;
        Ok(self
            .mem()
            .atomic_u32(self.priv_layout.rx(ring) + RX_SEQ)
            .load(Acquire))
    }

    fn rx_wait_since(
        &self,
        ring: u32,
        token: u32,
        seen_hwtail: u32,
        arrivals: bool,
        timeout: Option<Duration>,
    ) -> Result<bool, PortError> {
        self.check_ring(RingKind::Rx, ring)?;
        let m = self.mem();
        let rs = self.priv_layout.rx(ring);
        let seq = m.atomic_u32(rs + RX_SEQ);
        let moved = |m: &SharedMem| {
            m.load_u32(rs + RX_HWTAIL, Acquire) % self.layout.config.rx_slots != seen_hwtail
        };
        if arrivals {
            m.store_u32(rs + RX_NEED_KICK, 1, Relaxed);
            fence(SeqCst);
            if moved(&m) {
                m.store_u32(rs + RX_NEED_KICK, 0, Relaxed);
                return Ok(true);
            }
        }
        // Returns at once if the sequence moved since `token` (a waker fired meanwhile).
        sys::futex_wait(seq, token, timeout);
        if arrivals {
            m.store_u32(rs + RX_NEED_KICK, 0, Relaxed);
        }
        Ok(moved(&m))
    }

    fn tx_wait(&self, ring: u32, timeout: Option<Duration>) -> Result<bool, PortError> {
        self.check_ring(RingKind::Tx, ring)?;
        let (peer, b) = {
            let t = self.tx[ring as usize]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let Some(b) = t.ctx.blocker else {
                return Ok(true);
            };
            match t.ctx.peers.find_exact(b.key.idx, b.key.gen) {
                // The clone keeps the peer's file mapped while we sleep on it.
                Some(p) => (t.ctx.peers.list[p].clone(), b),
                None => return Ok(true), // gone: the next txsync no longer sends there
            }
        };
        if b.key.ring >= peer.layout.config.rx_rings {
            return Ok(true);
        }
        let rs = peer.priv_layout.rx(b.key.ring);
        let pm = peer.mem;
        let seq = pm.atomic_u32(rs + RX_SPACE_SEQ);
        let token = seq.load(Acquire);
        pm.store_u32(rs + RX_SPACE_WANTED, 1, Relaxed);
        // Pairs with the receiver's fence between publishing hwcur and reading the flag.
        fence(SeqCst);
        let moved = || pm.load_u32(rs + RX_HWCUR, Acquire) != b.hwcur;
        if moved() || !sys::alive(peer.owner) {
            return Ok(true);
        }
        // Never past the hold bound, so a stuck receiver is given up on time.
        let t = timeout.unwrap_or(forward::HOLD_MAX).min(forward::HOLD_MAX);
        sys::futex_wait(seq, token, Some(t));
        Ok(moved() || !sys::alive(peer.owner))
    }

    fn set_vnet_hdr_len(&self, len: u32) -> bool {
        Port::set_vnet_hdr_len(self, len).is_ok()
    }

    fn rx_waker(&self, ring: u32) -> Result<Arc<dyn Waker>, PortError> {
        self.check_ring(RingKind::Rx, ring)?;
        Ok(Arc::new(RxWaker {
            map: self.map.clone(),
            seq_ofs: self.priv_layout.rx(ring) + RX_SEQ,
        }))
    }
}
