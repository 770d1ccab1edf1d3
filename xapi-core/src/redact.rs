//! `Debug` helpers that keep credentials out of logs; used by the generated records.

use std::fmt;

/// `Debug` for a string map that may carry credentials (`PBD.device_config`,
/// `host.external_auth_configuration`): keys are shown, and the value of every key that names a
/// password or secret (`password`, `cifspassword`, `chappassword`, `password_secret`, ...) is
/// printed as `***`. The generated records use it; it is public for callers that log such maps.
pub struct RedactCredentials<'a>(pub &'a std::collections::BTreeMap<String, String>);

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
    use std::collections::BTreeMap;

    use super::RedactCredentials;

    #[test]
    fn password_like_keys_are_hidden_and_others_shown() {
        let map: BTreeMap<String, String> = [
            ("server", "10.0.0.5"),
            ("chappassword", "hunter2"),
            ("password_secret", "OpaqueRef:1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let shown = format!("{:?}", RedactCredentials(&map));
        assert!(shown.contains("10.0.0.5"));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("OpaqueRef:1"));
        assert!(shown.contains("chappassword"));
    }
}
