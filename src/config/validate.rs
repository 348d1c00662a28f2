//! The semantic checks of the configuration: every key within its bounds, every path
//! absolute, the directory's address usable. Each refusal names the key.

use std::path::Path;

use super::{
    Config, ConfigError, DirectoryKind, DEFAULT_CACHE_DIR, DEFAULT_CONNECT_TIMEOUT_SECS,
    DEFAULT_MAX_REPLY_MIB,
};

/// The largest `max_reply_mib`: 64 GiB, far beyond any directory, and no overflow.
const MAX_MAX_REPLY_MIB: u64 = 64 * 1024;
const MIN_ARGON2_MEMORY_KIB: u32 = 8 * 1024;
const MAX_ARGON2_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// The longest `sync.interval_secs`: a week.
const MAX_INTERVAL_SECS: u64 = 7 * 86_400;

impl Config {
    /// The semantic checks `from_toml_str` and `load` apply; public so that a `Config` built
    /// in code can be checked the same way.
    pub fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key: key.to_string(),
            reason,
        };

        if !self.cache.dir.is_absolute() {
            return Err(invalid(
                "cache.dir",
                format!(
                    "{:?} is not an absolute path; use one such as \"{DEFAULT_CACHE_DIR}\"",
                    self.cache.dir
                ),
            ));
        }

        self.validate_directory(&invalid)?;

        for (key, entries) in
            [("sync.domains", &self.sync.domains), ("sync.groups", &self.sync.groups)]
        {
            if entries.iter().any(|entry| entry.trim().is_empty()) {
                return Err(invalid(
                    key,
                    "contains an empty entry; remove it (an empty list means no filter)"
                        .to_string(),
                ));
            }
        }
        if self.sync.max_delete_percent > 100 {
            return Err(invalid(
                "sync.max_delete_percent",
                format!(
                    "{} is more than 100; give a percentage from 0 to 100",
                    self.sync.max_delete_percent
                ),
            ));
        }
        if self.sync.interval_secs < 60 {
            return Err(invalid(
                "sync.interval_secs",
                format!("{} is less than 60; sync at most once a minute", self.sync.interval_secs),
            ));
        }
        if self.sync.interval_secs > MAX_INTERVAL_SECS {
            return Err(invalid(
                "sync.interval_secs",
                format!(
                    "{} is more than {MAX_INTERVAL_SECS} (7 days); a directory change would \
                     take too long to arrive",
                    self.sync.interval_secs
                ),
            ));
        }

        self.validate_unix(&invalid, origin)?;
        self.validate_fleet(&invalid)?;

        if let Some(path) = &self.status.prometheus_textfile {
            if !path.is_absolute() || path.file_name().is_none() {
                return Err(invalid(
                    "status.prometheus_textfile",
                    format!(
                        "{path:?} is not an absolute file path; use one such as \
                         \"/var/lib/prometheus/node-exporter/dircache.prom\""
                    ),
                ));
            }
        }
        if let Some(age) = self.status.max_sync_age_secs {
            if age < 60 {
                return Err(invalid(
                    "status.max_sync_age_secs",
                    format!("{age} is less than 60; syncs run at most once a minute"),
                ));
            }
        }

        let argon2 = &self.passwords;
        if !(MIN_ARGON2_MEMORY_KIB..=MAX_ARGON2_MEMORY_KIB).contains(&argon2.argon2_memory_kib) {
            return Err(invalid(
                "passwords.argon2_memory_kib",
                format!(
                    "{} is outside {MIN_ARGON2_MEMORY_KIB}..={MAX_ARGON2_MEMORY_KIB} (8 MiB to \
                     4 GiB); the default is 32768",
                    argon2.argon2_memory_kib
                ),
            ));
        }
        for (key, value) in [
            ("passwords.argon2_iterations", argon2.argon2_iterations),
            ("passwords.argon2_parallelism", argon2.argon2_parallelism),
        ] {
            if !(1..=16).contains(&value) {
                return Err(invalid(key, format!("{value} is outside 1..=16")));
            }
        }

        if !(1..=365).contains(&self.auth.offline_days) {
            return Err(invalid(
                "auth.offline_days",
                format!(
                    "{} is outside 1..=365 (days a cached password stays usable offline)",
                    self.auth.offline_days
                ),
            ));
        }
        if !(1..=1000).contains(&self.auth.failure_threshold) {
            let value = self.auth.failure_threshold;
            return Err(invalid("auth.failure_threshold", format!("{value} is outside 1..=1000")));
        }
        if self.auth.max_failure_delay_secs > 60 {
            let value = self.auth.max_failure_delay_secs;
            return Err(invalid(
                "auth.max_failure_delay_secs",
                format!("{value} is more than 60 (a login must not hang for minutes)"),
            ));
        }
        if self.auth.failure_delay_secs > self.auth.max_failure_delay_secs {
            let value = self.auth.failure_delay_secs;
            return Err(invalid(
                "auth.failure_delay_secs",
                format!("{value} is more than max_failure_delay_secs"),
            ));
        }
        Ok(())
    }

    fn validate_fleet(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        if let Some(publish) = &self.publish {
            if !publish.signing_key_file.is_absolute() {
                return Err(invalid(
                    "publish.signing_key_file",
                    format!("{:?} is not an absolute path", publish.signing_key_file),
                ));
            }
        }
        let Some(snapshot) = &self.snapshot else {
            return Ok(());
        };
        if self.publish.is_some() {
            return Err(invalid(
                "snapshot",
                "is set together with [publish]; the publisher syncs from the directory, every \
                 other host pulls: keep one of the two"
                    .to_string(),
            ));
        }
        if snapshot.url.is_empty() {
            return Err(invalid(
                "snapshot.url",
                "is required in [snapshot]; give the https:// URL the publisher's files are \
                 served under"
                    .to_string(),
            ));
        }
        check_url(&snapshot.url)
            .map_err(|reason| invalid("snapshot.url", format!("{:?} {reason}", snapshot.url)))?;
        match (&snapshot.public_key_file, &snapshot.public_key) {
            (None, None) => {
                return Err(invalid(
                    "snapshot.public_key_file",
                    "is required in [snapshot] (or public_key): the publisher's key, written by \
                     `dircache-sync keygen`"
                        .to_string(),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "snapshot.public_key",
                    "is set together with `snapshot.public_key_file`; keep only one of them"
                        .to_string(),
                ))
            }
            _ => {}
        }
        for (key, path) in [
            ("snapshot.public_key_file", &snapshot.public_key_file),
            ("snapshot.ca_file", &snapshot.ca_file),
        ] {
            if let Some(path) = path {
                if !path.is_absolute() {
                    return Err(invalid(key, format!("{path:?} is not an absolute path")));
                }
            }
        }
        if snapshot.max_age_secs < 60 {
            return Err(invalid(
                "snapshot.max_age_secs",
                format!(
                    "{} is less than 60; the publisher cannot publish that often",
                    snapshot.max_age_secs
                ),
            ));
        }
        if snapshot.timeout_secs < 1 {
            return Err(invalid("snapshot.timeout_secs", "must be at least 1".to_string()));
        }
        if !(1..=snapshot.timeout_secs).contains(&snapshot.connect_timeout_secs) {
            return Err(invalid(
                "snapshot.connect_timeout_secs",
                format!("{} is outside 1..=timeout_secs", snapshot.connect_timeout_secs),
            ));
        }
        if !(1..=MAX_MAX_REPLY_MIB).contains(&snapshot.max_file_mib) {
            return Err(invalid(
                "snapshot.max_file_mib",
                format!("{} is outside 1..={MAX_MAX_REPLY_MIB}", snapshot.max_file_mib),
            ));
        }
        Ok(())
    }

    fn validate_directory(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let dir = &self.directory;
        if dir.password.is_some() && dir.password_file.is_some() {
            return Err(invalid(
                "directory.password",
                "is set together with `directory.password_file`; keep only one of them".to_string(),
            ));
        }
        // A relative path would be resolved against whatever directory the process calling
        // PAM happens to run in.
        for (key, path) in
            [("directory.password_file", &dir.password_file), ("directory.ca_file", &dir.ca_file)]
        {
            if let Some(path) = path {
                if !path.is_absolute() {
                    return Err(invalid(key, format!("{path:?} is not an absolute path")));
                }
            }
        }
        match dir.kind {
            DirectoryKind::Icewarp => match dir.server.as_deref() {
                None => {
                    return Err(invalid(
                        "directory.server",
                        "is required when directory.type is \"icewarp\"; give the host name, \
                         IP address or full https:// URL of the IceWarp server"
                            .to_string(),
                    ))
                }
                Some(server) => check_server(server).map_err(|reason| {
                    invalid("directory.server", format!("{server:?} {reason}"))
                })?,
            },
            DirectoryKind::ApplicationIntegration => match dir.url.as_deref() {
                None => {
                    return Err(invalid(
                        "directory.url",
                        "is required when directory.type is \"application-integration\"; give \
                         the full http:// or https:// URL of the integration endpoint"
                            .to_string(),
                    ))
                }
                Some(url) => check_url(url)
                    .map_err(|reason| invalid("directory.url", format!("{url:?} {reason}")))?,
            },
            DirectoryKind::None => {}
        }
        if dir.timeout_secs < 1 {
            return Err(invalid(
                "directory.timeout_secs",
                "is 0; give at least 1 second".to_string(),
            ));
        }
        if let Some(secs) = dir.connect_timeout_secs {
            if !(1..=dir.timeout_secs).contains(&secs) {
                return Err(invalid(
                    "directory.connect_timeout_secs",
                    format!(
                        "{secs} is not between 1 and directory.timeout_secs ({}); the default \
                         is {DEFAULT_CONNECT_TIMEOUT_SECS}",
                        dir.timeout_secs
                    ),
                ));
            }
        }
        match (dir.max_reply_mib, dir.max_reply_bytes) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "directory.max_reply_mib",
                    "and directory.max_reply_bytes are both given; keep max_reply_mib (the \
                     older max_reply_bytes says the same in bytes)"
                        .to_string(),
                ))
            }
            (Some(mib), None) if !(1..=MAX_MAX_REPLY_MIB).contains(&mib) => {
                return Err(invalid(
                    "directory.max_reply_mib",
                    format!(
                        "{mib} is not between 1 and {MAX_MAX_REPLY_MIB}; the default is \
                         {DEFAULT_MAX_REPLY_MIB}"
                    ),
                ))
            }
            (None, Some(bytes)) if !(1024..=MAX_MAX_REPLY_MIB << 20).contains(&bytes) => {
                return Err(invalid(
                    "directory.max_reply_bytes",
                    format!(
                        "{bytes} is not between 1024 and {}; better use max_reply_mib (default \
                         {DEFAULT_MAX_REPLY_MIB})",
                        MAX_MAX_REPLY_MIB << 20
                    ),
                ))
            }
            _ => {}
        }
        super::check_parallel_requests(dir.max_parallel_requests)
            .map_err(|reason| invalid("directory.max_parallel_requests", reason))?;
        Ok(())
    }

    fn validate_unix(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
        origin: &Path,
    ) -> Result<(), ConfigError> {
        let unix = &self.unix;
        let [low, high] = unix.uid_range;
        if low > high {
            return Err(invalid(
                "unix.uid_range",
                format!("[{low}, {high}] has its low end above its high end; write [low, high]"),
            ));
        }
        if let Some(what) = crate::ids::reserved_overlap(low, high) {
            return Err(invalid(
                "unix.uid_range",
                format!(
                    "[{low}, {high}] overlaps {what}; choose a range clear of 0-999, \
                     61184-65519, 65534-65535 and 4294967295, such as the default \
                     [1879048192, 2147352575]"
                ),
            ));
        }
        if !unix.home.starts_with('/') || !unix.home.contains("{name}") {
            return Err(invalid(
                "unix.home",
                format!(
                    "{:?} must be an absolute path containing {{name}}, such as \"/home/{{name}}\"",
                    unix.home
                ),
            ));
        }
        // A file's template is resolved as it is read (`Config::from_toml_str`); one built in
        // code must be written so: `Config::free_home` appends `.UID` to the path, which
        // after a trailing `/` would be a directory inside another user's home.
        if unix.home.starts_with('/') && crate::paths::resolved(&unix.home) != unix.home.as_str() {
            return Err(invalid(
                "unix.home",
                format!(
                    "{:?} must be written as the kernel resolves it (no trailing \"/\", \"//\", \
                     \".\" or \"..\"), such as \"/home/{{name}}\"",
                    unix.home
                ),
            ));
        }
        if !unix.shell.starts_with('/') {
            return Err(invalid(
                "unix.shell",
                format!("{:?} is not an absolute path; use one such as \"/bin/bash\"", unix.shell),
            ));
        }
        for (key, path) in [
            ("unix.local_passwd", &unix.local_passwd),
            ("unix.local_group", &unix.local_group),
            ("unix.local_subuid", &unix.local_subuid),
            ("unix.local_subgid", &unix.local_subgid),
        ] {
            if !path.is_absolute() {
                return Err(invalid(key, format!("{path:?} is not an absolute path")));
            }
        }
        // An entry no name can match (" finance", "x;y") would reserve nothing, silently.
        for name in &unix.reserved_names {
            if let Err(e) = crate::names::validate_name(name) {
                return Err(invalid(
                    "unix.reserved_names",
                    format!("{name:?} can never be a name ({e}); list names such as \"finance\""),
                ));
            }
        }
        self.validate_local_groups(origin)
    }

    /// What `[unix.local_groups]` can be checked for without /etc/group (which
    /// `grants::targets` reads at sync and `check` time): a local name glibc can match, never
    /// `root`, and directory group addresses that can be names.
    fn validate_local_groups(&self, origin: &Path) -> Result<(), ConfigError> {
        let local_groups = &self.unix.local_groups;
        let invalid = |local: &str, reason: String| {
            let mut error = local_groups.invalid(local, reason);
            if let ConfigError::Invalid { path, .. } | ConfigError::InvalidAt { path, .. } =
                &mut error
            {
                *path = origin.to_path_buf();
            }
            error
        };
        for (local, directory_groups) in &local_groups.map {
            if let Err(e) = crate::names::validate_name(local) {
                return Err(invalid(local, format!("{local:?} cannot be a local group ({e})")));
            }
            if crate::names::same_name(local, "root") {
                return Err(invalid(
                    local,
                    "the root group (gid 0) is never granted: its members own root's files; \
                     remove this line"
                        .to_string(),
                ));
            }
            if directory_groups.is_empty() {
                return Err(invalid(
                    local,
                    "is an empty list, which grants nothing; list directory group addresses \
                     such as [\"it-admins@example.com\"], or remove the line"
                        .to_string(),
                ));
            }
            for group in directory_groups {
                if let Err(e) = crate::names::validate_name(group) {
                    return Err(invalid(
                        local,
                        format!(
                            "{group:?} can never be a directory group ({e}); give the group's \
                             address, such as \"it-admins@example.com\""
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Accepts a host name, an IP address (IPv6 in brackets), either with an optional port, or a
/// full http(s) URL. Returns the reason for refusing otherwise.
fn check_server(server: &str) -> Result<(), String> {
    if server.contains("://") {
        return check_url(server);
    }
    if server.is_empty() {
        return Err("is empty; give a host name, IP address or full https:// URL".to_string());
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if let Some(bad) = server.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "contains {bad:?}; give a bare host name or IP address (optionally with :port), or \
             a full https:// URL"
        ));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        None => Err("does not start with http:// or https://".to_string()),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Err("has no host after the scheme".to_string())
        }
        Some(_) if url.chars().any(char::is_whitespace) => {
            Err("contains white space; percent-encode it as %20".to_string())
        }
        Some(_) => Ok(()),
    }
}
