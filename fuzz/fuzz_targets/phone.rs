//! Phone normalisation: never panics; whatever it accepts is E.164 and normalises to itself.
#![no_main]

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_phone(data));
