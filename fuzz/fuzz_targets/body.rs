//! Request-body parsing: any bytes are either a request or a 400, never a panic or another error.
#![no_main]

include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_body(data));
