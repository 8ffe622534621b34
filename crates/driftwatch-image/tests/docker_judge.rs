//! The judge on a real Docker container: what `touch`, `chmod`, `cp` and appends in the
//! container do to the verdict of its files.

use driftwatch_image::{Judge, JudgeError};
use driftwatch_model::Verdict;
use driftwatch_testkit::{DEBIAN, TestContainer, require};

#[test]
fn verdicts_on_a_real_debian_container() {
    require!(Docker, Image(DEBIAN));
    let c = TestContainer::run(&[DEBIAN, "sleep", "600"]);
    c.bash_ok(concat!(
        "touch /bin/true && chmod 755 /usr/bin/ls && chmod 4711 /usr/bin/id && cp /bin/ls /tmp/x",
        " && echo x >> /usr/bin/dash",
        " && printf Z | dd of=/usr/bin/cat bs=1 seek=200 conv=notrunc status=none",
        " && rm /usr/bin/who && rm -rf /usr/share/doc && mkdir /usr/share/doc",
        " && cp /bin/true /usr/share/doc/true",
    ));
    let ls_bytes = c.sh_ok("cat /usr/bin/ls");
    let layers = c.layers();
    let judge = Judge::new();
    let j = |p: &str| {
        judge
            .judge(&layers, p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };

    let t = j("/bin/true");
    assert_eq!(
        (t.verdict, t.resolved_path.as_str()),
        (Verdict::CopyUp, "/usr/bin/true")
    );
    assert_eq!(t.hash, t.image_hash);
    assert_eq!(t.metadata_change.unwrap().fields(), ["times"]);

    let ls = j("/usr/bin/ls");
    assert_eq!(ls.verdict, Verdict::CopyUp, "chmod to the same mode");
    assert_eq!(
        ls.hash.as_deref(),
        Some(blake3::hash(&ls_bytes).to_hex().as_str())
    );

    let id = j("/bin/id");
    assert_eq!(id.verdict, Verdict::CopyUp);
    let mode = id.metadata_change.unwrap().mode.unwrap();
    assert_eq!((mode.image, mode.current), (0o755, 0o4711));

    let x = j("/tmp/x");
    assert_eq!(
        x.verdict,
        Verdict::Added,
        "a copy of an image binary is still added"
    );
    assert_eq!(x.hash, ls.hash);

    let dash = j("/bin/sh");
    assert_eq!(
        (dash.verdict, dash.resolved_path.as_str()),
        (Verdict::Modified, "/usr/bin/dash")
    );
    assert!(dash.hash.is_some());

    let cat = j("/usr/bin/cat");
    assert_eq!(cat.verdict, Verdict::Modified);
    assert!(
        cat.image_hash.is_some() && cat.image_hash != cat.hash,
        "same size: both hashed"
    );

    assert_eq!(j("/usr/bin/sleep").verdict, Verdict::Image);
    assert_eq!(j("/lib64/ld-linux-x86-64.so.2").verdict, Verdict::Image);

    let who = judge.judge(&layers, "/usr/bin/who").unwrap_err();
    assert!(
        matches!(who, JudgeError::NotFound { .. }),
        "whiteout: {who}"
    );
    // rm -rf + mkdir makes the directory opaque: same bytes, but the image's copy is gone.
    assert_eq!(j("/usr/share/doc/true").verdict, Verdict::Added);

    // Unchanged files are not hashed again.
    let before = judge.hashes().computed();
    for p in [
        "/bin/true",
        "/usr/bin/ls",
        "/tmp/x",
        "/bin/sh",
        "/usr/bin/cat",
    ] {
        j(p);
    }
    assert_eq!(judge.hashes().computed(), before);
}
