//! The doublewrite files of a server about to be provisioned in place.
//!
//! An in-place clone replaces every tablespace and the redo log, but not the
//! doublewrite files: the server restarts on the donor's pages with its own
//! doublewrite files, full of pages of its former life whose LSNs run past
//! the clone's. InnoDB ignores them on the first start after the clone
//! (`recv_sys->is_cloned_db`), not on the next: a crash before they are
//! overwritten makes recovery copy each of them over the page of the same
//! tablespace and number when that page is all zeroes (buf0dblwr.cc,
//! `dblwr_recover_page`). The system, mysql and undo tablespaces have the
//! same ids on every server, and a clone has many zero pages in them, so the
//! data dictionary and the undo logs get pages "in the future".
//!
//! So each of them goes on InnoDB's list of files the clone replaces
//! (`#clone/#replace_files`) with a zero-filled file of the same size beside
//! it (`<name>.#clone`), as InnoDB does for every file of the clone that
//! already exists here. At the restart InnoDB swaps the files before it
//! opens its doublewrite files (clone_init comes before dblwr::open in
//! srv_start) and deletes the old ones when the clone's recovery ends; if the
//! clone or its recovery fails, the old ones come back with the old
//! instance. (The list of the old instance's files, `#clone/#old_files`,
//! does not serve: it keeps a moved file's `.#clone_save` copy for good once
//! a new file of the same name exists, and skips the name at the next clone.)

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// InnoDB's list of the files the clone replaces at the restart, relative
/// to the data directory.
const REPLACE_LIST: &str = "#clone/#replace_files";
/// What InnoDB puts in place of a listed file: the file's name with this.
const REPLACEMENT_SUFFIX: &str = ".#clone";

/// The directory InnoDB keeps its doublewrite files in, as InnoDB derives it
/// from innodb_doublewrite_dir (ha_innodb.cc): the data directory when empty,
/// and a relative name not starting with '#' or '.' gets a '#' in front.
pub fn directory(setting: &str) -> PathBuf {
    match setting.as_bytes().first() {
        None => PathBuf::from("."),
        Some(b'#' | b'.' | b'/') => PathBuf::from(setting),
        Some(_) => PathBuf::from(format!("#{setting}")),
    }
}

/// Whether a file name is one of InnoDB's doublewrite files:
/// `#ib_<page size>_<n>.dblwr`, or `.bdblwr` for the reduced doublewrite.
fn is_doublewrite_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("#ib_") else { return false };
    let Some(stem) = rest.strip_suffix(".dblwr").or_else(|| rest.strip_suffix(".bdblwr")) else { return false };
    let mut numbers = stem.split('_');
    let all_digits = |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    all_digits(numbers.next()) && all_digits(numbers.next()) && numbers.next().is_none()
}

/// The doublewrite files in `dir`, sorted.
pub fn files_in(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name().to_str().is_some_and(is_doublewrite_file) {
            files.push(dir.join(entry.file_name()));
        }
    }
    files.sort();
    Ok(files)
}

/// Has InnoDB replace each of `files` with zeroes at the restart: lists
/// `<file>` in `data_dir`, then writes the zero-filled `<file>.#clone`. In
/// that order, a crash between the two leaves a name InnoDB skips (it has
/// no `.#clone`), never a `.#clone` no list names.
pub fn replace_with_zeroes(data_dir: &Path, files: &[PathBuf]) -> io::Result<()> {
    let mut text = String::new();
    let mut sizes = Vec::new();
    for file in files {
        let name = file.to_str().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "file name is not UTF-8"))?;
        sizes.push((format!("{name}{REPLACEMENT_SUFFIX}"), std::fs::metadata(file)?.len()));
        text.push_str(name);
        text.push('\n');
    }
    let list_path = data_dir.join(REPLACE_LIST);
    if let Some(folder) = list_path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let mut list = OpenOptions::new().create(true).append(true).open(&list_path)?;
    list.write_all(text.as_bytes())?;
    list.sync_all()?;
    for (replacement, size) in &sizes {
        write_zeroes(Path::new(replacement), *size)?;
    }
    for folder in files.iter().filter_map(|f| f.parent()).chain(list_path.parent()) {
        sync_directory(folder)?;
    }
    Ok(())
}

/// Creates `path` with `size` zero bytes written and synced. A file of holes
/// (`set_len`) will not do: InnoDB writes zeroes into a doublewrite file only
/// when it is empty (buf0dblwr.cc) and, under O_DIRECT, never syncs its
/// writes there, counting on the blocks being allocated already; a first
/// write into a hole allocates it, which is not durable until the file
/// system commits its journal, and fails on a full disk. So the blocks are
/// written, as InnoDB's own `os_file_write_zeros` does.
fn write_zeroes(path: &Path, size: u64) -> io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let zeroes = vec![0u8; CHUNK];
    let mut file = std::fs::File::create(path)?;
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        file.write_all(&zeroes[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// Makes the names created in `dir` durable.
fn sync_directory(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn directory_follows_innodb() {
        assert_eq!(directory(""), PathBuf::from("."));
        assert_eq!(directory("./dblwr"), PathBuf::from("./dblwr"));
        assert_eq!(directory("#dblwr"), PathBuf::from("#dblwr"));
        assert_eq!(directory("/var/lib/dblwr"), PathBuf::from("/var/lib/dblwr"));
        assert_eq!(directory("dblwr"), PathBuf::from("#dblwr"));
    }

    #[test]
    fn names_of_doublewrite_files() {
        for name in ["#ib_16384_0.dblwr", "#ib_16384_1.dblwr", "#ib_4096_12.dblwr", "#ib_16384_0.bdblwr"] {
            assert!(is_doublewrite_file(name), "{name}");
        }
        for name in ["#ib_16384_0.dblwr.save", "ib_16384_0.dblwr", "#ib_16384.dblwr", "#ib__0.dblwr", "#ib_16384_0_1.dblwr", "#ib_16384_x.dblwr", "mysql.ibd"] {
            assert!(!is_doublewrite_file(name), "{name}");
        }
    }

    #[test]
    fn replaced_files_get_zeroes_and_are_listed() {
        let dir = std::env::temp_dir().join(format!("clone-rs-dblwr-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("#clone")).unwrap();
        for name in ["#ib_16384_1.dblwr", "#ib_16384_0.dblwr", "#ib_16384_0.bdblwr", "undo_001", "#ib_16384_0.dblwr.#clone_save"] {
            std::fs::write(dir.join(name), vec![7u8; 3 * 16384]).unwrap();
        }
        std::fs::create_dir(dir.join("#ib_16384_2.dblwr")).unwrap();
        std::fs::write(dir.join(REPLACE_LIST), "/data/mysql.ibd\n").unwrap();
        let files = files_in(&dir).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_str().unwrap().to_owned()).collect();
        assert_eq!(names, ["#ib_16384_0.bdblwr", "#ib_16384_0.dblwr", "#ib_16384_1.dblwr"]);
        replace_with_zeroes(&dir, &files[1..]).unwrap();
        let list = std::fs::read_to_string(dir.join(REPLACE_LIST)).unwrap();
        let expected = format!("/data/mysql.ibd\n{}\n{}\n", files[1].display(), files[2].display());
        assert_eq!(list, expected);
        for file in &files[1..] {
            let zeroes = std::fs::read(format!("{}.#clone", file.display())).unwrap();
            assert_eq!(zeroes, vec![0u8; 3 * 16384]);
            // Every block allocated: no hole for a first write to fill.
            let allocated = std::fs::metadata(format!("{}.#clone", file.display())).unwrap().blocks() * 512;
            assert!(allocated >= 3 * 16384, "{} has {allocated} bytes allocated", file.display());
            assert_eq!(std::fs::read(file).unwrap(), vec![7u8; 3 * 16384], "the file itself is left to InnoDB");
        }
        assert!(!dir.join("#ib_16384_0.bdblwr.#clone").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
