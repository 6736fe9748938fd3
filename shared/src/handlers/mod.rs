//! One handler per Lambda function: parse the request, call the service, shape the response.
//! Each returns `Infallible`: every error is already a JSON response.

mod check_phone;
mod login;
mod register;
mod verify;

pub use check_phone::check_phone;
pub use login::login;
pub use register::register;
pub use verify::verify;
