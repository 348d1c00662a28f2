//! The fleet checks: on a publisher, that the signing key can be used; on a host that
//! pulls, that the snapshot server answers with a snapshot signed by the trusted key,
//! fresh enough, and not older than the one installed.

use super::{CheckResult, Status};
use crate::config::Config;
use crate::snapshot::{self, SigningKey, SnapshotError};

const NAME: &str = "snapshot";

/// One line, or none on a host that neither publishes nor pulls.
pub fn check_fleet(config: &Config, now: u64) -> Option<CheckResult> {
    if let Some(publish) = &config.publish {
        return Some(match SigningKey::load(&publish.signing_key_file) {
            Ok(key) => CheckResult::ok(
                NAME,
                format!(
                    "this host publishes: signing key {} ({}) is usable",
                    key.id(),
                    publish.signing_key_file.display()
                ),
            ),
            Err(e) => CheckResult::with(
                NAME,
                Status::Fail,
                e.to_string(),
                "make a key pair with `dircache-sync keygen --secret-key FILE --public-key \
                 FILE` and give every host the public key",
            ),
        });
    }
    let settings = config.snapshot.as_ref()?;
    let probed = snapshot::http_fetcher(settings)
        .and_then(|mut fetcher| snapshot::probe(config, fetcher.as_mut(), now));
    Some(match probed {
        Ok(report) => {
            let age = now.saturating_sub(report.published_at);
            let installed = if report.unchanged { "installed here" } else { "not installed yet" };
            CheckResult::ok(
                NAME,
                format!(
                    "{}: generation {} signed by key {}, published {age} s ago (max_age_secs \
                     {}), {installed}",
                    report.url, report.generation, report.key_id, settings.max_age_secs
                ),
            )
        }
        Err(e) => {
            let hint = match &e {
                SnapshotError::Stale { .. } => {
                    "check that the publisher's `dircache-sync publish` runs and its upload \
                     reaches the server"
                }
                SnapshotError::WrongKey { .. } | SnapshotError::BadSignature { .. } => {
                    "compare the key ids: `minisign -Vm manifest.json -p publish.pub` on the \
                     publisher's files"
                }
                _ => "see docs/snapshots.md; the cache keeps the last snapshot meanwhile",
            };
            CheckResult::with(NAME, Status::Fail, e.to_string(), hint)
        }
    })
}
