//! Figures for the engine at fleet scale: the time of one `decide` pass and the size of the
//! status it writes, at 1,000, 5,000 and 10,000 Deployments, driven by the same model run as
//! `servicerefresh bench --only status`. Prints; asserts nothing.
//! Run with `cargo bench --bench engine`.

use std::time::Duration;

use servicerefresh_dev::bench::status_size::drive_run;

fn main() {
    println!(
        "{:>8} {:>8} {:>14} {:>14} {:>14}",
        "services", "passes", "mean pass", "slowest pass", "status bytes"
    );
    for count in [1_000, 5_000, 10_000] {
        let (mut passes, mut total, mut slowest, mut status_bytes) =
            (0u32, Duration::ZERO, Duration::ZERO, 0);
        let driven = drive_run(count, 100, |pass| {
            passes += 1;
            total += pass.decide;
            slowest = slowest.max(pass.decide);
            status_bytes = pass.status_bytes;
        });
        if let Err(error) = driven {
            eprintln!("error: the model run of {count} failed: {error}");
            std::process::exit(1);
        }
        println!(
            "{:>8} {:>8} {:>14?} {:>14?} {:>10} KiB",
            count,
            passes,
            total / passes.max(1),
            slowest,
            status_bytes / 1024,
        );
    }
    println!(
        "status budget: 512 KiB at 10,000 services (the API server's object limit is 1.5 MiB)"
    );
}
