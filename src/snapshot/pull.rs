//! `sync` on a fleet host: fetch the manifest and its signature, verify, fetch the files,
//! check each against the manifest, and only then install through the cache's own write
//! path (locks, one new generation, the delete limit). Any refusal leaves the cache, its
//! login states and `snapshot.json` exactly as they were.
//!
//! Order of trust: the signature is checked over the manifest's raw bytes before anything
//! in it is parsed; sizes are capped before a byte is downloaded (the manifest and the
//! signature by constants, each data file by its signed size); a data file's name must be
//! the one its hash and kind give (no path from the server is ever used).

use std::io::Read;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Serialize;

use super::install;
use super::keys::{PublicKey, VerifyError};
use super::state::{read_state, write_state, SnapshotState};
use super::{
    sha256_hex, FileEntry, FileKind, Manifest, SnapshotError, FORMAT_NAME, FORMAT_VERSION,
    MANIFEST_FILE, MAX_FUTURE_SECS, MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, SIGNATURE_FILE,
};
use crate::cache::CacheDir;
use crate::config::{Config, DirectoryConfig, SnapshotConfig};
use crate::directory::http::{GetReply, HttpClient};
use crate::directory::DirectoryError;
use crate::local_accounts::LocalAccounts;
use crate::sync::{Landing, SyncError, SyncOptions, SyncOutcome, SyncReport};
use crate::user::{Group, User};

pub use crate::directory::http::GetReply as Reply;

/// The options of a pull are a sync's: `dry_run` writes nothing, `force` accepts an empty
/// snapshot and deletions past the limit, and installs an unchanged generation again.
pub type SnapshotOptions = SyncOptions;

/// Where the files come from: HTTP(S) in production, anything in tests.
pub trait Fetcher {
    /// GETs `name` under the snapshot URL with extra request headers; the body of a 2xx
    /// reply is read only up to `limit` (None when longer).
    fn get(
        &mut self,
        name: &str,
        headers: &[(&'static str, String)],
        limit: u64,
    ) -> Result<Reply, DirectoryError>;

    /// The URL of `name`, for messages.
    fn url_of(&self, name: &str) -> String;
}

/// What a pull tells (in `sync --json` as `"snapshot"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PullReport {
    pub url: String,
    pub generation: u64,
    pub published_at: u64,
    pub key_id: String,
    /// Nothing new: a 304, or the generation already installed.
    pub unchanged: bool,
    pub requests: u32,
    pub bytes_fetched: u64,
}

struct HttpFetcher {
    client: HttpClient,
    base: Url,
}

/// The HTTP(S) fetcher for `[snapshot]`: the directory's transport (deadlines, capped
/// replies, no proxy, same-origin redirects only, TLS verified unless
/// `snapshot.ignore_ssl_warnings`, no CA from the environment) with `[snapshot]`'s settings.
pub fn http_fetcher(config: &SnapshotConfig) -> Result<Box<dyn Fetcher>, SnapshotError> {
    let mut url = config.url.clone();
    if !url.ends_with('/') {
        url.push('/');
    }
    let transport = DirectoryConfig {
        timeout_secs: config.timeout_secs,
        connect_timeout_secs: Some(config.connect_timeout_secs),
        ignore_ssl_warnings: config.ignore_ssl_warnings,
        ca_file: config.ca_file.clone(),
        max_reply_mib: Some(config.max_file_mib),
        ..DirectoryConfig::default()
    };
    let transport_error = |source| SnapshotError::transport(url.clone(), source);
    let client = HttpClient::new(&url, &url, &transport, None).map_err(transport_error)?;
    let base = client.url().clone();
    Ok(Box::new(HttpFetcher { client, base }))
}

impl Fetcher for HttpFetcher {
    fn get(
        &mut self,
        name: &str,
        headers: &[(&'static str, String)],
        limit: u64,
    ) -> Result<Reply, DirectoryError> {
        let url = self.base.join(name).map_err(|e| {
            DirectoryError::NotConfigured(format!("cannot form the URL of {name}: {e}"))
        })?;
        self.client.get(name, url, headers, limit)
    }

    fn url_of(&self, name: &str) -> String {
        self.base.join(name).map_or_else(|_| name.to_string(), |u| u.to_string())
    }
}

/// `Retry-After` in seconds (the delay form; an HTTP date is ignored), at most a day.
pub fn retry_after_secs(value: &str) -> Option<u64> {
    value.trim().parse::<u64>().ok().map(|secs| secs.min(86_400))
}

/// A verified manifest, or why nothing needs installing.
enum Fetched {
    /// 304: the manifest is the one installed.
    NotModified,
    /// The manifest verified; its generation is the one installed.
    SameGeneration(Manifest, Validators),
    New(Manifest, Validators),
}

#[derive(Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

struct Puller<'a> {
    fetcher: &'a mut dyn Fetcher,
    key: &'a PublicKey,
    settings: &'a SnapshotConfig,
    report: PullReport,
    now: u64,
}

/// One pull: what `sync` does on a host with `[snapshot]`.
pub fn pull(
    config: &Config,
    fetcher: &mut dyn Fetcher,
    options: SyncOptions,
    now: u64,
) -> Result<SyncOutcome, SyncError> {
    let started = Instant::now();
    let Some(settings) = &config.snapshot else {
        return Err(SnapshotError::NotConfigured("[snapshot] is not configured".into()).into());
    };
    let key = PublicKey::from_config(settings)?;
    let cache = CacheDir::new(&config.cache.dir);
    let lock_wait = Duration::from_secs(config.cache.lock_timeout_secs);
    let _sync_lock = if options.dry_run { None } else { Some(cache.sync_lock(lock_wait)?) };
    let state = read_state(&config.cache.dir)?;

    let mut puller = Puller {
        fetcher,
        key: &key,
        settings,
        report: PullReport { url: settings.url.clone(), ..PullReport::default() },
        now,
    };
    let reinstall = options.force || state.as_ref().is_some_and(|s| s.reapply);
    let fetched = puller.manifest(state.as_ref(), reinstall)?;
    let (manifest, validators) = match fetched {
        Fetched::NotModified => {
            // A server that answers "unchanged" forever must not freeze the host either.
            let state = state.unwrap_or_default();
            puller.fresh(state.generation, state.published_at)?;
            puller.report.generation = state.generation;
            puller.report.published_at = state.published_at;
            puller.report.key_id = state.key_id;
            let written = reseal(&cache, config, options, lock_wait, now)?;
            return Ok(unchanged(puller.report, state.users, started, written));
        }
        Fetched::SameGeneration(manifest, validators) => {
            let mut new_state = state_of(settings, &manifest, &validators, state.as_ref(), now);
            // Nothing of this manifest is installed: the record keeps naming the files that
            // are (a same generation naming other files must not make them pass for
            // installed, see the republication check below).
            if let Some(installed) = &state {
                new_state.files.clone_from(&installed.files);
                new_state.users = installed.users;
            }
            if !options.dry_run && state.as_ref() != Some(&new_state) {
                write_state(&config.cache.dir, &new_state)?;
            }
            puller.describe(&manifest);
            let written = reseal(&cache, config, options, lock_wait, now)?;
            return Ok(unchanged(puller.report, manifest.users, started, written));
        }
        Fetched::New(manifest, validators) => (manifest, validators),
    };
    // A newer publication of the very files installed (the publisher republishes to show it
    // is alive): recorded, nothing fetched or installed. `--force` and a local `--enable`
    // install them again.
    if let Some(installed) = state.as_ref().filter(|s| !reinstall && s.url == settings.url) {
        if installed.key_id == manifest.key_id && installed.files == file_names(&manifest) {
            if !options.dry_run {
                let new_state = state_of(settings, &manifest, &validators, Some(installed), now);
                write_state(&config.cache.dir, &new_state)?;
            }
            puller.describe(&manifest);
            let written = reseal(&cache, config, options, lock_wait, now)?;
            return Ok(unchanged(puller.report, manifest.users, started, written));
        }
    }
    puller.describe(&manifest);
    let (users, groups) = puller.files(&manifest)?;
    let listed_users = users.len();
    let listed_groups = groups.len();
    if users.is_empty() && !options.force {
        return Err(SyncError::EmptyListing);
    }

    let local = config.local_accounts()?;
    // Local groups are granted by this host's mapping and this host's /etc/group: the
    // publisher's grants never travel (README "GRANTING LOCAL GROUPS").
    crate::grants::targets(config, &local)?;
    let write_lock = if options.dry_run { None } else { Some(cache.lock(lock_wait)?) };
    let db = cache.load()?;
    let plan = install::plan(&db, users, groups, config, &local);
    let mut report = SyncReport {
        dry_run: options.dry_run,
        created: plan.created.clone(),
        updated: plan.updated.clone(),
        deleted: plan.deleted.iter().map(|u| u.name.clone()).collect(),
        unchanged: plan.unchanged,
        skipped: plan.skipped.clone(),
        groups_created: plan.groups_created.clone(),
        groups_updated: plan.groups_updated.clone(),
        groups_deleted: plan.groups_deleted.iter().map(|g| g.name.clone()).collect(),
        warnings: plan.warnings.clone(),
        listed_users,
        listed_groups,
        ..SyncReport::default()
    };
    let (would, of) = (plan.deleted.len(), db.users.len());
    let limit = config.sync.max_delete_percent;
    if !options.force && would > 0 && would * 100 > usize::from(limit) * of {
        let refusal = SyncError::TooManyDeletes { would, of, limit };
        if !options.dry_run {
            return Err(refusal);
        }
        report.errors.push(refusal.to_string());
    }
    let plan_empty = plan.is_empty();
    let landing = Landing { cache: &cache, lock: write_lock.as_ref(), config, local: &local, now };
    landing.install(db, plan_empty, &mut report, |db| {
        plan.apply(db);
        Ok(())
    })?;
    if write_lock.is_some() {
        let new_state = state_of(settings, &manifest, &validators, state.as_ref(), now);
        write_state(&config.cache.dir, &new_state)?;
    }
    report.duration_secs = started.elapsed().as_secs_f64();
    report.snapshot = Some(puller.report);
    Ok(SyncOutcome { report, listing: None })
}

/// Fetches and verifies the manifest and its signature as a pull would (key, format,
/// age, rollback, file names and sizes), unconditionally and without fetching the data
/// files or writing anything: what `check` reports.
pub fn probe(
    config: &Config,
    fetcher: &mut dyn Fetcher,
    now: u64,
) -> Result<PullReport, SnapshotError> {
    let Some(settings) = &config.snapshot else {
        return Err(SnapshotError::NotConfigured("[snapshot] is not configured".into()));
    };
    let key = PublicKey::from_config(settings)?;
    let state = read_state(&config.cache.dir)?;
    let mut puller = Puller {
        fetcher,
        key: &key,
        settings,
        report: PullReport { url: settings.url.clone(), ..PullReport::default() },
        now,
    };
    match puller.manifest(state.as_ref(), true)? {
        Fetched::New(manifest, _) | Fetched::SameGeneration(manifest, _) => {
            puller.describe(&manifest);
            puller.report.unchanged = state.is_some_and(|s| s.generation == manifest.generation);
        }
        Fetched::NotModified => {}
    }
    Ok(puller.report)
}

/// Nothing new installed; `users`: how many the installed snapshot holds (what `status`
/// shows as listed); `generation`: one written all the same ([`reseal`]).
fn unchanged(
    pull: PullReport,
    users: usize,
    started: Instant,
    generation: Option<u64>,
) -> SyncOutcome {
    let report = SyncReport {
        listed_users: users,
        generation,
        snapshot: Some(PullReport { unchanged: true, ..pull }),
        duration_secs: started.elapsed().as_secs_f64(),
        ..SyncReport::default()
    };
    SyncOutcome { report, listing: None }
}

/// A pull that installs nothing still seals the current generation again when this host's
/// local files changed since it was sealed (`Landing::needs_reseal`), and only that (no
/// grant or other change goes unreported); never on a dry run. A generation found
/// unsealable is remembered in the snapshot state with the files' seal, so that the next
/// unchanged pulls do not load the whole cache to find the same.
fn reseal(
    cache: &CacheDir,
    config: &Config,
    options: SyncOptions,
    lock_wait: Duration,
    now: u64,
) -> Result<Option<u64>, SyncError> {
    if options.dry_run {
        return Ok(None);
    }
    let unix = &config.unix;
    let local = LocalAccounts::load(&unix.local_passwd, &unix.local_group)?;
    let state = read_state(&config.cache.dir)?;
    if state.as_ref().and_then(|s| s.unsealable_for) == Some(local.files_seal()) {
        return Ok(None);
    }
    let unlocked = Landing { cache, lock: None, config, local: &local, now };
    if !unlocked.needs_reseal()? {
        return Ok(None);
    }
    let lock = cache.lock(lock_wait)?;
    let written = Landing { lock: Some(&lock), ..unlocked }.reseal()?;
    if let (None, Some(state)) = (written, state) {
        // Settled files (`needs_reseal`) and still no seal: a record collides.
        let unsealable_for = Some(local.files_seal());
        write_state(&config.cache.dir, &SnapshotState { unsealable_for, ..state })?;
    }
    Ok(written)
}

/// The manifest's data file names, sorted: what identifies its content.
fn file_names(manifest: &Manifest) -> Vec<String> {
    let mut names: Vec<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
    names.sort();
    names
}

fn state_of(
    settings: &SnapshotConfig,
    manifest: &Manifest,
    validators: &Validators,
    previous: Option<&SnapshotState>,
    now: u64,
) -> SnapshotState {
    let same = previous.filter(|p| p.generation == manifest.generation && p.url == settings.url);
    SnapshotState {
        url: settings.url.clone(),
        generation: manifest.generation,
        published_at: manifest.published_at,
        key_id: manifest.key_id.clone(),
        users: manifest.users,
        files: file_names(manifest),
        etag: validators.etag.clone(),
        last_modified: validators.last_modified.clone(),
        installed_at: same.map_or(now, |p| p.installed_at),
        reapply: false,
        unsealable_for: same.and_then(|p| p.unsealable_for),
    }
}

impl Puller<'_> {
    fn url(&self, name: &str) -> String {
        self.fetcher.url_of(name)
    }

    fn describe(&mut self, manifest: &Manifest) {
        self.report.generation = manifest.generation;
        self.report.published_at = manifest.published_at;
        self.report.key_id = manifest.key_id.clone();
    }

    fn get(
        &mut self,
        name: &str,
        headers: &[(&'static str, String)],
        limit: u64,
    ) -> Result<Reply, SnapshotError> {
        self.report.requests += 1;
        let reply = self
            .fetcher
            .get(name, headers, limit)
            .map_err(|source| SnapshotError::transport(self.url(name), source))?;
        self.report.bytes_fetched += reply.body.as_ref().map_or(0, |b| b.len() as u64);
        Ok(reply)
    }

    /// The body of a 2xx reply, or the error its status, size or content means.
    fn body(
        &self,
        name: &str,
        reply: Reply,
        limit: u64,
        data: bool,
    ) -> Result<Vec<u8>, SnapshotError> {
        let url = self.url(name);
        match reply.status {
            200..=299 => {}
            404 if data => return Err(SnapshotError::HalfUploaded { url, file: name.to_string() }),
            status => {
                let hint = match status {
                    404 => ": nothing there; has `dircache-sync publish` run and its directory \
                            been uploaded, and is snapshot.url right?"
                        .to_string(),
                    401 | 403 => {
                        ": the server refuses access; serve the snapshot to every host".to_string()
                    }
                    429 | 500..=599 => ": the server is failing or busy; the cache keeps the \
                                       last snapshot and the next pull retries"
                        .to_string(),
                    _ => String::new(),
                };
                let retry_after = reply.retry_after.as_deref().and_then(retry_after_secs);
                return Err(SnapshotError::HttpStatus { url, status, hint, retry_after });
            }
        }
        let html = reply.content_type.as_deref().is_some_and(|t| t.contains("text/html"));
        let Some(body) = reply.body else {
            let hint = if data { " (the size the manifest signs)" } else { "" };
            return Err(SnapshotError::TooLarge { url, what: name.to_string(), limit, hint });
        };
        if html || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            return Err(SnapshotError::HtmlPage { url, what: name.to_string() });
        }
        Ok(body)
    }

    /// Fetches and verifies the manifest: signature, key, format, time, generation, files.
    /// With `force`, unconditionally, and the installed generation counts as new.
    fn manifest(
        &mut self,
        state: Option<&SnapshotState>,
        force: bool,
    ) -> Result<Fetched, SnapshotError> {
        let mut headers = Vec::new();
        // Conditional only for what was verified before: the same URL and the same key (a
        // new key in the configuration verifies the manifest again).
        let key_id = self.key.id().to_string();
        let verified = |s: &&SnapshotState| s.url == self.settings.url && s.key_id == key_id;
        if let Some(state) = state.filter(|s| !force && verified(s)) {
            if let Some(etag) = &state.etag {
                headers.push(("if-none-match", etag.clone()));
            }
            if let Some(modified) = &state.last_modified {
                headers.push(("if-modified-since", modified.clone()));
            }
        }
        let reply = self.get(MANIFEST_FILE, &headers, MAX_MANIFEST_BYTES)?;
        if reply.status == 304 && !headers.is_empty() {
            return Ok(Fetched::NotModified);
        }
        let validators =
            Validators { etag: reply.etag.clone(), last_modified: reply.last_modified.clone() };
        let manifest_bytes = self.body(MANIFEST_FILE, reply, MAX_MANIFEST_BYTES, false)?;
        let reply = self.get(SIGNATURE_FILE, &[], MAX_SIGNATURE_BYTES)?;
        let signature = self.body(SIGNATURE_FILE, reply, MAX_SIGNATURE_BYTES, false)?;
        let url = self.url(MANIFEST_FILE);
        let signature = String::from_utf8(signature).map_err(|_| SnapshotError::BadSignature {
            url: url.clone(),
            reason: "the signature file is not text".to_string(),
        })?;
        self.key.verify(&manifest_bytes, &signature).map_err(|e| match e {
            VerifyError::OtherKey(signed_by) => SnapshotError::WrongKey {
                url: url.clone(),
                signed_by: signed_by.to_string(),
                trusted: self.key.id().to_string(),
                key: self.key.source,
            },
            VerifyError::Bad(reason) => SnapshotError::BadSignature { url: url.clone(), reason },
        })?;

        // Signed by the trusted key from here on; still checked as if it were not.
        let malformed = |reason: String| SnapshotError::Malformed { url: url.clone(), reason };
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| malformed(format!("the manifest is not valid: {e}")))?;
        if manifest.format != FORMAT_NAME || manifest.version != FORMAT_VERSION {
            return Err(malformed(format!(
                "the manifest is {:?} version {}; this dircache reads {FORMAT_NAME:?} version \
                 {FORMAT_VERSION} (upgrade the hosts before the publisher)",
                manifest.format, manifest.version
            )));
        }
        if manifest.key_id != self.key.id().to_string() {
            return Err(malformed(format!(
                "the manifest names key id {} but is signed by {}",
                manifest.key_id,
                self.key.id()
            )));
        }
        self.fresh(manifest.generation, manifest.published_at)?;
        if let Some(installed) = state.map(|s| s.generation) {
            if manifest.generation < installed {
                return Err(SnapshotError::Rollback {
                    url,
                    offered: manifest.generation,
                    installed,
                });
            }
            if manifest.generation == installed && !force {
                return Ok(Fetched::SameGeneration(manifest, validators));
            }
        }
        self.check_files(&manifest)?;
        Ok(Fetched::New(manifest, validators))
    }

    /// Neither from the future nor older than `max_age_secs`.
    fn fresh(&self, generation: u64, published_at: u64) -> Result<(), SnapshotError> {
        let url = self.url(MANIFEST_FILE);
        if published_at > self.now.saturating_add(MAX_FUTURE_SECS) {
            let ahead = published_at - self.now;
            return Err(SnapshotError::Future { url, generation, ahead });
        }
        let age = self.now.saturating_sub(published_at);
        if age > self.settings.max_age_secs {
            return Err(SnapshotError::Stale {
                url,
                generation,
                age,
                max: self.settings.max_age_secs,
            });
        }
        Ok(())
    }

    /// One users file and one groups file, named by their hash, within the size cap.
    fn check_files(&self, manifest: &Manifest) -> Result<(), SnapshotError> {
        let url = self.url(MANIFEST_FILE);
        let limit = self.settings.max_file_mib.saturating_mul(1 << 20);
        for kind in [FileKind::Users, FileKind::Groups] {
            let count = manifest.files.iter().filter(|f| f.kind == kind).count();
            if count != 1 {
                return Err(SnapshotError::Malformed {
                    url,
                    reason: format!("the manifest names {count} {} files, not one", kind.as_str()),
                });
            }
        }
        for file in &manifest.files {
            if file.expected_name().as_deref() != Some(file.name.as_str()) {
                return Err(SnapshotError::Malformed {
                    url,
                    reason: format!(
                        "the file name {:?} is not <sha256>.{}.jsonl.gz",
                        file.name,
                        file.kind.as_str()
                    ),
                });
            }
            if file.size.max(file.content_size) > limit {
                return Err(SnapshotError::TooLarge {
                    url: self.url(&file.name),
                    what: file.name.clone(),
                    limit,
                    hint: " (snapshot.max_file_mib)",
                });
            }
        }
        Ok(())
    }

    /// Fetches every file, checks its size and hash, and decodes it.
    fn files(&mut self, manifest: &Manifest) -> Result<(Vec<User>, Vec<Group>), SnapshotError> {
        let mut users = Vec::new();
        let mut groups = Vec::new();
        for file in &manifest.files {
            let bytes = self.file(file)?;
            match file.kind {
                FileKind::Users => users = self.decode(file, &bytes)?,
                FileKind::Groups => groups = self.decode(file, &bytes)?,
            }
        }
        Ok((users, groups))
    }

    fn file(&mut self, file: &FileEntry) -> Result<Vec<u8>, SnapshotError> {
        let reply = self.get(&file.name, &[], file.size)?;
        let bytes = self.body(&file.name, reply, file.size, true).map_err(|e| match e {
            SnapshotError::TooLarge { url, what, .. } => SnapshotError::FileMismatch {
                url,
                file: what,
                reason: format!("it is longer than the {} bytes signed", file.size),
            },
            e => e,
        })?;
        let mismatch = |reason: String| SnapshotError::FileMismatch {
            url: self.url(&file.name),
            file: file.name.clone(),
            reason,
        };
        if bytes.len() as u64 != file.size {
            return Err(mismatch(format!(
                "{} bytes, the manifest signs {}",
                bytes.len(),
                file.size
            )));
        }
        if sha256_hex(&bytes) != file.sha256 {
            return Err(mismatch("its SHA-256 is not the one signed".to_string()));
        }
        // Signed bytes from here on; still decompressed through the signed size only.
        let mut content = Vec::with_capacity(usize::try_from(file.content_size).unwrap_or(0));
        flate2::read::GzDecoder::new(bytes.as_slice())
            .take(file.content_size.saturating_add(1))
            .read_to_end(&mut content)
            .map_err(|e| mismatch(format!("it does not decompress: {e}")))?;
        if content.len() as u64 != file.content_size {
            return Err(mismatch(format!(
                "it decompresses to {} bytes, the manifest signs {}",
                content.len(),
                file.content_size
            )));
        }
        Ok(content)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        file: &FileEntry,
        bytes: &[u8],
    ) -> Result<Vec<T>, SnapshotError> {
        let mut records = Vec::new();
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let record = serde_json::from_slice(line).map_err(|e| SnapshotError::Malformed {
                url: self.url(&file.name),
                reason: format!(
                    "line {}: {e} (a publisher newer than this host? upgrade the hosts first)",
                    index + 1
                ),
            })?;
            records.push(record);
        }
        Ok(records)
    }
}

/// For replies built by hand (tests, other fetchers).
pub fn reply(status: u16, body: Option<Vec<u8>>) -> GetReply {
    GetReply { status, body, ..GetReply::default() }
}
