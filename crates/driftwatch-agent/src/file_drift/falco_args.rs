//! The arguments of the Falco event a file change becomes (`evt.arg.flags`, `evt.arg.mode`,
//! `evt.arg.target`), inferred from what the change left behind: the sensor sees the result
//! of a call, never the call, so each value here says only what the result proves.

use std::os::fd::AsFd;

/// Linux's `O_WRONLY`, `O_CREAT` and `O_TRUNC` (the bits Falco's macros test).
const O_WRONLY: u32 = libc::O_WRONLY as u32;
const O_CREAT: u32 = libc::O_CREAT as u32;
const O_TRUNC: u32 = libc::O_TRUNC as u32;

/// Longest link target kept: the kernel refuses longer ones (`PATH_MAX`), a filesystem the
/// container prepared could still hold one.
pub(super) const MAX_LINK_TARGET: usize = 4096;

/// The open flags a new regular file implies: created, for writing. `O_TRUNC` is not
/// claimed: on a file that did not exist it changes nothing that could be seen.
pub(super) fn created_flags() -> u32 {
    O_WRONLY | O_CREAT
}

/// The open flags a write closed on an existing file implies: `O_WRONLY`, and `O_TRUNC`
/// when the file was left shorter than it was before (`before`: the size last seen, or the
/// image's). A file rewritten to the same or a greater length may have been truncated too;
/// that cannot be told and is not claimed.
pub(super) fn written_flags(before: Option<u64>, now: u64) -> u32 {
    if before.is_some_and(|b| now < b) {
        O_WRONLY | O_TRUNC
    } else {
        O_WRONLY
    }
}

/// A symbolic link's target, read through the descriptor of the link itself (`O_PATH |
/// O_NOFOLLOW`, from the safe opener): `readlinkat(fd, "")` reads that very link, never a
/// path the container could re-point. The bytes (alerts show them as UTF-8 and carry the
/// bytes beside a target that is not), at most [`MAX_LINK_TARGET`] of them.
pub(super) fn link_target(link: impl AsFd) -> Option<Vec<u8>> {
    let target = rustix::fs::readlinkat(link, c"", Vec::with_capacity(256)).ok()?;
    let mut bytes = target.into_bytes();
    bytes.truncate(MAX_LINK_TARGET);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_file_is_opened_for_writing_with_o_creat() {
        assert_eq!(
            created_flags(),
            (libc::O_WRONLY | libc::O_CREAT) as u32,
            "Falco prints O_WRONLY|O_CREAT"
        );
        assert_eq!(created_flags() & O_TRUNC, 0);
    }

    #[test]
    fn o_trunc_only_when_the_file_got_shorter() {
        assert_eq!(written_flags(Some(120), 0), O_WRONLY | O_TRUNC, "emptied");
        assert_eq!(written_flags(Some(120), 7), O_WRONLY | O_TRUNC, "shortened");
        assert_eq!(written_flags(Some(120), 120), O_WRONLY, "same length");
        assert_eq!(written_flags(Some(120), 130), O_WRONLY, "appended");
        assert_eq!(written_flags(None, 0), O_WRONLY, "no earlier size known");
    }

    #[test]
    fn a_link_target_is_read_from_the_link_itself_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
        let open = |p: &std::path::Path| {
            rustix::fs::open(
                p,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW,
                rustix::fs::Mode::empty(),
            )
            .unwrap()
        };
        assert_eq!(
            link_target(open(&link)).as_deref(),
            Some(b"/etc/shadow".as_slice())
        );
        let long = "a/".repeat(2000) + "b";
        let long_link = dir.path().join("long");
        std::os::unix::fs::symlink(&long, &long_link).unwrap();
        assert_eq!(link_target(open(&long_link)).unwrap(), long.as_bytes());
        // A regular file is not a link: nothing, not its content.
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(link_target(open(&file)), None);
    }
}
