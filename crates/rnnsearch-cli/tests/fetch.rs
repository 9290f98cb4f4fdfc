//! `scripts/fetch-multi30k.sh` from a local folder (`MULTI30K_DIR`): fills the destination,
//! is idempotent, and rejects a corrupted file by its checksum without installing it.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

const CORE: [&str; 3] = ["train", "val", "test_2016_flickr"];
const LANGS: [&str; 4] = ["en", "de", "fr", "cs"];

fn fetch(source: &Path, dest: &Path) -> Output {
    run(Command::new("bash")
        .arg(repo_root().join("scripts/fetch-multi30k.sh"))
        .arg(dest)
        .env("MULTI30K_DIR", source))
}

#[test]
fn fills_from_a_folder_and_rejects_a_corrupted_file() {
    let Some(corpus) = multi30k() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (source, dest) = (dir.path().join("source"), dir.path().join("dest"));
    std::fs::create_dir_all(&source).unwrap();
    for split in CORE {
        for lang in LANGS {
            let name = format!("{split}.{lang}.gz");
            std::fs::copy(corpus.join(&name), source.join(&name)).unwrap();
        }
    }
    // One changed byte in the middle of val.de.gz: the same size, a wrong checksum.
    let bad = source.join("val.de.gz");
    let original = std::fs::read(&bad).unwrap();
    let mut corrupted = original.clone();
    corrupted[original.len() / 2] ^= 0x01;
    std::fs::write(&bad, &corrupted).unwrap();

    let out = fetch(&source, &dest);
    assert!(
        !out.status.success(),
        "a corrupted file must fail the fetch"
    );
    let err = stderr(&out);
    assert!(
        err.contains("val.de.gz") && err.contains("sha256 mismatch"),
        "{err}"
    );
    assert!(
        !dest.join("val.de.gz").exists(),
        "the bad copy is not installed"
    );

    std::fs::write(&bad, &original).unwrap();
    let out = fetch(&source, &dest);
    assert!(out.status.success(), "{}", stderr(&out));
    for split in CORE {
        for lang in LANGS {
            let name = format!("{split}.{lang}.gz");
            assert_eq!(
                std::fs::read(dest.join(&name)).unwrap(),
                std::fs::read(corpus.join(&name)).unwrap(),
                "{name}"
            );
        }
    }
    // A second run finds every file intact and copies nothing.
    let again = stdout(&fetch(&source, &dest));
    assert_eq!(
        again.matches("  ok ").count(),
        CORE.len() * LANGS.len(),
        "{again}"
    );
}
