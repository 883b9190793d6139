//! The durable-write floor for the benchmarks: what any safe file write on
//! this machine must pay, and nothing else. Writes FILE's new content (from
//! the argument) to a temporary file, fsyncs it, renames it over FILE and
//! fsyncs the directory. `--no-fsync` skips both fsyncs, to show what
//! durability costs.
//!
//! Usage: durable_write [--no-fsync] FILE CONTENT

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let fsync = if args.first().map(String::as_str) == Some("--no-fsync") {
        args.remove(0);
        false
    } else {
        true
    };
    let [file, content] = args.as_slice() else {
        eprintln!("usage: durable_write [--no-fsync] FILE CONTENT");
        std::process::exit(2);
    };
    let file = Path::new(file);
    let dir = file
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(".floor-{}", std::process::id()));
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    out.write_all(content.as_bytes())?;
    if fsync {
        out.sync_all()?;
    }
    fs::rename(&temp, file)?;
    if fsync {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
