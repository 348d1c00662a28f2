//! User and group names: what is allowed, and how names are compared.
//!
//! Names end up in `/etc/passwd`-format lines, in file paths (`home = "/home/{name}"`), in
//! command lines other tools build and in log lines, so only a safe set of characters is
//! accepted ([`validate_name`]). A name is also a *key* other software trusts: sudoers gives
//! `%admin` root, sshd's `AllowGroups` and pam_access match names, and packages create groups
//! such as `docker` later. So a name with a meaning on the host never becomes a dircache user
//! or group, even while no local account has it ([`NamePolicy`]). Sync, `user add`, PAM and NSS
//! all ask [`NamePolicy::check`]; NSS, which reads no configuration, asks the built-in policy.
//!
//! Matching is case-insensitive (a directory says `Alice@Example.com` and `alice@example.com`
//! are one person); the spelling first recorded is kept for display.

use std::borrow::Cow;

use thiserror::Error;

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name is {0} bytes long; at most {MAX_NAME_LEN} are allowed")]
    TooLong(usize),
    #[error("the name contains {0:?}; names may hold only ASCII letters, digits and . _ - @ +")]
    ForbiddenChar(char),
    #[error("the name starts with '-' or '+', which tools read as an option or a NIS entry")]
    LeadingDash,
    #[error("'.' and '..' are not names")]
    DotName,
    #[error("a name made only of digits would be read as a numeric id")]
    AllDigits,
    #[error(
        "{0:?} has a meaning on this host (a system account, or a group that grants privileges \
         such as admin, sudo or docker); such names never become dircache users or groups"
    )]
    SystemName(String),
    #[error("{0:?} is reserved by [unix] reserved_names")]
    ConfiguredReserved(String),
}

/// Checks that `name` can safely be a Unix user or group name: ASCII letters, digits and
/// `. _ - @ +`, not starting with `-` or `+`, not `.` or `..`, not all digits, at most
/// [`MAX_NAME_LEN`] bytes. Reserved names are [`NamePolicy`]'s business.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    // Bytes, not chars: the safe set is ASCII, and every NSS answer passes here.
    if let Some(at) = name.bytes().position(|b| !is_safe(b)) {
        // Every byte before `at` is ASCII, so `at` starts a character.
        let bad = name.get(at..).and_then(|rest| rest.chars().next());
        return Err(NameError::ForbiddenChar(bad.unwrap_or(char::REPLACEMENT_CHARACTER)));
    }
    if name.starts_with('-') || name.starts_with('+') {
        return Err(NameError::LeadingDash);
    }
    if name == "." || name == ".." {
        return Err(NameError::DotName);
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::AllDigits);
    }
    Ok(())
}

/// The safe set. `:` and newline break passwd lines, `/` and `\` paths, `,` group member
/// lists; spaces, `;`, `$`, `*`, quotes and brackets break the command lines other tools
/// build from names; non-ASCII letters can pass for ASCII ones (a Cyrillic `а` in `аdmin`)
/// and invisible characters for nothing at all.
fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+')
}

/// Names that belong to the system or carry privilege on Debian and its derivatives: the
/// accounts and groups of base-passwd, adduser's system groups, groups and accounts that
/// packages create and that grant root, device or database access once they exist, and the
/// default users of cloud images (cloud-init's sudoers grants them root). Compared folded.
/// More come from `[unix] reserved_names`. Sorted (a unit test checks): every NSS answer
/// is checked against it, a binary search instead of a hundred comparisons.
#[rustfmt::skip]
const SYSTEM_NAMES: &[&str] = &[
    "adm", "admin", "administrator", "administrators", "audio", "avahi", "azureuser", "backup",
    "bin", "bluetooth", "cdrom", "centos", "chrony", "cloud-user", "colord", "crontab",
    "daemon", "debian", "dialout", "dip", "dircache", "disk", "dnsmasq", "docker", "ec2-user",
    "fax", "fedora", "floppy", "games", "gdm", "gnats", "incus", "incus-admin", "input", "irc",
    "kmem", "kvm", "libvirt", "libvirt-qemu", "libvirtd", "lightdm", "list", "locate", "lp",
    "lpadmin", "lxd", "mail", "man", "messagebus", "microk8s", "mlocate", "mysql", "netdev",
    "news", "nobody", "nogroup", "nslcd", "ntp", "opc", "operator", "plocate", "plugdev",
    "podman", "polkitd", "postdrop", "postfix", "postgres", "proxy", "qemu", "render", "root",
    "sambashare", "sasl", "sddm", "sgx", "shadow", "src", "ssh", "sshd", "ssl-cert", "sssd",
    "staff", "sudo", "sudoers", "sync", "sys", "syslog", "systemd", "tape", "tcpdump", "tss",
    "tty", "ubuntu", "users", "utmp", "uucp", "uuidd", "vboxusers", "video", "voice", "wheel",
    "winbind", "wireshark", "www", "www-data",
];

/// Whole families of system names: systemd's (`systemd-network`, …) and Debian's service
/// accounts (`_apt`, `_chrony`).
const SYSTEM_PREFIXES: &[&str] = &["systemd-", "_"];

/// Whether `name` (in any case) is one of the built-in names with system meaning.
pub fn has_system_meaning(name: &str) -> bool {
    folded_has_system_meaning(&folded_name(name))
}

/// [`has_system_meaning`] of a name already folded.
fn folded_has_system_meaning(folded: &str) -> bool {
    SYSTEM_NAMES.binary_search(&folded).is_ok()
        || SYSTEM_PREFIXES.iter().any(|prefix| folded.starts_with(prefix))
}

/// The one rule for the names dircache users and groups may have: the safe character set
/// ([`validate_name`]), none of the built-in names with system meaning, none of the
/// administrator's `[unix] reserved_names`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamePolicy {
    /// `[unix] reserved_names`, folded, sorted, without repeats: a short list searched, not
    /// a hash set, whose random seed the NSS module's first lookup would have to fetch.
    reserved: Vec<String>,
}

impl NamePolicy {
    /// The built-in policy plus `reserved` (the configuration's `[unix] reserved_names`).
    pub fn new<S: AsRef<str>>(reserved: &[S]) -> NamePolicy {
        let mut reserved: Vec<String> =
            reserved.iter().map(|name| fold_name(name.as_ref())).collect();
        reserved.sort_unstable();
        reserved.dedup();
        NamePolicy { reserved }
    }

    /// Whether `name` may be a dircache user or group name, and why not.
    pub fn check(&self, name: &str) -> Result<(), NameError> {
        validate_name(name)?;
        // Folded once, without a copy for most names: every NSS lookup checks two names.
        let folded = folded_name(name);
        if folded_has_system_meaning(&folded) {
            return Err(NameError::SystemName(name.to_string()));
        }
        if self.reserved.binary_search_by(|name| name.as_str().cmp(&folded)).is_ok() {
            return Err(NameError::ConfiguredReserved(name.to_string()));
        }
        Ok(())
    }
}

/// Unicode's default-ignorable code points (zero-width characters, joiners, bidirectional
/// controls, variation selectors, tags, the soft hyphen, …) and the interlinear annotation
/// controls: characters that change nothing or something else on screen.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// The form two names are compared in.
pub fn fold_name(name: &str) -> String {
    // The same result for ASCII, without `to_lowercase`'s Unicode tables (the NSS module
    // folds every local account name on a process's first lookup).
    if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        name.to_lowercase()
    }
}

/// [`fold_name`], borrowing `name` when folding leaves it as it is (most names): sets of
/// a million folded names then hold no second copy of each.
pub fn folded_name(name: &str) -> Cow<'_, str> {
    if name.is_ascii() && !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(name);
    }
    let folded = fold_name(name);
    if folded == name {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(folded)
    }
}

/// Whether two names denote the same account.
pub fn same_name(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        // What `fold_name` would compare, without allocating.
        return a.eq_ignore_ascii_case(b);
    }
    a == b || fold_name(a) == fold_name(b)
}

/// The 64-bit key a name is indexed under in the cache files: FNV-1a over the folded name.
/// Part of the on-disk format; changing it needs a new format version.
pub fn name_key(name: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let fnv = |bytes: &mut dyn Iterator<Item = u8>| {
        bytes.fold(OFFSET_BASIS, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
    };
    // An ASCII name folds byte by byte, as `fold_name` would, without a folded copy: every
    // lookup by name hashes one.
    if name.is_ascii() {
        return fnv(&mut name.bytes().map(|byte| byte.to_ascii_lowercase()));
    }
    fnv(&mut fold_name(name).bytes())
}

#[cfg(test)]
mod tests;
