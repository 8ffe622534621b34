//! What kind of file a changed path is: executable (ELF or shebang script), shared library,
//! package database, configuration. Pure functions of a file's first bytes and its path.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;

use serde::Serialize;

use crate::packages::Ecosystem;
use crate::path::ContainerPath;

/// How a file runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecKind {
    /// An ELF executable (`ET_EXEC`, or `ET_DYN` with a program interpreter: PIE).
    Elf,
    /// A script starting with `#!`.
    Script,
}

/// The classes a changed path belongs to (several may hold: `libc.so.6` is both an
/// executable and a library).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FileClass {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<ExecKind>,
    /// A shared object: ELF `ET_DYN` without a program interpreter, or named `*.so*`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub library: bool,
    /// A package database or manifest of this ecosystem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_db: Option<Ecosystem>,
    /// Under `/etc`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub config: bool,
}

impl FileClass {
    pub fn is_empty(&self) -> bool {
        *self == FileClass::default()
    }
}

/// What the first bytes of a file say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContentClass {
    pub executable: Option<ExecKind>,
    pub library: bool,
}

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_INTERP: u32 = 3;
/// Program headers read at most: real binaries have about a dozen.
const MAX_PHDRS: usize = 128;

/// Classifies an ELF or script from its content. `named_so`: the name looks like `*.so*`.
pub fn classify_content(file: &File, named_so: bool) -> std::io::Result<ContentClass> {
    let mut head = [0u8; 64];
    let n = read_full_at(file, &mut head, 0)?;
    let head = &head[..n];
    if head.starts_with(b"#!") {
        return Ok(ContentClass {
            executable: Some(ExecKind::Script),
            library: false,
        });
    }
    let Some(elf) = ElfHeader::parse(head) else {
        return Ok(ContentClass::default());
    };
    let interp = elf.has_interp(file)?;
    Ok(ContentClass {
        executable: (elf.e_type == ET_EXEC || interp).then_some(ExecKind::Elf),
        library: elf.e_type == ET_DYN && (!interp || named_so),
    })
}

/// True for names like `libc.so.6`, `x.so`, `libfoo.so.1.2`.
pub fn named_so(name: &[u8]) -> bool {
    name.ends_with(b".so") || name.windows(4).any(|w| w == b".so.")
}

/// The package database a path is, by its location.
pub fn package_db_kind(path: &ContainerPath) -> Option<Ecosystem> {
    let p = path.as_bytes();
    match p {
        b"/var/lib/dpkg/status" => return Some(Ecosystem::Dpkg),
        b"/lib/apk/db/installed" => return Some(Ecosystem::Apk),
        b"/var/lib/rpm/Packages"
        | b"/var/lib/rpm/Packages.db"
        | b"/var/lib/rpm/rpmdb.sqlite"
        | b"/usr/lib/sysimage/rpm/Packages"
        | b"/usr/lib/sysimage/rpm/Packages.db"
        | b"/usr/lib/sysimage/rpm/rpmdb.sqlite" => return Some(Ecosystem::Rpm),
        _ => {}
    }
    let name = path.as_path().file_name()?.as_bytes();
    let parent = path.as_path().parent()?;
    let parent_name = parent.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if (name == b"METADATA" && parent_name.ends_with(b".dist-info"))
        || (name == b"PKG-INFO" && parent_name.ends_with(b".egg-info"))
    {
        return Some(Ecosystem::Python);
    }
    if name == b"package.json" && npm_package_dir(parent) {
        return Some(Ecosystem::Npm);
    }
    None
}

/// `.../node_modules/NAME` or `.../node_modules/@SCOPE/NAME`.
fn npm_package_dir(dir: &std::path::Path) -> bool {
    let mut up = dir.ancestors().skip(1);
    let Some(p1) = up.next() else { return false };
    let n1 = p1.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if n1 == b"node_modules" {
        return true;
    }
    n1.starts_with(b"@")
        && up
            .next()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n.as_bytes() == b"node_modules")
}

pub fn is_config(path: &ContainerPath) -> bool {
    path.as_bytes().starts_with(b"/etc/")
}

/// The ELF header fields we need.
struct ElfHeader {
    e_type: u16,
    is64: bool,
    little: bool,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
}

impl ElfHeader {
    fn parse(h: &[u8]) -> Option<ElfHeader> {
        if h.len() < 52 || &h[..4] != b"\x7fELF" {
            return None;
        }
        let is64 = match h[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little = match h[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        if is64 && h.len() < 64 {
            return None;
        }
        let u16_at = |o: usize| {
            let b = [h[o], h[o + 1]];
            if little {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        let u32_at = |o: usize| {
            let b = [h[o], h[o + 1], h[o + 2], h[o + 3]];
            if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let u64_at = |o: usize| {
            let b: [u8; 8] = h[o..o + 8].try_into().expect("8 bytes");
            if little {
                u64::from_le_bytes(b)
            } else {
                u64::from_be_bytes(b)
            }
        };
        Some(if is64 {
            ElfHeader {
                e_type: u16_at(16),
                is64,
                little,
                phoff: u64_at(32),
                phentsize: u16_at(54),
                phnum: u16_at(56),
            }
        } else {
            ElfHeader {
                e_type: u16_at(16),
                is64,
                little,
                phoff: u64::from(u32_at(28)),
                phentsize: u16_at(42),
                phnum: u16_at(44),
            }
        })
    }

    /// Whether a `PT_INTERP` program header is present (a dynamically linked program).
    fn has_interp(&self, file: &File) -> std::io::Result<bool> {
        let min = if self.is64 { 56 } else { 32 };
        let entsize = usize::from(self.phentsize);
        if entsize < min || self.phnum == 0 {
            return Ok(false);
        }
        let size = file.metadata()?.len();
        if self.phoff >= size {
            return Ok(false);
        }
        let count = usize::from(self.phnum).min(MAX_PHDRS);
        let mut buf = vec![0u8; entsize * count];
        let n = read_full_at(file, &mut buf, self.phoff)?;
        Ok(buf[..n].chunks_exact(entsize).any(|ph| {
            let b = [ph[0], ph[1], ph[2], ph[3]];
            let p_type = if self.little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            };
            p_type == PT_INTERP
        }))
    }
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(at) = offset.checked_add(done as u64) else {
            break;
        };
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
#[expect(
    clippy::disallowed_methods,
    reason = "tests read this host's own binaries and their fixtures"
)]
mod tests {
    use super::*;

    fn classify_file(bytes: &[u8], so: bool) -> ContentClass {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        classify_content(&f, so).unwrap()
    }

    #[test]
    fn real_binaries_of_this_host() {
        let read = |p: &str| std::fs::read(p).ok();
        if let Some(ls) = read("/usr/bin/ls") {
            let c = classify_file(&ls, false);
            assert_eq!(
                (c.executable, c.library),
                (Some(ExecKind::Elf), false),
                "PIE ls"
            );
        }
        if let Some(libm) = read("/lib/x86_64-linux-gnu/libm.so.6") {
            let c = classify_file(&libm, true);
            assert_eq!((c.executable, c.library), (None, true), "libm");
        }
        if let Some(libc) = read("/lib/x86_64-linux-gnu/libc.so.6") {
            let c = classify_file(&libc, true);
            assert_eq!(
                (c.executable, c.library),
                (Some(ExecKind::Elf), true),
                "libc runs too"
            );
        }
    }

    #[test]
    fn scripts_and_data() {
        assert_eq!(
            classify_file(b"#!/bin/sh\necho", false).executable,
            Some(ExecKind::Script)
        );
        assert_eq!(classify_file(b"hello", false), ContentClass::default());
        assert_eq!(classify_file(b"", false), ContentClass::default());
        // A truncated or hostile ELF header is not an error, just not a program.
        assert_eq!(
            classify_file(b"\x7fELF\x02\x01", false),
            ContentClass::default()
        );
        let mut hostile = vec![0u8; 64];
        hostile[..6].copy_from_slice(b"\x7fELF\x02\x01");
        hostile[16] = 3; // ET_DYN
        hostile[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // phoff far away
        hostile[54] = 56;
        hostile[56] = 0xff;
        let c = classify_file(&hostile, false);
        assert_eq!((c.executable, c.library), (None, true));
    }

    #[test]
    fn package_databases_by_path() {
        let k = |p: &str| package_db_kind(&ContainerPath::from(p));
        assert_eq!(k("/var/lib/dpkg/status"), Some(Ecosystem::Dpkg));
        assert_eq!(k("/var/lib/dpkg/status-old"), None);
        assert_eq!(k("/lib/apk/db/installed"), Some(Ecosystem::Apk));
        assert_eq!(k("/var/lib/rpm/rpmdb.sqlite"), Some(Ecosystem::Rpm));
        assert_eq!(
            k("/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA"),
            Some(Ecosystem::Python)
        );
        assert_eq!(
            k("/usr/lib/python3/x.egg-info/PKG-INFO"),
            Some(Ecosystem::Python)
        );
        assert_eq!(
            k("/app/node_modules/left-pad/package.json"),
            Some(Ecosystem::Npm)
        );
        assert_eq!(
            k("/app/node_modules/@types/node/package.json"),
            Some(Ecosystem::Npm)
        );
        assert_eq!(
            k("/app/node_modules/a/node_modules/b/package.json"),
            Some(Ecosystem::Npm)
        );
        assert_eq!(k("/app/node_modules/left-pad/lib/package.json"), None);
        assert_eq!(k("/app/package.json"), None);
        assert!(named_so(b"libc.so.6") && named_so(b"x.so") && !named_so(b"sober"));
    }
}
