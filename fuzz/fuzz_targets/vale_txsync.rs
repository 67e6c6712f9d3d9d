//! Fuzzes the VALE txsync/rxsync paths with arbitrary slot arrays and ring indices
//! (see `vale::fuzzing::txsync_input` for the input encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vale::fuzzing::txsync_input(data);
});
