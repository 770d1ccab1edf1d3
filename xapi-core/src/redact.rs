//! `Debug` helpers that keep credentials out of logs; used by the generated records.

use std::fmt;

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

/// `Debug` for a text that may embed a session reference (an NBD export name
/// `/<vdi-uuid>?session_id=OpaqueRef:...`, a URL with a `session_id` query): the value of every
/// `session_id=` parameter is printed as `***`, the rest as it is.
pub struct RedactSessionRef<'a>(pub &'a str);

impl fmt::Debug for RedactSessionRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KEY: &str = "session_id=";
        let mut shown = String::with_capacity(self.0.len());
        let mut rest = self.0;
        while let Some(at) = rest.find(KEY) {
            let value_start = at + KEY.len();
            shown.push_str(&rest[..value_start]);
            shown.push_str("***");
            let value_len = rest[value_start..]
                .find(['&', ';', '#'])
                .unwrap_or(rest.len() - value_start);
            rest = &rest[value_start + value_len..];
        }
        shown.push_str(rest);
        fmt::Debug::fmt(&shown, f)
    }
}

#[cfg(test)]
mod tests {
    use super::{RedactCredentials, RedactSessionRef};
    use crate::wire::{SmallMap, SmallString};

    #[test]
    fn session_references_in_export_names_are_hidden() {
        let name = "/6f1c7a3e-0000-4000-8000-000000000001?session_id=OpaqueRef:7d2b-secret";
        let shown = format!("{:?}", RedactSessionRef(name));
        assert_eq!(
            shown,
            "\"/6f1c7a3e-0000-4000-8000-000000000001?session_id=***\""
        );
        let url = "/export?session_id=OpaqueRef:a&uuid=b&session_id=OpaqueRef:c";
        assert_eq!(
            format!("{:?}", RedactSessionRef(url)),
            "\"/export?session_id=***&uuid=b&session_id=***\""
        );
        assert_eq!(format!("{:?}", RedactSessionRef("/plain")), "\"/plain\"");
    }

    #[test]
    fn password_like_keys_are_hidden_and_others_shown() {
        let map: SmallMap<SmallString, SmallString> = [
            ("server", "10.0.0.5"),
            ("chappassword", "hunter2"),
            ("password_secret", "OpaqueRef:1"),
        ]
        .into_iter()
        .map(|(k, v)| (SmallString::from(k), SmallString::from(v)))
        .collect();
        let shown = format!("{:?}", RedactCredentials(&map));
        assert!(shown.contains("10.0.0.5"));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("OpaqueRef:1"));
        assert!(shown.contains("chappassword"));
    }
}
