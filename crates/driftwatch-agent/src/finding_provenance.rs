//! Fills where a reported file came from (`drift.layer`, `drift.package`, ...) at the one
//! place findings pass on their way to the rules: cheap lookups in indexes built once per
//! image, never per exec of an image binary (those are only looked up when an alert about
//! them is written).

use std::sync::Arc;

use driftwatch_image::packages::PackageDigest;
use driftwatch_image::{
    LayerOptions, OwnerCache, compare_with_package, image_layer_of, layer_diff_id,
};
use driftwatch_model::{
    DriftFinding, DriftKind, DriftSubject, Event, EventKind, OverlayLayers, Provenance, Verdict,
};

use crate::containers::ContainerRegistry;

/// Looks up layers and owning packages for the files of findings.
pub struct ProvenanceFiller {
    containers: Arc<ContainerRegistry>,
    owners: OwnerCache,
}

impl ProvenanceFiller {
    pub fn new(containers: Arc<ContainerRegistry>) -> ProvenanceFiller {
        ProvenanceFiller {
            containers,
            owners: OwnerCache::new(LayerOptions::default()),
        }
    }

    /// Fills the provenance of `ev`'s finding when it is about a file on the container's
    /// root filesystem and has none yet.
    pub fn fill(&self, ev: &mut Event) {
        let Some(container) = ev.container.as_ref().map(|c| c.id.clone()) else {
            return;
        };
        let Some(d) = ev.drift.as_mut() else { return };
        if !d.provenance.is_empty()
            || !matches!(d.kind, DriftKind::Binary | DriftKind::File)
            || !on_root_filesystem(d.verdict)
        {
            return;
        }
        let Some(entry) = self.containers.get(&container) else {
            return;
        };
        let Some(layers) = entry.fs.layers.as_ref() else {
            return;
        };
        let diff_ids = entry
            .record
            .as_ref()
            .map(|r| r.image_diff_ids())
            .unwrap_or_default();
        d.provenance = self.provenance(layers, diff_ids, &d.path, d.verdict);
    }

    /// For an alert on an exec of an image file (an event without a finding): a finding
    /// `binary`/`exe`/`image` carrying the file's layer and package, for the alert's output.
    pub fn image_exec(&self, ev: &Event) -> Option<DriftFinding> {
        if ev.kind != EventKind::Execve || ev.drift.is_some() || ev.process.exepath.is_empty() {
            return None;
        }
        let mut e = ev.clone();
        e.drift = Some(DriftFinding {
            provenance: Provenance::default(),
            kind: DriftKind::Binary,
            subject: DriftSubject::Exe,
            verdict: Verdict::Image,
            path: ev.process.exepath.clone(),
            hash: None,
            image_hash: None,
            detail: None,
            enforcement: None,
        });
        self.fill(&mut e);
        e.drift.filter(|d| !d.provenance.is_empty())
    }

    fn provenance(
        &self,
        layers: &OverlayLayers,
        diff_ids: &[String],
        path: &str,
        verdict: Verdict,
    ) -> Provenance {
        let options = LayerOptions::default();
        let layer = image_layer_of(layers, path, options)
            .and_then(|i| layer_diff_id(i, layers.lowers.len(), diff_ids))
            .map(str::to_string);
        // The container's databases first: a package it installed or upgraded owns the
        // file now; while it changed none, this is the image's index.
        let owner = self.owners.container(layers).owner(path);
        let digest = owner.as_ref().and_then(|o| match verdict {
            // An image file is the image's: reading it again per alert buys nothing.
            Verdict::Image => None,
            Verdict::Deleted => Some(PackageDigest::Unknown),
            _ => Some(compare_with_package(o, layers, path, options)),
        });
        Provenance {
            layer,
            package: owner.as_ref().map(|o| o.package.clone()),
            package_version: owner.as_ref().map(|o| o.version.clone()),
            package_ecosystem: owner.as_ref().map(|o| o.ecosystem.as_str().to_string()),
            package_digest: digest.map(|d| d.as_str().to_string()),
        }
    }
}

/// Verdicts about a path of the root overlay (the others are memory, volumes or unknown).
fn on_root_filesystem(v: Verdict) -> bool {
    matches!(
        v,
        Verdict::Image
            | Verdict::CopyUp
            | Verdict::Added
            | Verdict::Modified
            | Verdict::Deleted
            | Verdict::Unjudged
    )
}
