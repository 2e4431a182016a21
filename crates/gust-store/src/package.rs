//! Checking an uploaded zip before it is stored: it must open, every entry must decompress
//! with a good checksum, the unpacked size must stay under the limit (counted while
//! decompressing, so a zip bomb stops at the limit), and no entry or symlink may point
//! outside the package.

use std::io::{self, Cursor, Read};
use std::path::{Component, Path, PathBuf};

/// What a valid package contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageSummary {
    /// Files and directories.
    pub entries: usize,
    /// Bytes once unpacked.
    pub unzipped_size: u64,
}

/// Why a package was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// Not a zip, or a damaged one.
    #[error("corrupt zip: {0}")]
    Corrupt(String),
    /// Unpacked, it would be larger than allowed.
    #[error("unzipped size must be smaller than {limit} bytes")]
    UnzippedTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// An entry's path leaves the package root (`../x`, `/etc/x`).
    #[error("entry {0:?} points outside the package")]
    EscapingEntry(String),
    /// An entry's name is longer than a file system allows (a part over 255 bytes, or the
    /// whole path over [`PATH_MAX_BYTES`]): it could be stored but never unpacked.
    #[error("an entry name is too long ({len} bytes): {name:?}")]
    NameTooLong {
        /// The start of the name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A symlink whose target leaves the package root.
    #[error("symlink {name:?} points outside the package (target {target:?})")]
    EscapingSymlink {
        /// The link's path.
        name: String,
        /// Where it points.
        target: String,
    },
}

/// Longest part of a path (Linux's `NAME_MAX`).
pub const NAME_MAX_BYTES: usize = 255;
/// Longest path inside a package: leaves room under `PATH_MAX` (4,096) for the directory
/// the package is unpacked into.
pub const PATH_MAX_BYTES: usize = 2048;

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
/// Symlink targets are short paths; anything longer is not a real link.
const SYMLINK_TARGET_MAX: u64 = 4096;

/// One entry of a package, as [`walk`] hands it to its visitor.
enum Entry<'a> {
    Directory,
    File { mode: u32, data: &'a mut dyn Read },
    Symlink { target: String },
}

/// Reads every entry once, enforcing the safety rules and the unpacked-size limit; the
/// visitor returns how many bytes it consumed from a file's data.
fn walk<R: Read + io::Seek>(
    reader: R,
    unzipped_limit: u64,
    mut visit: impl FnMut(&Path, Entry<'_>) -> io::Result<u64>,
) -> Result<PackageSummary, PackageError> {
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| PackageError::Corrupt(e.to_string()))?;
    // The central directory's declared sizes are a cheap first check; the real count below
    // does not trust them.
    let declared: u64 = (0..archive.len())
        .filter_map(|i| archive.by_index_raw(i).ok().map(|f| f.size()))
        .fold(0u64, u64::saturating_add);
    if declared > unzipped_limit {
        return Err(PackageError::UnzippedTooLarge {
            limit: unzipped_limit,
        });
    }
    // Every symlink of the package, known before any entry is visited: nothing may be
    // reached *through* one (a link to `..` followed by a link relative to it would escape
    // while each looks harmless on its own).
    let symlinks: std::collections::HashSet<PathBuf> = (0..archive.len())
        .filter_map(|i| {
            archive
                .by_index_raw(i)
                .ok()
                .map(|f| (f.name().to_owned(), f.unix_mode()))
        })
        .filter(|(_, mode)| mode.is_some_and(|mode| mode & S_IFMT == S_IFLNK))
        .filter_map(|(name, _)| safe_relative_path(&name))
        .collect();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| PackageError::Corrupt(e.to_string()))?;
        let name = entry.name().to_owned();
        let relative =
            safe_relative_path(&name).ok_or_else(|| PackageError::EscapingEntry(name.clone()))?;
        check_name_length(&name)?;
        if relative.ancestors().skip(1).any(|a| symlinks.contains(a)) {
            return Err(PackageError::EscapingEntry(name));
        }
        let mode = entry.unix_mode();
        let is_symlink = mode.is_some_and(|mode| mode & S_IFMT == S_IFLNK);
        let corrupt = |e: io::Error| PackageError::Corrupt(format!("{name}: {e}"));
        if is_symlink {
            let mut target = String::new();
            (&mut entry)
                .take(SYMLINK_TARGET_MAX)
                .read_to_string(&mut target)
                .map_err(|e| PackageError::Corrupt(format!("symlink {name:?}: {e}")))?;
            check_name_length(&target)?;
            if !symlink_stays_inside(&relative, &target)
                || passes_through_symlink(&relative, &target, &symlinks)
            {
                return Err(PackageError::EscapingSymlink { name, target });
            }
            total = total.saturating_add(target.len() as u64);
            visit(&relative, Entry::Symlink { target }).map_err(corrupt)?;
            continue;
        }
        if entry.is_dir() {
            visit(&relative, Entry::Directory).map_err(corrupt)?;
            continue;
        }
        let remaining = unzipped_limit.saturating_sub(total);
        let mut limited = (&mut entry).take(remaining.saturating_add(1));
        let written = visit(
            &relative,
            Entry::File {
                mode: mode.unwrap_or(0o644),
                data: &mut limited,
            },
        )
        .map_err(corrupt)?;
        if written > remaining {
            return Err(PackageError::UnzippedTooLarge {
                limit: unzipped_limit,
            });
        }
        total += written;
    }
    Ok(PackageSummary {
        entries: archive.len(),
        unzipped_size: total,
    })
}

/// Checks a package in memory; reads every entry once.
pub fn inspect(zip: &[u8], unzipped_limit: u64) -> Result<PackageSummary, PackageError> {
    walk(Cursor::new(zip), unzipped_limit, |_, entry| match entry {
        Entry::File { data, .. } => io::copy(data, &mut io::sink()),
        Entry::Directory | Entry::Symlink { .. } => Ok(0),
    })
}

/// Checks a stored package (for its unpacked size); reads every entry once.
pub fn inspect_file(path: &Path, unzipped_limit: u64) -> Result<PackageSummary, PackageError> {
    let file = std::fs::File::open(path)
        .map_err(|e| PackageError::Corrupt(format!("{}: {e}", path.display())))?;
    walk(
        io::BufReader::new(file),
        unzipped_limit,
        |_, entry| match entry {
            Entry::File { data, .. } => io::copy(data, &mut io::sink()),
            Entry::Directory | Entry::Symlink { .. } => Ok(0),
        },
    )
}

/// Unpacks a package into `dest` (which must not exist yet), with the same checks as
/// [`inspect`]. Files keep their executable bits and lose write permission: unpacked code
/// is shared, read-only, by every environment of a version.
pub fn extract(
    zip_path: &Path,
    dest: &Path,
    unzipped_limit: u64,
) -> Result<PackageSummary, PackageError> {
    std::fs::create_dir(dest)
        .map_err(|e| PackageError::Corrupt(format!("{}: {e}", dest.display())))?;
    extract_over(zip_path, dest, unzipped_limit)
}

/// Unpacks a package into the existing directory `dest`, replacing files and links an
/// earlier package left there (how layers stack in `/opt`), with the checks of [`inspect`].
pub fn extract_over(
    zip_path: &Path,
    dest: &Path,
    unzipped_limit: u64,
) -> Result<PackageSummary, PackageError> {
    use std::os::unix::fs::PermissionsExt;
    let io_error = |e: io::Error| PackageError::Corrupt(format!("{}: {e}", dest.display()));
    let file = std::fs::File::open(zip_path).map_err(io_error)?;
    let mut files = Vec::new();
    let mut links = Vec::new();
    let summary = walk(
        io::BufReader::new(file),
        unzipped_limit,
        |relative, entry| {
            // An earlier package (a layer below this one) may have left links: nothing is
            // ever written through one, or it could land outside `dest`.
            no_link_above(dest, relative)?;
            let path = dest.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Whatever an earlier package put here (a read-only file, a link) is replaced;
            // a directory stays and is merged into.
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                if !meta.is_dir() {
                    std::fs::remove_file(&path)?;
                }
            }
            match entry {
                Entry::Directory => std::fs::create_dir_all(&path).map(|()| 0),
                // Links are made last, so no file is ever written through one.
                Entry::Symlink { target } => {
                    links.push((target, path));
                    Ok(0)
                }
                Entry::File { mode, data } => {
                    let mut out = std::fs::File::create(&path)?;
                    let written = io::copy(data, &mut out)?;
                    let executable = mode & 0o111 != 0;
                    files.push((path, if executable { 0o555 } else { 0o444 }));
                    Ok(written)
                }
            }
        },
    )?;
    for (target, path) in links {
        std::os::unix::fs::symlink(&target, &path).map_err(io_error)?;
    }
    for (path, mode) in files {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(io_error)?;
    }
    Ok(summary)
}

/// Fails when a directory on the way to `relative` under `dest` is a symbolic link.
fn no_link_above(dest: &Path, relative: &Path) -> io::Result<()> {
    for ancestor in relative.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            continue;
        }
        let meta = std::fs::symlink_metadata(dest.join(ancestor));
        if meta.is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(io::Error::other(format!(
                "{} is reached through the link {} an earlier layer made",
                relative.display(),
                ancestor.display()
            )));
        }
    }
    Ok(())
}

/// Refuses a name the file system could not hold, so it fails at upload, not at unpacking.
fn check_name_length(name: &str) -> Result<(), PackageError> {
    let too_long = name.len() > PATH_MAX_BYTES
        || name
            .split(['/', '\\'])
            .any(|part| part.len() > NAME_MAX_BYTES);
    if too_long {
        let mut start = name.len().min(64);
        while !name.is_char_boundary(start) {
            start -= 1;
        }
        return Err(PackageError::NameTooLong {
            name: format!("{}...", &name[..start]),
            len: name.len(),
        });
    }
    Ok(())
}

/// The entry's path relative to the package root, or `None` when it is absolute or climbs
/// out with `..`.
fn safe_relative_path(name: &str) -> Option<PathBuf> {
    if name.contains('\0') || name.starts_with('\\') || name.contains(":\\") {
        return None;
    }
    let mut depth: usize = 0;
    let mut out = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => {
                depth += 1;
                out.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1)?;
                out.pop();
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether resolving `target` from `link`'s directory steps on another symlink of the
/// package (refused: where it leads would depend on that link; real packages do not chain).
fn passes_through_symlink(
    link: &Path,
    target: &str,
    symlinks: &std::collections::HashSet<PathBuf>,
) -> bool {
    let mut current: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    for component in Path::new(target).components() {
        match component {
            Component::Normal(part) => {
                current.push(part);
                if symlinks.contains(&current.iter().collect::<PathBuf>()) {
                    return true;
                }
            }
            Component::ParentDir => {
                current.pop();
            }
            _ => {}
        }
    }
    false
}

/// Whether `target`, resolved from the directory holding `link`, stays inside the root.
fn symlink_stays_inside(link: &Path, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let parent = link.parent().unwrap_or(Path::new(""));
    let joined = parent.join(target);
    safe_relative_path(&joined.to_string_lossy()).is_some()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    enum Entry<'a> {
        File(&'a str, &'a [u8]),
        Symlink(&'a str, &'a str),
    }

    fn build(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for entry in entries {
            match entry {
                Entry::File(name, data) => {
                    writer.start_file(*name, options).unwrap();
                    writer.write_all(data).unwrap();
                }
                Entry::Symlink(name, target) => {
                    writer.add_symlink(*name, *target, options).unwrap()
                }
            }
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn accepts_an_ordinary_package() {
        let zip = build(&[
            Entry::File("app.py", b"def handler(e, c):\n    return e\n"),
            Entry::File("lib/util.py", b"X = 1\n"),
            Entry::Symlink("lib/current", "util.py"),
            Entry::Symlink("alias", "lib/./util.py"),
        ]);
        let summary = inspect(&zip, 1_000_000).unwrap();
        assert_eq!(summary.entries, 4);
        assert!(summary.unzipped_size > 30);
    }

    #[test]
    fn refuses_corrupt_zips() {
        assert!(matches!(
            inspect(b"not a zip", 1000),
            Err(PackageError::Corrupt(_))
        ));
        let mut zip = build(&[Entry::File("a.txt", &[b'x'; 5000])]);
        // Flip bytes inside the compressed data so the checksum fails.
        for byte in &mut zip[40..60] {
            *byte ^= 0xff;
        }
        assert!(matches!(
            inspect(&zip, 1_000_000),
            Err(PackageError::Corrupt(_))
        ));
        let truncated = build(&[Entry::File("a.txt", b"hello")]);
        assert!(inspect(&truncated[..truncated.len() / 2], 1000).is_err());
    }

    #[test]
    fn refuses_paths_leaving_the_root() {
        for name in [
            "../evil.py",
            "a/../../evil.py",
            "/etc/passwd",
            "\\windows\\evil",
        ] {
            let zip = build(&[Entry::File(name, b"x")]);
            assert_eq!(
                inspect(&zip, 1000),
                Err(PackageError::EscapingEntry(name.into())),
                "{name}"
            );
        }
        let zip = build(&[Entry::File("a/../ok.py", b"x")]);
        assert!(inspect(&zip, 1000).is_ok());
    }

    #[test]
    fn refuses_symlinks_leaving_the_root() {
        for target in ["/etc/shadow", "../../etc/passwd", "../outside", "a/../../x"] {
            let zip = build(&[Entry::Symlink("link", target)]);
            assert!(
                matches!(
                    inspect(&zip, 1000),
                    Err(PackageError::EscapingSymlink { .. })
                ),
                "{target}"
            );
        }
        let zip = build(&[Entry::Symlink("dir/link", "../inside.py")]);
        assert!(inspect(&zip, 1000).is_ok());
    }

    #[test]
    fn refuses_escapes_through_chained_symlinks() {
        // x/a -> .. is harmless alone; x/a/b then lives at the root, and ../../escaped from
        // there leaves the package.
        let chained = build(&[
            Entry::File("x/keep", b"k"),
            Entry::Symlink("x/a", ".."),
            Entry::Symlink("x/a/b", "../../escaped"),
            Entry::File("x/a/b/pwned.txt", b"owned"),
        ]);
        assert!(inspect(&chained, 1 << 20).is_err());
        // A link whose target walks through another link.
        let through = build(&[Entry::Symlink("up", ".."), Entry::Symlink("l", "up/../x")]);
        assert!(inspect(&through, 1 << 20).is_err());
        // Files written under a symlinked directory.
        let under = build(&[Entry::Symlink("d", "real"), Entry::File("d/f", b"x")]);
        assert!(matches!(
            inspect(&under, 1 << 20),
            Err(PackageError::EscapingEntry(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let zip_path = dir.path().join("c.zip");
        std::fs::write(&zip_path, &chained).unwrap();
        assert!(extract(&zip_path, &dir.path().join("out"), 1 << 20).is_err());
        assert!(!dir.path().join("escaped").exists());
    }

    #[test]
    fn refuses_names_no_file_system_can_hold() {
        let long_part = format!("{}.py", "a".repeat(300));
        let zip = build(&[Entry::File(&long_part, b"x")]);
        assert!(matches!(
            inspect(&zip, 1 << 20),
            Err(PackageError::NameTooLong { len: 303, .. })
        ));
        let deep = vec!["d".repeat(200); 11].join("/");
        let zip = build(&[Entry::File(&deep, b"x")]);
        assert!(matches!(
            inspect(&zip, 1 << 20),
            Err(PackageError::NameTooLong { .. })
        ));
        let fine = format!("{}/{}.py", "d".repeat(250), "a".repeat(250));
        assert!(inspect(&build(&[Entry::File(&fine, b"x")]), 1 << 20).is_ok());
    }

    #[test]
    fn stacked_layers_never_write_through_an_earlier_layers_link() {
        let dir = tempfile::tempdir().unwrap();
        let layer = |name: &str, entries: &[Entry<'_>]| {
            let path = dir.path().join(name);
            std::fs::write(&path, build(entries)).unwrap();
            path
        };
        // Each passes its own checks; stacked, the third would land outside the tree.
        let first = layer("1.zip", &[Entry::Symlink("a", ".")]);
        let second = layer("2.zip", &[Entry::Symlink("a/esc", "..")]);
        let third = layer("3.zip", &[Entry::File("esc/pwned", b"x")]);
        for zip in [&first, &second, &third] {
            assert!(inspect(&std::fs::read(zip).unwrap(), 1 << 20).is_ok());
        }
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        extract_over(&first, &tree, 1 << 20).unwrap();
        assert!(extract_over(&second, &tree, 1 << 20).is_err());
        let _ = extract_over(&third, &tree, 1 << 20);
        assert!(!dir.path().join("pwned").exists());
        // A later layer's file replaces an earlier layer's link (never writes through it).
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        extract_over(
            &layer("4.zip", &[Entry::Symlink("f", "g")]),
            &other,
            1 << 20,
        )
        .unwrap();
        extract_over(
            &layer("5.zip", &[Entry::File("f", b"real")]),
            &other,
            1 << 20,
        )
        .unwrap();
        assert_eq!(std::fs::read(other.join("f")).unwrap(), b"real");
        assert!(!other.join("g").exists());
    }

    #[test]
    fn stops_a_zip_bomb_at_the_limit() {
        // 20 MB of zeros compresses to about 20 KB.
        let zeros = vec![0u8; 20 * 1024 * 1024];
        let zip = build(&[Entry::File("bomb.bin", &zeros)]);
        assert!(zip.len() < 100_000);
        assert_eq!(
            inspect(&zip, 10 * 1024 * 1024),
            Err(PackageError::UnzippedTooLarge {
                limit: 10 * 1024 * 1024
            })
        );
        assert!(inspect(&zip, 21 * 1024 * 1024).is_ok());
    }

    #[test]
    fn extracts_with_modes_and_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let exec = SimpleFileOptions::default().unix_permissions(0o755);
        writer
            .add_directory("pkg/", SimpleFileOptions::default())
            .unwrap();
        writer
            .start_file("pkg/mod.py", SimpleFileOptions::default())
            .unwrap();
        writer.write_all(b"X = 1\n").unwrap();
        writer.start_file("bootstrap", exec).unwrap();
        writer.write_all(b"#!/bin/sh\n").unwrap();
        writer
            .add_symlink("link.py", "pkg/mod.py", SimpleFileOptions::default())
            .unwrap();
        let zip_path = dir.path().join("code.zip");
        std::fs::write(&zip_path, writer.finish().unwrap().into_inner()).unwrap();
        let dest = dir.path().join("out");
        extract(&zip_path, &dest, 1 << 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("link.py")).unwrap(),
            "X = 1\n"
        );
        let mode = |p: &str| {
            std::fs::metadata(dest.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("bootstrap"), 0o555);
        assert_eq!(mode("pkg/mod.py"), 0o444);
        // Escaping packages are refused while unpacking too.
        let evil = build(&[Entry::File("../evil", b"x")]);
        std::fs::write(&zip_path, evil).unwrap();
        assert!(extract(&zip_path, &dir.path().join("evil-out"), 1 << 20).is_err());
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn does_not_trust_declared_sizes() {
        let zeros = vec![0u8; 1024 * 1024];
        let mut zip = build(&[Entry::File("bomb.bin", &zeros)]);
        // Rewrite the uncompressed size in the central directory to 1 byte.
        let cd = zip.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
        zip[cd + 24..cd + 28].copy_from_slice(&1u32.to_le_bytes());
        let result = inspect(&zip, 64 * 1024);
        assert!(
            matches!(
                result,
                Err(PackageError::UnzippedTooLarge { .. }) | Err(PackageError::Corrupt(_))
            ),
            "{result:?}"
        );
    }
}
