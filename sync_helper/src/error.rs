//! Everything `dircache-sync` can fail with, and the one line it reports.

use std::error::Error as StdError;
use std::io;

use dircache::cache::CacheError;
use dircache::config::ConfigError;
use dircache::local_accounts::LocalAccountsError;
use dircache::passwords::PasswordError;
use dircache::privileges::Privilege;
use dircache::user_edits::EditError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    LocalAccounts(#[from] LocalAccountsError),

    #[error(transparent)]
    Cache(#[from] CacheError),

    #[error(transparent)]
    Edit(#[from] EditError),

    #[error(transparent)]
    Sync(#[from] dircache::sync::SyncError),

    #[error(transparent)]
    Directory(#[from] dircache::directory::DirectoryError),

    #[error(transparent)]
    Snapshot(#[from] dircache::snapshot::SnapshotError),

    #[error(
        "this host is a replica: it pulls its users from the publisher's snapshot \
         ([snapshot] {url}), and `user {command}` here would be undone by the next pull. Change \
         users on the publisher (then `dircache-sync publish`); only `user set NAME --disable` \
         / `--enable` work here, as a local overlay that outlasts pulls"
    )]
    Replica { url: String, command: &'static str },

    #[error("{0}")]
    SyncReported(String),

    #[error("cannot install the signal handlers: {0}")]
    Signals(#[source] io::Error),

    #[error("the new password cannot be used: {0}; nothing was changed")]
    UnusablePassword(#[source] PasswordError),

    #[error("{0}; nothing was changed")]
    Hash(#[source] PasswordError),

    #[error("cannot read the password from standard input: {0}")]
    ReadStdin(#[source] io::Error),

    #[error("cannot read the password from the terminal: {0}")]
    ReadTerminal(#[source] io::Error),

    #[error("the two passwords differ; nothing was changed, try again")]
    PasswordMismatch,

    #[error(
        "standard input is not a terminal, so the password cannot be asked for; pipe it in \
         with --password-stdin"
    )]
    NoTerminal,

    #[error(
        "{name} authenticates against the directory and has no local password: change it in \
         the directory, or first make the user local with `dircache-sync user set {name} \
         --auth local`"
    )]
    DirectoryUser { name: String },

    #[error(
        "--password-stdin cannot be used with --auth directory: directory users log in with \
         their directory password and have no local one"
    )]
    DirectoryUserWithPassword,

    #[error("{0} is both granted and revoked; give it to only one of --grant and --revoke")]
    GrantAndRevoke(Privilege),

    #[error("cannot write to standard output: {0}")]
    Output(#[source] io::Error),

    #[error("the system clock is set before 1970; correct it and retry")]
    ClockBeforeEpoch,

    #[error("checks failed: {0}; each FAIL line above says what to do")]
    ChecksFailed(String),

    #[error("cannot write the manual pages into {dir}: {source}")]
    ManPages { dir: std::path::PathBuf, source: io::Error },
}

impl CliError {
    /// The snapshot error inside, if this is one (the daemon backs off on server trouble).
    pub fn snapshot(&self) -> Option<&dircache::snapshot::SnapshotError> {
        match self {
            CliError::Snapshot(e) | CliError::Sync(dircache::sync::SyncError::Snapshot(e)) => {
                Some(e)
            }
            _ => None,
        }
    }

    /// A closed reader (`dircache-sync user list | head -1`) is the reader's choice, not a
    /// failure worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// The error and its causes on one line. Most library errors already quote their cause, so
/// a cause is added only when its text is not there yet.
pub fn one_line(error: &dyn StdError) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        let text = source.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = source.source();
    }
    // A log line per error: a cause quoting a server's text must neither split it nor
    // carry an escape sequence to the terminal.
    crate::output::one_printable_line(&line)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_escape_sequence_in_a_cause_is_shown_escaped() {
        let error = std::io::Error::other("server said \u{1b}]0;pwned\u{7}");
        assert_eq!(super::one_line(&error), "server said \\u{1b}]0;pwned\\u{7}");
    }

    use super::*;
    use std::path::PathBuf;

    #[test]
    fn causes_already_quoted_are_not_repeated() {
        let error = CliError::Config(ConfigError::Read {
            path: PathBuf::from("/etc/x.toml"),
            source: io::Error::new(io::ErrorKind::NotFound, "gone"),
        });
        let line = one_line(&error);
        assert_eq!(line.matches("gone").count(), 1, "{line}");
    }

    #[test]
    fn unquoted_causes_are_appended_on_the_same_line() {
        #[derive(Debug, Error)]
        #[error("outer")]
        struct Outer(#[source] io::Error);
        let line = one_line(&Outer(io::Error::other("inner\nmore")));
        assert_eq!(line, "outer: inner more");
    }
}
