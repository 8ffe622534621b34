//! What `driftwatch diff` prints (a grouped table, or JSON) and `driftwatch capture` stores as
//! `diff.json`: a container's diff against its image, optionally narrowed to one class.

use std::collections::HashMap;
use std::io::Write;

use driftwatch_image::{
    ChangeKind, ContainerPath, Diff, DiffStats, DiffWarning, FileDiff, FileKind, MetadataChange,
    PackageChange, PackageChangeKind, Truncation,
};
use serde::Serialize;

use crate::counts::Counts;
use crate::target::Target;

/// A class of paths a report can be narrowed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Only {
    Executables,
    Packages,
    Config,
}

/// The container as a report names it.
#[derive(Serialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    pub running: bool,
    pub layers_from: String,
}

impl ContainerInfo {
    pub fn of(t: &Target) -> ContainerInfo {
        ContainerInfo {
            id: t.id.to_string(),
            name: t.name.clone(),
            image: t.meta().map(|m| m.image.display_name()).unwrap_or_default(),
            image_id: t.meta().and_then(|m| m.image.id.clone()),
            running: t.running(),
            layers_from: t.layers_from.clone(),
        }
    }
}

/// What `driftwatch diff --json` prints and `driftwatch capture` stores as `diff.json`.
#[derive(Serialize)]
pub struct DiffReport<'a> {
    pub container: ContainerInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only: Option<Only>,
    /// Anything in this (filtered) view drifted: the exit status is 1.
    pub drifted: bool,
    pub counts: Counts,
    /// Sorted by path bytes.
    pub files: Vec<&'a FileDiff>,
    pub packages: Vec<&'a PackageChange>,
    pub unparsed_package_dbs: &'a [ContainerPath],
    pub warnings: &'a [DiffWarning],
    pub stats: DiffStats,
    /// The walk's caps that were reached (depth, entries): the diff is incomplete below them.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub truncated: &'a [Truncation],
}

/// True when `--only` keeps this path.
fn keep(f: &FileDiff, only: Option<Only>) -> bool {
    match only {
        None => true,
        Some(Only::Executables) => f.class.executable.is_some() || f.class.library,
        Some(Only::Packages) => f.class.package_db.is_some(),
        Some(Only::Config) => f.class.config,
    }
}

/// A directory listed only because entries inside it changed (or its times moved with
/// them): `docker diff` lists it, the table hides it unless `--all`.
fn is_parent_only(f: &FileDiff) -> bool {
    f.kind == FileKind::Dir
        && matches!(f.change, ChangeKind::Modified | ChangeKind::Metadata)
        && f.image_kind.is_none()
        && f.metadata.is_none_or(|m| !m.mode_or_owner())
}

impl<'a> DiffReport<'a> {
    pub fn new(target: &Target, diff: &'a Diff, only: Option<Only>) -> DiffReport<'a> {
        let files: Vec<&FileDiff> = diff.files.iter().filter(|f| keep(f, only)).collect();
        let packages: Vec<&PackageChange> = match only {
            None | Some(Only::Packages) => diff.packages.iter().collect(),
            _ => Vec::new(),
        };
        let mut c = Counts::default();
        for f in &files {
            c.add(f);
        }
        c.packages = packages.len() as u64;
        let drifted = files.iter().any(|f| f.change.is_drift()) || !packages.is_empty();
        DiffReport {
            container: ContainerInfo::of(target),
            only,
            drifted,
            counts: c,
            files,
            packages,
            unparsed_package_dbs: &diff.unparsed_package_dbs,
            warnings: &diff.warnings,
            stats: diff.stats,
            truncated: &diff.truncated,
        }
    }

    /// The readable view: one group per kind of change, with counts.
    pub fn write_table(&self, out: &mut dyn Write, all: bool) -> std::io::Result<()> {
        let c = &self.container;
        let who = if c.name.is_empty() {
            c.id[..12].to_string()
        } else {
            format!("{} ({})", c.name, &c.id[..12])
        };
        let image = if c.image.is_empty() {
            String::new()
        } else {
            format!(", image {}", c.image)
        };
        let state = if c.running { "running" } else { "not running" };
        writeln!(
            out,
            "container {who}{image}, {state}; layers from {}",
            c.layers_from
        )?;
        if let Some(only) = self.only {
            writeln!(out, "only: {}", format!("{only:?}").to_lowercase())?;
        }
        // Entries of deleted directories are listed in JSON; here, counted under the
        // directory docker lists.
        let mut inside: HashMap<&ContainerPath, u64> = HashMap::new();
        for f in &self.files {
            if let Some(w) = &f.deleted_with {
                *inside.entry(w).or_default() += 1;
            }
        }
        let shown = |f: &&&FileDiff| {
            f.deleted_with.is_none()
                && (all || (f.change != ChangeKind::Unchanged && !is_parent_only(f)))
        };
        let rows: Vec<&&FileDiff> = self.files.iter().filter(shown).collect();
        let width = rows
            .iter()
            .map(|f| display_path(f).chars().count())
            .max()
            .unwrap_or(0)
            .min(60);
        let groups = [
            (ChangeKind::Added, "Added"),
            (
                ChangeKind::Modified,
                "Modified (content differs from the image)",
            ),
            (ChangeKind::Metadata, "Metadata only (same content)"),
            (ChangeKind::Deleted, "Deleted"),
            (ChangeKind::Unchanged, "Copied up, unchanged (not drift)"),
        ];
        for (kind, title) in groups {
            let group: Vec<&&&FileDiff> = rows.iter().filter(|f| f.change == kind).collect();
            if group.is_empty() {
                continue;
            }
            writeln!(out, "\n{title} ({})", group.len())?;
            for f in group {
                let path = display_path(f);
                let pad = width.saturating_sub(path.chars().count());
                let mut cols = vec![kind_tags(f)];
                let detail = detail(f, inside.get(&f.path).copied());
                if !detail.is_empty() {
                    cols.push(detail);
                }
                writeln!(out, "  {path}{}  {}", " ".repeat(pad), cols.join("  "))?;
            }
        }
        if !self.packages.is_empty() {
            writeln!(out, "\nPackages ({})", self.packages.len())?;
            for p in &self.packages {
                let arch = p
                    .arch
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default();
                let version = match (p.change, &p.image_version, &p.version) {
                    (PackageChangeKind::Changed, Some(a), Some(b)) => format!("{a} -> {b}"),
                    (_, _, Some(v)) | (_, Some(v), None) => v.clone(),
                    _ => String::new(),
                };
                let change = match p.change {
                    PackageChangeKind::Added => "added",
                    PackageChangeKind::Removed => "removed",
                    PackageChangeKind::Changed => "changed",
                };
                writeln!(
                    out,
                    "  {:<6} {:<7} {}{arch} {version}   in {}",
                    p.ecosystem.as_str(),
                    change,
                    p.name,
                    p.location
                )?;
            }
        }
        for db in self.unparsed_package_dbs {
            writeln!(out, "  (package database {db} changed; not parsed)")?;
        }
        let n = &self.counts;
        let listed = |k: ChangeKind| rows.iter().filter(|f| f.change == k).count();
        let mut summary = vec![
            format!("{} added", listed(ChangeKind::Added)),
            format!("{} modified", listed(ChangeKind::Modified)),
            format!("{} metadata only", listed(ChangeKind::Metadata)),
            format!("{} deleted", listed(ChangeKind::Deleted)),
        ];
        let within: u64 = inside.values().sum();
        if within > 0 {
            summary.push(format!("{within} entries inside deleted directories"));
        }
        if n.unchanged > 0 && !all {
            summary.push(format!(
                "{} unchanged copy-ups not listed (not drift; --all lists them)",
                n.unchanged
            ));
        }
        let hidden_parents = self
            .files
            .iter()
            .filter(|f| is_parent_only(f) && !all)
            .count();
        if hidden_parents > 0 {
            summary.push(format!(
                "{hidden_parents} parent directories not listed (--all lists them)"
            ));
        }
        writeln!(out)?;
        for t in self.truncated {
            writeln!(out, "INCOMPLETE: {t}")?;
        }
        writeln!(
            out,
            "{}: {}",
            if self.drifted { "DRIFT" } else { "no drift" },
            summary.join(", ")
        )?;
        writeln!(
            out,
            "drifted: {} executables, {} libraries, {} config files, {} package databases; {} package changes",
            n.executables, n.libraries, n.config, n.package_dbs, n.packages
        )
    }
}

fn display_path(f: &FileDiff) -> String {
    if f.kind == FileKind::Dir && f.path.as_bytes() != b"/" {
        format!("{}/", f.path)
    } else {
        f.path.to_string()
    }
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
        FileKind::CharDevice => "char-device",
        FileKind::BlockDevice => "block-device",
        FileKind::Unknown => "unknown",
    }
}

fn kind_tags(f: &FileDiff) -> String {
    let mut tags = vec![kind_name(f.kind).to_string()];
    if let Some(e) = f.class.executable {
        tags.push(match e {
            driftwatch_image::ExecKind::Elf => "executable(elf)".into(),
            driftwatch_image::ExecKind::Script => "executable(script)".into(),
        });
    }
    if f.class.library {
        tags.push("library".into());
    }
    if let Some(db) = f.class.package_db {
        tags.push(format!("package-db({})", db.as_str()));
    }
    if f.class.config {
        tags.push("config".into());
    }
    tags.join(",")
}

fn detail(f: &FileDiff, inside: Option<u64>) -> String {
    let mut parts = Vec::new();
    if let Some(k) = f.image_kind {
        parts.push(format!("was a {}", kind_name(k)));
    }
    if f.change == ChangeKind::Modified && f.image_kind.is_none() {
        match f.kind {
            FileKind::File => parts.push("content differs".into()),
            FileKind::Symlink => parts.push("target differs".into()),
            FileKind::CharDevice | FileKind::BlockDevice => parts.push("device differs".into()),
            FileKind::Dir => parts.push("entries changed".into()),
            _ => {}
        }
    }
    if let Some(t) = &f.symlink_target {
        parts.push(format!("-> {t}"));
    }
    if let Some(m) = &f.metadata {
        parts.push(metadata_detail(m));
    }
    if let Some(n) = inside.filter(|n| *n > 0) {
        parts.push(format!("and {n} entries inside"));
    }
    let p = &f.provenance;
    if let Some(pkg) = &p.package {
        let against = match p.package_digest.as_deref() {
            Some("mismatch") => ", modified against the package",
            Some("match") => ", as the package has it",
            _ => "",
        };
        let mut text = format!("package {pkg}");
        if let Some(v) = p.package_version.as_deref().filter(|v| !v.is_empty()) {
            text.push(' ');
            text.push_str(v);
        }
        text.push_str(against);
        parts.push(text);
    }
    if let Some(l) = &p.layer {
        // The diff id's first 12 hex digits, as `docker history` shortens ids.
        let short = l.strip_prefix("sha256:").unwrap_or(l);
        parts.push(format!("layer {}", &short[..short.len().min(12)]));
    }
    if let Some(s) = f.size {
        parts.push(human_size(s));
    }
    parts.join("  ")
}

fn metadata_detail(m: &MetadataChange) -> String {
    let mut v = Vec::new();
    if let Some(c) = m.mode {
        v.push(format!("mode {:04o} -> {:04o}", c.image, c.current));
    }
    if m.uid.is_some() || m.gid.is_some() {
        let img = (
            m.uid.map(|c| c.image).map(|u| u.to_string()),
            m.gid.map(|c| c.image).map(|g| g.to_string()),
        );
        let cur = (
            m.uid.map(|c| c.current).map(|u| u.to_string()),
            m.gid.map(|c| c.current).map(|g| g.to_string()),
        );
        let fmt = |(u, g): (Option<String>, Option<String>)| {
            format!(
                "{}:{}",
                u.unwrap_or_else(|| "=".into()),
                g.unwrap_or_else(|| "=".into())
            )
        };
        v.push(format!("owner {} -> {}", fmt(img), fmt(cur)));
    }
    if m.mtime_ns.is_some() {
        v.push("times".into());
    }
    if m.capabilities {
        v.push("capabilities".into());
    }
    v.join(", ")
}

pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 20), "5.0 MiB");
    }
}
