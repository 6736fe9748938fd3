//! The API as the tests and the benchmark call it: one `Endpoint` per Lambda function, its path
//! and the function's name, written once in the table below. The route-table test
//! (`tests/tests/api/routes.rs`) checks every row against `template.yaml`.

/// Declares `Endpoint`, `Endpoint::ALL`, `Endpoint::path` and `Endpoint::function` from one
/// table, so that no variant can be missing from the list the route-table test walks.
macro_rules! endpoints {
    ($($variant:ident => $path:literal, $function:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Endpoint {
            $($variant,)+
        }

        impl Endpoint {
            /// Every endpoint, in the order of the table.
            pub const ALL: &'static [Endpoint] = &[$(Self::$variant,)+];

            /// The path the tests send to (the form with the trailing slash, where there is one).
            pub fn path(self) -> &'static str {
                match self {
                    $(Self::$variant => $path,)+
                }
            }

            /// The Lambda function that serves the path: its directory under `functions/`, its
            /// binary, and `BuildProperties.Binary` in `template.yaml`. `TestApp::send` calls that
            /// function's handler.
            pub fn function(self) -> &'static str {
                match self {
                    $(Self::$variant => $function,)+
                }
            }
        }
    };
}

endpoints! {
    CheckPhone => "/auth/check-phone/", "check-phone";
    Verify => "/auth/verify/", "verify";
    Register => "/auth/register/", "register";
    Login => "/auth/login/", "login";
    LoginOtpRequest => "/auth/login/otp/request/", "login-otp-request";
    LoginOtp => "/auth/login/otp/", "login-otp";
    Refresh => "/auth/refresh/", "refresh";
    Logout => "/auth/logout/", "logout";
    Profile => "/auth/profile/", "profile";
    PhoneChangeRequest => "/auth/phone/change/request/", "phone-change-request";
    PhoneChangeConfirm => "/auth/phone/change/confirm/", "phone-change-confirm";
    Sessions => "/auth/sessions/", "sessions";
    SessionRevoke => "/auth/sessions/{id}/", "session-revoke";
    PasswordChange => "/auth/password/change/", "password-change";
    PasswordResetRequest => "/auth/password/reset/request/", "password-reset-request";
    PasswordResetConfirm => "/auth/password/reset/confirm/", "password-reset-confirm";
    Jwks => "/.well-known/jwks.json", "jwks";
    OpenIdConfiguration => "/.well-known/openid-configuration", "openid-configuration";
    Hello => "/hello", "hello";
    AdminFindUsers => "/admin/users", "admin-find-users";
    AdminUser => "/admin/users/{id}", "admin-user";
    AdminUserStatus => "/admin/users/{id}/status", "admin-user-status";
    AdminUserClaims => "/admin/users/{id}/claims", "admin-user-claims";
    AdminSessions => "/admin/users/{id}/sessions", "admin-sessions";
    AdminSessionRevoke => "/admin/users/{id}/sessions/{session_id}", "admin-session-revoke";
}

impl Endpoint {
    /// The endpoints that take a JSON body by POST and parse it before anything else.
    pub const JSON_POSTS: [Endpoint; 12] = [
        Self::CheckPhone,
        Self::Verify,
        Self::Register,
        Self::Login,
        Self::Refresh,
        Self::PasswordChange,
        Self::PasswordResetRequest,
        Self::PasswordResetConfirm,
        Self::LoginOtpRequest,
        Self::LoginOtp,
        Self::PhoneChangeRequest,
        Self::PhoneChangeConfirm,
    ];
}
