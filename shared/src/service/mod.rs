//! The flows of the service on validated inputs. Handlers translate HTTP to these calls and back.
//!
//! - `codes`: sending one-time codes and checking them (shared by sign-up and password reset)
//! - `signup`: verify a phone, register an account
//! - `sessions`: log in, refresh, authenticate a request, log out
//! - `account`: profile, password change, password reset, account deletion

pub mod account;
pub mod codes;
pub mod sessions;
pub mod signup;
