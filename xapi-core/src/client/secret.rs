//! A string that never shows itself in logs, `Debug` or `Display`.

use std::fmt;

/// A secret string (a password): `Debug` and `Display` print `***`.
///
/// Read the value with [`Secret::expose`] at the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// A password: a [`Secret`].
pub type Password = Secret;

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call it only where the value is sent, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// `Debug` for a string map that may carry credentials (`PBD.device_config`,
/// `host.external_auth_configuration`): keys are shown, and the value of every key that names a
/// password or secret (`password`, `cifspassword`, `chappassword`, `password_secret`, ...) is
/// printed as `***`. The generated records use it; it is public for callers that log such maps.
pub struct RedactCredentials<'a>(
    pub &'a crate::wire::SmallMap<crate::wire::SmallString, crate::wire::SmallString>,
);

impl RedactCredentials<'_> {
    /// Whether the value under `key` is hidden.
    pub fn hides(key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        ["pass", "secret", "token", "credential"]
            .iter()
            .any(|word| key.contains(word))
    }
}

impl fmt::Debug for RedactCredentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.0 {
            if Self::hides(key) {
                map.entry(key, &format_args!("***"));
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(!format!("{secret:#?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn secrets_inside_structs_stay_hidden() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            user: String,
            password: Password,
        }
        let login = Login {
            user: "root".into(),
            password: "s3cret".into(),
        };
        let shown = format!("{login:?}");
        assert!(shown.contains("root"));
        assert!(!shown.contains("s3cret"));
    }
}
