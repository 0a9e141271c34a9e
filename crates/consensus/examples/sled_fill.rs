//! How much memory sled takes while a tree is filled in batches, as a snapshot install
//! fills the fresh index tree: `cargo run --release -p goproxy-consensus --example sled_fill
//! -- RECORDS CACHE_MIB BATCH_RECORDS`. Prints the process's RSS every 100 000 records.
//! Records are 400-byte values under keys shaped like the index's.

use std::time::Instant;

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>())
        .collect::<Result<_, _>>()?;
    let [records, cache_mib, batch_records] = args[..] else {
        return Err("usage: sled_fill RECORDS CACHE_MIB BATCH_RECORDS".into());
    };
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(cache_mib << 20)
        .open()?;
    let tree = db.open_tree("index-1")?;
    let value = vec![b'x'; 400];
    let mut batch = sled::Batch::default();
    let started = Instant::now();
    for i in 0..records {
        let key = format!("e/example.com/m{:07}/@v/v1.0.{}.zip", i / 3, i % 3);
        batch.insert(key.as_bytes(), value.clone());
        if (i + 1) % batch_records.max(1) == 0 {
            tree.apply_batch(std::mem::take(&mut batch))?;
        }
        if (i + 1) % 100_000 == 0 {
            println!(
                "{} records: RSS {} MiB ({:.1} s)",
                i + 1,
                rss_mib(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    tree.apply_batch(batch)?;
    tree.flush()?;
    println!("flushed: RSS {} MiB", rss_mib());
    Ok(())
}
