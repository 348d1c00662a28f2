//! Reading the configuration file, and the trust rules for the files it names: nobody but
//! root (or the reader) may be able to change the configuration, the password file or the
//! CA file, and a file holding the directory password must not be readable by others.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use super::toml_error::{describe_toml_error, line_of_key};
use super::{Config, ConfigError, DirectoryConfig};

impl Config {
    /// Parses and validates `text`; `origin` is only used in error messages. No file
    /// permissions are checked (there is no file).
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: describe_toml_error(text, &err),
        })?;
        let local_groups = &mut config.unix.local_groups;
        local_groups.origin = origin.to_path_buf();
        local_groups.lines = local_groups
            .map
            .keys()
            .filter_map(|key| {
                let line = line_of_key(text, &["unix", "local_groups", key])?;
                Some((key.clone(), line))
            })
            .collect();
        // Used as the kernel resolves it: `Config::free_home` appends `.UID` to the path,
        // which after a trailing `/` (`/home/{name}/`) would be a directory inside another
        // user's home, and homes are compared resolved (`crate::paths`).
        // (A relative one is left for `validate` to refuse.)
        if config.unix.home.starts_with('/') {
            config.unix.home = crate::paths::resolved(&config.unix.home).into_owned();
        }
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads, parses and validates the file at `path`, then refuses it if it holds the
    /// directory password and group or others can read it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read { path: path.to_path_buf(), source };
        let mut file = File::open(path).map_err(read_error)?;
        // The mode comes from the open file, not the path, so a file swapped in between the
        // check and the read cannot slip through.
        let metadata = file.metadata().map_err(read_error)?;
        let mode = metadata.permissions().mode();
        crate::trust::check_writers(path, &metadata).map_err(|untrusted| {
            ConfigError::WritableByOthers {
                path: path.to_path_buf(),
                mode: untrusted.mode,
                owner: untrusted.owner,
                fix: untrusted.fix,
            }
        })?;
        // The text may hold the password; wipe it once parsed.
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(read_error)?;

        let config = Config::from_toml_str(&text, path)?;
        if config.directory.password.is_some()
            && !config.auth.allow_readable_config
            && mode & 0o044 != 0
        {
            return Err(ConfigError::InsecurePermissions {
                path: path.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
        Ok(config)
    }

    /// The directory password: the inline `password`, or the first line of `password_file`
    /// (without its line ending), or `None` if neither is configured.
    pub fn directory_password(&self) -> Result<Option<Zeroizing<String>>, ConfigError> {
        if let Some(password) = &self.directory.password {
            return Ok(Some(password.clone()));
        }
        let Some(path) = &self.directory.password_file else {
            return Ok(None);
        };
        let read_error = |source| ConfigError::PasswordFile { path: path.clone(), source };
        let (mut file, metadata) = open_named_file(
            path,
            "directory.password_file",
            "it holds the directory password: whoever owns it can read it, whoever can \
             write it chooses the password dircache sends",
            read_error,
        )?;
        let mode = metadata.permissions().mode();
        if !self.auth.allow_readable_config && mode & 0o044 != 0 {
            return Err(ConfigError::InsecurePasswordFile {
                path: path.clone(),
                mode: mode & 0o7777,
            });
        }
        // Sized up front so the buffer is not reallocated, which would leave unwiped copies.
        let capacity = usize::try_from(metadata.len()).unwrap_or(0).saturating_add(1);
        let mut text = Zeroizing::new(String::with_capacity(capacity));
        file.read_to_string(&mut text).map_err(read_error)?;
        let first_line = text.lines().next().unwrap_or("");
        if first_line.is_empty() {
            return Err(ConfigError::EmptyPasswordFile { path: path.clone() });
        }
        Ok(Some(Zeroizing::new(first_line.to_string())))
    }
}

impl DirectoryConfig {
    /// `ca_file`, opened and checked like the configuration itself (nobody but root or the
    /// reader may be able to change it; reading is fine: it holds no secret), or `None`
    /// when none is configured.
    pub fn open_ca_file(&self) -> Result<Option<File>, ConfigError> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        let read_error = |source| ConfigError::CaFile { path: path.clone(), source };
        let (file, _) = open_named_file(
            path,
            "directory.ca_file",
            "whoever can write it decides which server is trusted as the directory",
            read_error,
        )?;
        Ok(Some(file))
    }
}

/// Opens a file the configuration names under `key` and refuses it when someone else
/// than root or the reader could have written it ([`crate::trust::check_writers`]);
/// `why` says what such a writer could do. The metadata is the open file's.
fn open_named_file(
    path: &Path,
    key: &'static str,
    why: &'static str,
    read_error: impl Fn(io::Error) -> ConfigError,
) -> Result<(File, std::fs::Metadata), ConfigError> {
    let file = File::open(path).map_err(&read_error)?;
    let metadata = file.metadata().map_err(&read_error)?;
    crate::trust::check_writers(path, &metadata).map_err(|untrusted| {
        ConfigError::UntrustedFile {
            key,
            path: path.to_path_buf(),
            mode: untrusted.mode,
            owner: untrusted.owner,
            why,
            fix: untrusted.fix,
        }
    })?;
    Ok((file, metadata))
}
