//! The folder of launcher releases on Artifactory as plain data: its URLs, its listings, the
//! checksums it gives and the credentials header, with no socket in sight.

use std::fmt;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

pub const TOKEN_VAR: &str = "ARTIFACTORY_TOKEN";
pub const USER_VAR: &str = "ARTIFACTORY_USER";
pub const PASSWORD_VAR: &str = "ARTIFACTORY_PASSWORD";
/// Overrides `artifactory.url` of the config, e.g. for a mirror or a test server.
pub const URL_VAR: &str = "SLURM_IMAGE_ARTIFACTORY_URL";
/// Every variable that may carry an Artifactory credential: no other tool is given them.
pub const CREDENTIAL_VARS: [&str; 3] = [TOKEN_VAR, USER_VAR, PASSWORD_VAR];

/// The storage API address of a folder: `https://h/artifactory/REPO/PATH/` becomes
/// `https://h/artifactory/api/storage/REPO/PATH`; `None` when the URL is not an Artifactory folder.
pub fn storage_api_url(folder: &str) -> Option<String> {
    let (base, rest) = folder.split_once("/artifactory/")?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with("api/") || base.is_empty() {
        return None;
    }
    Some(format!("{base}/artifactory/api/storage/{rest}"))
}

#[derive(Deserialize)]
struct StorageListing {
    children: Vec<StorageChild>,
}

#[derive(Deserialize)]
struct StorageChild {
    uri: String,
    #[serde(default)]
    folder: bool,
}

/// The file names in a storage API folder listing (`children[].uri` is `/name`); folders are
/// left out. The names are as the server sent them: only `releases` decides what is a release.
pub fn names_from_storage_listing(json: &str) -> anyhow::Result<Vec<String>> {
    let listing: StorageListing = serde_json::from_str(json)
        .context("the storage API's answer is not a folder listing (JSON with `children`)")?;
    Ok(listing
        .children
        .into_iter()
        .filter(|child| !child.folder)
        .map(|child| {
            child
                .uri
                .strip_prefix('/')
                .unwrap_or(&child.uri)
                .to_string()
        })
        .collect())
}

/// The link targets of Artifactory's HTML folder page (`<a href="NAME">NAME</a>` per entry);
/// folders (ending in `/`, including `../`) are left out.
pub fn names_from_index_html(html: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("href=\"") {
        rest = &rest[at + "href=\"".len()..];
        let Some(end) = rest.find('"') else { break };
        let name = &rest[..end];
        rest = &rest[end..];
        if !name.is_empty() && !name.ends_with('/') {
            names.push(name.to_string());
        }
    }
    names
}

/// A sha256 as 64 hex digits, lowercased; anything else is `None`.
pub fn parse_sha256(value: &str) -> Option<String> {
    let value = value.trim();
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

#[derive(Deserialize)]
struct FileInfo {
    checksums: Option<Checksums>,
    /// Bytes, as a string.
    size: Option<String>,
}

#[derive(Deserialize)]
struct Checksums {
    sha256: Option<String>,
}

/// What the storage API says of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    /// Its sha256, when the info holds a valid one.
    pub sha256: Option<String>,
    /// Its size in bytes, when the info gives one.
    pub size: Option<u64>,
}

/// The sha256 and size in a storage API file info (`checksums.sha256`, `size`).
pub fn listed_from_file_info(json: &str) -> Listed {
    let Ok(info) = serde_json::from_str::<FileInfo>(json) else {
        return Listed::default();
    };
    Listed {
        sha256: info
            .checksums
            .and_then(|c| c.sha256)
            .and_then(|sum| parse_sha256(&sum)),
        size: info.size.and_then(|size| size.trim().parse().ok()),
    }
}

/// The folder URL to use: checked, with a trailing `/`. `source` names where it came from.
pub fn folder_url(url: &str, source: &str) -> anyhow::Result<String> {
    let url = url.trim();
    let Some(after_scheme) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        bail!("{source} must start with https:// (or http:// for a local mirror)");
    };
    let authority = after_scheme.split('/').next().unwrap_or("");
    // The URL is printed in messages, so a password in it would leak; the URL itself is not
    // repeated here for the same reason.
    if authority.contains('@') {
        bail!(
            "{source} carries credentials in the URL: remove them and set {TOKEN_VAR} \
             (or {USER_VAR} and {PASSWORD_VAR}) instead"
        );
    }
    if authority.is_empty() {
        bail!("{source} has no host name");
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

/// Where a redirect leads, when it may be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The absolute URL to request next.
    pub url: String,
    /// Whether it is on another host (or port, or scheme) than the configured folder: such a
    /// host gets no credentials, its checksum headers are not trusted, and the user is told.
    pub other_host: bool,
}

/// Decides a redirect from `from` (`Location: location`) for a client of the `folder` URL:
/// from https only to https, and only to http(s) at all.
pub fn redirect(folder: &str, from: &str, location: &str) -> Result<Redirect, String> {
    let location = location.trim();
    let (from_scheme, _) = from.split_once("://").ok_or("not an absolute URL")?;
    let url = if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{from_scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(from))
    } else {
        // Relative to the folder of the URL that redirected.
        let base = from.split(['?', '#']).next().unwrap_or(from);
        let folder_end = base.rfind('/').map_or(base.len(), |i| i + 1);
        format!("{}{location}", &base[..folder_end])
    };
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let shown = without_query(&url);
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "refusing the redirect from {} to {shown}: only http(s) is followed",
            without_query(from)
        ));
    }
    if from_scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "refusing the redirect from {} to {shown}: it leaves https for plain http, where the package could \
             be swapped on the way; fix the server, or point artifactory.url (or {}) at where the files are",
            without_query(from),
            "SLURM_IMAGE_ARTIFACTORY_URL"
        ));
    }
    Ok(Redirect {
        other_host: origin(&url) != origin(folder),
        url,
    })
}

/// `scheme://host[:port]` of a URL, lowercased.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}").to_ascii_lowercase()
}

/// A URL without its query or fragment, for messages: a signed download URL's query is a
/// credential of its own.
pub fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// The `Authorization` header value from the environment (`var` looks a variable up), if any
/// credentials are set.
pub fn credentials(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Secret>> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(token) = set(TOKEN_VAR) {
        return Ok(Some(Secret(format!("Bearer {token}"))));
    }
    match (set(USER_VAR), set(PASSWORD_VAR)) {
        (Some(user), Some(password)) => Ok(Some(Secret(format!(
            "Basic {}",
            STANDARD.encode(format!("{user}:{password}"))
        )))),
        (Some(_), None) => bail!(
            "{USER_VAR} is set but {PASSWORD_VAR} is not: set both (the password may be an access token), or set {TOKEN_VAR}"
        ),
        (None, Some(_)) => bail!(
            "{PASSWORD_VAR} is set but {USER_VAR} is not: set both, or put an access token in {TOKEN_VAR}"
        ),
        (None, None) => Ok(None),
    }
}

/// An `Authorization` header value; never shown, not even by `{:?}`.
pub struct Secret(String);

impl Secret {
    /// The value, for the header and nowhere else.
    pub fn header_value(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_https_and_say_when_they_leave_the_host() {
        let folder = "https://arti.example.com/artifactory/r/f/";
        let from = "https://arti.example.com/artifactory/r/f/x.deb";
        let go = |location: &str| redirect(folder, from, location);
        assert_eq!(
            go("/artifactory/r/g/x.deb"),
            Ok(Redirect {
                url: "https://arti.example.com/artifactory/r/g/x.deb".into(),
                other_host: false
            })
        );
        assert_eq!(
            go("y.deb").unwrap().url,
            "https://arti.example.com/artifactory/r/f/y.deb"
        );
        assert_eq!(
            go("https://ARTI.example.com/z").map(|r| r.other_host),
            Ok(false)
        );
        let off = go("https://cdn.example.net/blob?sig=s3cr3t").unwrap();
        assert!(off.other_host);
        assert_eq!(
            go("//cdn.example.net/blob").unwrap().url,
            "https://cdn.example.net/blob"
        );
        assert!(go("https://arti.example.com:8443/x").unwrap().other_host);
        for bad in [
            "http://127.0.0.2:8080/x.deb?sig=s3cr3t",
            "HTTP://arti.example.com/x",
        ] {
            let err = go(bad).unwrap_err();
            assert!(err.contains("leaves https for plain http"), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
        assert!(go("ftp://x/y").unwrap_err().contains("only http(s)"));
        // A plain-http mirror may redirect within http, and is told when it leaves its host.
        let plain = "http://127.0.0.1:8081/artifactory/r/f/";
        let hop = redirect(plain, &format!("{plain}x.deb"), "http://127.0.0.2:9/x.deb").unwrap();
        assert!(hop.other_host);
    }
    use crate::model::launcher_version::releases;

    #[test]
    fn storage_api_url_from_folder() {
        assert_eq!(
            storage_api_url("https://arti.example/artifactory/analytics-misc-stable-local/ard-capsules-core/")
                .as_deref(),
            Some("https://arti.example/artifactory/api/storage/analytics-misc-stable-local/ard-capsules-core")
        );
        assert_eq!(
            storage_api_url("http://127.0.0.1:4000/artifactory/repo/").as_deref(),
            Some("http://127.0.0.1:4000/artifactory/api/storage/repo")
        );
        assert_eq!(storage_api_url("https://mirror.example/launchers/"), None);
        assert_eq!(storage_api_url("https://arti.example/artifactory/"), None);
        assert_eq!(
            storage_api_url("https://arti.example/artifactory/api/storage/x/"),
            None
        );
    }

    #[test]
    fn storage_listing_gives_file_names_only() {
        let json = r#"{
          "repo": "analytics-misc-stable-local", "path": "/ard-capsules-core",
          "created": "2023-01-01T00:00:00.000Z",
          "children": [
            {"uri": "/hpe-hpc-launcher_3.3.1-2_amd64.deb", "folder": false},
            {"uri": "/old", "folder": true},
            {"uri": "/hpe-hpc-launcher_3.10.1-12_amd64.deb", "folder": false},
            {"uri": "/../hpe-hpc-launcher_9.9.9-9_amd64.deb", "folder": false}
          ],
          "uri": "https://arti.example/artifactory/api/storage/analytics-misc-stable-local/ard-capsules-core"
        }"#;
        let names = names_from_storage_listing(json).unwrap();
        assert_eq!(
            names,
            [
                "hpe-hpc-launcher_3.3.1-2_amd64.deb",
                "hpe-hpc-launcher_3.10.1-12_amd64.deb",
                "../hpe-hpc-launcher_9.9.9-9_amd64.deb"
            ]
        );
        let found: Vec<_> = releases(names.iter().map(String::as_str))
            .into_iter()
            .map(|p| p.version.to_string())
            .collect();
        assert_eq!(found, ["3.10.1-12", "3.3.1-2"]);
        let err = names_from_storage_listing("<html>").unwrap_err();
        assert!(format!("{err:#}").contains("not a folder listing"));
    }

    #[test]
    fn index_page_gives_file_names_only() {
        let html = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n<head><title>Index of \
            analytics-misc-stable-local/ard-capsules-core</title>\n</head>\n<body>\n<h1>Index of \
            analytics-misc-stable-local/ard-capsules-core/</h1>\n<pre>Name    Last modified      Size</pre><hr/>\n\
            <pre><a href=\"../\">../</a>\n\
            <a href=\"old/\">old/</a>                                  12-Mar-2024 10:01    -\n\
            <a href=\"hpe-hpc-launcher_3.9.0-0_amd64.deb\">hpe-hpc-launcher_3.9.0-0_amd64.deb</a>  12-Mar-2024 10:01  41.20 MB\n\
            <a href=\"hpe-hpc-launcher_3.10.1-12_amd64.deb\">hpe-hpc-launcher_3.10.1-12_amd64.deb</a>  01-Jun-2024 09:00  42.00 MB\n\
            <a href=\"hpe-hpc-launcher_3.10.1-12_amd64.deb.sha256\">hpe-hpc-launcher_3.10.1-12_amd64.deb.sha256</a>  01-Jun-2024 09:00  64 bytes\n\
            <a href=\"hpe-hpc-launcher_3.11.0-1.dev3_amd64.deb\">hpe-hpc-launcher_3.11.0-1.dev3_amd64.deb</a>  02-Jun-2024 09:00  42.00 MB\n\
            </pre>\n<hr/><address style=\"font-size:small;\">Artifactory Port 8081</address></body></html>";
        let names = names_from_index_html(html);
        assert_eq!(names.len(), 4, "{names:?}");
        let found: Vec<_> = releases(names.iter().map(String::as_str))
            .into_iter()
            .map(|p| p.file_name)
            .collect();
        assert_eq!(
            found,
            [
                "hpe-hpc-launcher_3.10.1-12_amd64.deb",
                "hpe-hpc-launcher_3.9.0-0_amd64.deb"
            ]
        );
        assert!(names_from_index_html("<a href=\"unterminated").is_empty());
    }

    #[test]
    fn checksums() {
        let sum = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(
            parse_sha256(sum).as_deref(),
            Some(sum.to_ascii_lowercase().as_str())
        );
        assert_eq!(parse_sha256(" abc "), None);
        assert_eq!(parse_sha256(&format!("{sum}0")), None);
        assert_eq!(parse_sha256(&sum.replace('E', "g")), None);
        let info = format!(
            r#"{{"size": "10", "checksums": {{"md5": "x", "sha1": "y", "sha256": "{sum}"}}}}"#
        );
        assert_eq!(
            listed_from_file_info(&info).sha256.as_deref(),
            Some(sum.to_ascii_lowercase().as_str())
        );
        assert_eq!(
            listed_from_file_info(r#"{"checksums": {"md5": "x"}}"#).sha256,
            None
        );
        assert_eq!(listed_from_file_info("nope").sha256, None);
        assert_eq!(listed_from_file_info(&info).size, Some(10));
        assert_eq!(
            listed_from_file_info(r#"{"size": "ten"}"#),
            Listed::default()
        );
    }

    #[test]
    fn folder_urls_are_checked_without_showing_them() {
        assert_eq!(
            folder_url("https://h/artifactory/r/p", "X").unwrap(),
            "https://h/artifactory/r/p/"
        );
        assert_eq!(folder_url(" http://h/r/ ", "X").unwrap(), "http://h/r/");
        let err = folder_url("https://me:hunter2@h/artifactory/r/", "X")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("credentials in the URL") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(folder_url("ftp://h/r/", "X").is_err());
        assert!(folder_url("https:///r/", "X").is_err());
    }

    #[test]
    fn credentials_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(credentials(env(&[])).unwrap().is_none());
        let token = credentials(env(&[(TOKEN_VAR, "t0k"), (USER_VAR, "u")]))
            .unwrap()
            .unwrap();
        assert_eq!(token.0, "Bearer t0k");
        assert!(!format!("{token:?}").contains("t0k"));
        let basic = credentials(env(&[(USER_VAR, "user"), (PASSWORD_VAR, "pa55word")]))
            .unwrap()
            .unwrap();
        assert_eq!(basic.0, "Basic dXNlcjpwYTU1d29yZA==");
        let err = credentials(env(&[(USER_VAR, "user")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(PASSWORD_VAR), "{err}");
        let err = credentials(env(&[(PASSWORD_VAR, "secret")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(USER_VAR) && !err.contains("secret"), "{err}");
    }
}
