//! Where a Python `Repository` lives: a local directory, or `s3://BUCKET/PREFIX` on
//! S3-compatible storage with its endpoint, region and credentials from keyword arguments or
//! the usual `AWS_*` environment variables (the rules of `xapictl --repo`, except that plain
//! http is allowed only when the caller says so).

use std::fmt;
use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use xapi_backup::repo::{S3Target, Target};

/// The environment variable of the endpoint when `s3_endpoint` is not given.
const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL";
/// The environment variable of the region when `s3_region` is not given.
const REGION_VAR: &str = "AWS_REGION";
/// The region when neither `s3_region` nor [`REGION_VAR`] gives one.
const DEFAULT_REGION: &str = "us-east-1";
/// The environment variable of the access key id when `s3_access_key_id` is not given.
const ACCESS_KEY_ID_VAR: &str = "AWS_ACCESS_KEY_ID";
/// The environment variable of the secret access key when `s3_secret_access_key` is not given.
const SECRET_ACCESS_KEY_VAR: &str = "AWS_SECRET_ACCESS_KEY";

/// Where a repository is, as shown to the user (never with credentials).
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A local directory.
    Local(PathBuf),
    /// `s3://BUCKET/PREFIX` (the prefix without a trailing `/`, the whole `s3://BUCKET` for
    /// the bucket's root).
    S3(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3(url) => f.write_str(url),
        }
    }
}

/// The `s3_*` keyword arguments of `Repository.create` and `Repository.open`: each `None`
/// when not given (then from the environment).
#[derive(Default)]
pub(crate) struct S3Settings {
    /// `s3_endpoint`: the endpoint URL; else `AWS_ENDPOINT_URL`, else AWS itself.
    pub(crate) endpoint: Option<String>,
    /// `s3_region`: else `AWS_REGION`, else `us-east-1`.
    pub(crate) region: Option<String>,
    /// `s3_access_key_id`: else `AWS_ACCESS_KEY_ID`.
    pub(crate) access_key_id: Option<String>,
    /// `s3_secret_access_key`: else `AWS_SECRET_ACCESS_KEY`.
    pub(crate) secret_access_key: Option<String>,
    /// `s3_allow_http`: whether a plain `http://` endpoint may be used.
    pub(crate) allow_http: bool,
}

impl S3Settings {
    /// Whether any `s3_*` argument was given.
    fn is_given(&self) -> bool {
        self.endpoint.is_some()
            || self.region.is_some()
            || self.access_key_id.is_some()
            || self.secret_access_key.is_some()
            || self.allow_http
    }
}

/// The location named by `location` (a `str` or `os.PathLike`) and the storage target it is
/// on. `s3://…` strings are S3 locations; any other string or path is a local directory.
pub(crate) fn resolve(location: &Bound<'_, PyAny>, s3: S3Settings) -> PyResult<(Location, Target)> {
    if let Ok(text) = location.cast::<PyString>() {
        let text = text.to_str()?;
        if let Some(rest) = text.strip_prefix("s3://") {
            return s3_target(rest, s3);
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(PyValueError::new_err(format!(
                "{scheme}://…: a repository is a local directory or s3://BUCKET/PREFIX"
            )));
        }
    }
    let path: PathBuf = location.extract()?;
    if s3.is_given() {
        return Err(PyValueError::new_err(format!(
            "{}: the s3_* arguments are for an s3://BUCKET/PREFIX repository, not a local \
             directory",
            path.display()
        )));
    }
    Ok((Location::Local(path.clone()), Target::LocalDir(path)))
}

/// The S3 location `s3://{rest}` and its target.
fn s3_target(rest: &str, s3: S3Settings) -> PyResult<(Location, Target)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_end_matches('/');
    let location = if prefix.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{prefix}")
    };
    let usage = |message: String| PyValueError::new_err(format!("{location}: {message}"));
    if bucket.is_empty() {
        return Err(usage("no bucket: use s3://BUCKET/PREFIX".to_owned()));
    }
    let from_env = |given: Option<String>, var: &str| given.or_else(|| std::env::var(var).ok());
    let credential = |given: Option<String>, what: &str, argument: &str, var: &str| {
        from_env(given, var)
            .ok_or_else(|| usage(format!("no {what}: pass {argument}= or set {var}")))
    };
    let access_key_id = credential(
        s3.access_key_id,
        "S3 access key id",
        "s3_access_key_id",
        ACCESS_KEY_ID_VAR,
    )?;
    let secret_access_key = credential(
        s3.secret_access_key,
        "S3 secret access key",
        "s3_secret_access_key",
        SECRET_ACCESS_KEY_VAR,
    )?;
    let endpoint = from_env(s3.endpoint, ENDPOINT_VAR);
    if let Some(endpoint) = &endpoint
        && is_plain_http(endpoint)
        && !s3.allow_http
    {
        return Err(usage(format!(
            "the endpoint {endpoint} is plain http: use https, or pass s3_allow_http=True on a \
             trusted network or loopback"
        )));
    }
    let region = from_env(s3.region, REGION_VAR).unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let target = S3Target {
        endpoint,
        bucket: bucket.to_owned(),
        region,
        access_key_id,
        secret_access_key,
        allow_http: s3.allow_http,
        prefix: prefix.to_owned(),
    }
    .into_target()
    .map_err(|err| usage(err.to_string()))?;
    Ok((Location::S3(location), target))
}

/// Whether `endpoint` is a plain `http://` URL (the scheme in any case).
fn is_plain_http(endpoint: &str) -> bool {
    endpoint
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_recognised_in_any_case() {
        assert!(is_plain_http("http://127.0.0.1:8333"));
        assert!(is_plain_http("HTTP://s3.local"));
        assert!(!is_plain_http("https://s3.example.com"));
        assert!(!is_plain_http("http"));
    }
}
