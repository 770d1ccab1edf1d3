//! A XAPI failure: an error code and its parameters.

use std::fmt;

use crate::wire::ErrorCode;

/// A failure reported by XAPI (`ErrorDescription` / JSON-RPC `error`): the code, then its
/// parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error code.
    pub code: ErrorCode,
    /// The parameters, in wire order.
    pub params: Vec<String>,
}

impl Failure {
    /// A failure from its wire code (`"VM_BAD_POWER_STATE"`) and parameters.
    pub fn new(code: &str, params: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            code: ErrorCode::from_code(code),
            params: params.into_iter().map(Into::into).collect(),
        }
    }

    /// A failure from an `ErrorDescription` list: the code first, then the parameters. `None`
    /// when the list is empty.
    pub fn from_description(mut description: Vec<String>) -> Option<Self> {
        if description.is_empty() {
            return None;
        }
        let code = description.remove(0);
        Some(Self {
            code: ErrorCode::from_code(&code),
            params: description,
        })
    }

    /// The `ErrorDescription` list: the code, then the parameters.
    pub fn to_description(&self) -> Vec<String> {
        let mut description = Vec::with_capacity(self.params.len() + 1);
        description.push(self.code.as_str().to_owned());
        description.extend(self.params.iter().cloned());
        description
    }

    /// The parameter the datamodel names `name` (for `HOST_IS_SLAVE`, `param("master")` is the
    /// master's address); `None` if the code does not declare it or the server sent fewer
    /// parameters.
    pub fn param(&self, name: &str) -> Option<&str> {
        let index = self.code.param_names().iter().position(|n| *n == name)?;
        self.params.get(index).map(String::as_str)
    }
}

impl fmt::Display for Failure {
    /// `CODE: p1, p2` (just `CODE` without parameters).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.as_str())?;
        for (i, param) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            f.write_str(param)?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_looks_up_declared_names() {
        let failure = Failure::new("HOST_IS_SLAVE", ["192.0.2.10"]);
        assert_eq!(failure.code, ErrorCode::HostIsSlave);
        assert_eq!(failure.param("master"), Some("192.0.2.10"));
        assert_eq!(failure.param("handle"), None);
        let short = Failure::new("HANDLE_INVALID", ["VM"]);
        assert_eq!(short.param("class"), Some("VM"));
        assert_eq!(short.param("handle"), None);
    }

    #[test]
    fn display_lists_code_then_params() {
        let failure = Failure::new("VM_BAD_POWER_STATE", ["OpaqueRef:1", "halted", "running"]);
        assert_eq!(
            failure.to_string(),
            "VM_BAD_POWER_STATE: OpaqueRef:1, halted, running"
        );
        assert_eq!(
            Failure::new("SESSION_INVALID", Vec::<String>::new()).to_string(),
            "SESSION_INVALID"
        );
    }

    #[test]
    fn description_round_trips() {
        let description = vec!["SESSION_INVALID".to_owned(), "OpaqueRef:s".to_owned()];
        let failure = Failure::from_description(description.clone()).expect("non-empty");
        assert_eq!(failure.code, ErrorCode::SessionInvalid);
        assert_eq!(failure.to_description(), description);
        assert!(Failure::from_description(Vec::new()).is_none());
    }
}
