//! The C side of NSS answers, without `unsafe`: the status codes, packing an entry into the
//! caller's buffer the way glibc expects (`struct passwd` / `struct group` with their strings
//! and pointers inside the buffer), and growing the `initgroups_dyn` array. The `.so` only
//! hands these its raw buffers.

use super::{GroupEntry, Reply};
use crate::cache::PublicUser;
use crate::user::EXPIRED_LONG_AGO;

/// NSS status codes (`enum nss_status`).
pub const NSS_STATUS_TRYAGAIN: i32 = -2;
pub const NSS_STATUS_UNAVAIL: i32 = -1;
pub const NSS_STATUS_NOTFOUND: i32 = 0;
pub const NSS_STATUS_SUCCESS: i32 = 1;

/// Offsets into the caller's buffer of a packed `struct passwd`'s strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswdLayout {
    pub name: usize,
    pub passwd: usize,
    pub uid: u32,
    pub gid: u32,
    pub gecos: usize,
    pub dir: usize,
    pub shell: usize,
}

/// A packed `struct spwd`: the strings' offsets and the numbers (`-1` is an empty field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowLayout {
    pub name: usize,
    pub passwd: usize,
    pub last_change: i64,
    pub min: i64,
    pub max: i64,
    pub warn: i64,
    pub inactive: i64,
    pub expire: i64,
}

/// The password field of every dircache shadow entry: no hash matches it (`!` locks, `*`
/// is no hash), so `pam_unix` and anything else reading shadow never accept a password
/// for a dircache user; pam_dircache checks them.
pub const SHADOW_PASSWORD: &str = "!*";

/// Offsets into the caller's buffer of a packed `struct group`: its strings and the
/// NULL-terminated member pointer array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLayout {
    pub name: usize,
    pub passwd: usize,
    pub gid: u32,
    pub members: usize,
}

pub(super) const POINTER: usize = std::mem::size_of::<usize>();

/// The caller's buffer, written only through this (the `.so` never makes a slice of memory
/// glibc did not initialize). `write` is only called within `size()`.
pub trait Buffer {
    /// Bytes available.
    fn size(&self) -> usize;
    fn write(&mut self, offset: usize, bytes: &[u8]);
}

impl Buffer for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        if let Some(target) = self.get_mut(offset..offset.saturating_add(bytes.len())) {
            target.copy_from_slice(bytes);
        }
    }
}

struct Packer<'b, B: Buffer + ?Sized> {
    buf: &'b mut B,
    used: usize,
}

impl<B: Buffer + ?Sized> Packer<'_, B> {
    /// Reserves `len` bytes at `start`; `None` when they do not fit.
    fn reserve(&mut self, start: usize, len: usize) -> Option<usize> {
        let end = start.checked_add(len)?;
        (end <= self.buf.size()).then(|| {
            self.used = end;
            start
        })
    }

    /// Copies `text` and a NUL; returns its offset. Texts never hold a NUL (checked before).
    fn string(&mut self, text: &str) -> Option<usize> {
        let start = self.reserve(self.used, text.len().checked_add(1)?)?;
        self.buf.write(start, text.as_bytes());
        self.buf.write(start + text.len(), &[0]);
        Some(start)
    }

    /// Writes a NULL-terminated array of pointers to the strings at `targets`, aligned for a
    /// pointer given that the buffer starts at address `base`; returns its offset.
    fn pointers(&mut self, base: usize, targets: &[usize]) -> Option<usize> {
        let misalign = base.checked_add(self.used)? % POINTER;
        let start = self.used.checked_add((POINTER - misalign) % POINTER)?;
        let len = targets.len().checked_add(1)?.checked_mul(POINTER)?;
        let start = self.reserve(start, len)?;
        let values = targets.iter().map(|t| base.checked_add(*t)).chain([Some(0)]);
        for (i, value) in values.enumerate() {
            self.buf.write(start + i * POINTER, &value?.to_ne_bytes());
        }
        Some(start)
    }
}

/// Packs `entry` into `buf`; `None` when it does not fit.
pub fn pack_passwd<B: Buffer + ?Sized>(entry: &PublicUser, buf: &mut B) -> Option<PasswdLayout> {
    let mut packer = Packer { buf, used: 0 };
    Some(PasswdLayout {
        name: packer.string(&entry.name)?,
        passwd: packer.string("x")?,
        uid: entry.uid,
        gid: entry.gid,
        gecos: packer.string(&entry.gecos)?,
        dir: packer.string(&entry.home)?,
        shell: packer.string(&entry.shell)?,
    })
}

/// Packs the shadow entry of `entry` into `buf`; `None` when it does not fit. Every aging
/// field is empty (-1): the last change is not 0 ("must change the password now" to
/// pam_unix) and no maximum age applies; only `sp_expire` carries the validity date, so
/// pam_unix's account check agrees with dircache's about expiry.
pub fn pack_shadow<B: Buffer + ?Sized>(entry: &PublicUser, buf: &mut B) -> Option<ShadowLayout> {
    let mut packer = Packer { buf, used: 0 };
    Some(ShadowLayout {
        name: packer.string(&entry.name)?,
        passwd: packer.string(SHADOW_PASSWORD)?,
        last_change: -1,
        min: -1,
        max: -1,
        warn: -1,
        inactive: -1,
        // Never -1 or 0 for a set date (both read as "never expires" by some tools).
        expire: entry.expires_day.map_or(-1, |day| day.max(EXPIRED_LONG_AGO)),
    })
}

/// Packs `entry` into `buf`, which starts at address `base` (the member array holds
/// addresses); `None` when it does not fit.
pub fn pack_group<B: Buffer + ?Sized>(
    entry: &GroupEntry,
    buf: &mut B,
    base: usize,
) -> Option<GroupLayout> {
    let mut packer = Packer { buf, used: 0 };
    let name = packer.string(&entry.name)?;
    let passwd = packer.string("x")?;
    let mut members = Vec::with_capacity(entry.members.len());
    for member in &entry.members {
        members.push(packer.string(member)?);
    }
    let members = packer.pointers(base, &members)?;
    Some(GroupLayout { name, passwd, gid: entry.gid, members })
}

// ----- initgroups_dyn -----

/// The caller's growable gid array of `initgroups_dyn` (`*start`, `*size`, `*groupsp`).
pub trait GroupArray {
    /// Entries in use (`*start`).
    fn used(&self) -> usize;
    /// Entries allocated (`*size`).
    fn capacity(&self) -> usize;
    fn get(&self, index: usize) -> u32;
    /// Reallocates to `capacity` entries; false when out of memory.
    fn grow(&mut self, capacity: usize) -> bool;
    /// Appends; only called when `used() < capacity()`.
    fn push(&mut self, gid: u32);
}

/// glibc's `initgroups_dyn` contract: appends each of `gids` that is not `skip` (the
/// primary group) nor already present, doubling the array when full but never past `limit`
/// when `limit > 0` (then the remaining groups are dropped, as glibc does).
pub fn add_groups(
    array: &mut impl GroupArray,
    gids: &[u32],
    skip: u32,
    limit: std::ffi::c_long,
) -> Reply<()> {
    // A set of what the array holds, not a scan of it per gid: a user in thousands of groups
    // would cost millions of comparisons (issue 12 §5).
    let mut present: std::collections::BTreeSet<u32> =
        (0..array.used()).map(|i| array.get(i)).collect();
    for gid in gids {
        if *gid == skip || !present.insert(*gid) {
            continue;
        }
        if array.used() >= array.capacity() {
            let capacity = array.capacity();
            let limit = usize::try_from(limit).unwrap_or(0);
            if limit > 0 && capacity >= limit {
                break;
            }
            let mut wanted = capacity.saturating_mul(2).max(capacity.saturating_add(1));
            if limit > 0 {
                wanted = wanted.min(limit);
            }
            if !array.grow(wanted) {
                return Reply::TryAgain(libc::ENOMEM);
            }
        }
        array.push(*gid);
    }
    Reply::Found(())
}
