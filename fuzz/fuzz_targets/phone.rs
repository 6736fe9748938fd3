//! Phone normalisation: never panics; whatever it accepts is E.164 and normalises to itself.
#![no_main]

use auth_shared::phone::PhoneNumber;
use libfuzzer_sys::fuzz_target;
use phonenumber::country::Id;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for region in [Id::IR, Id::US, Id::DE] {
        if let Ok(phone) = PhoneNumber::parse(text, region) {
            let again = PhoneNumber::parse(phone.as_str(), region).expect("E.164 is accepted");
            assert_eq!(again, phone);
            assert!(phone.as_str().starts_with('+'));
            let _ = (phone.sms_profile(), phone.masked());
        }
    }
});
