//! Crash torture: a small run evaluated (and checkpointed) every few steps with `keep_last = 1` is
//! killed with SIGKILL at random points — half at random times, half the moment a checkpoint file
//! is being written — and restarted each time; every restart must succeed, and the final weights
//! and `metrics.csv` (but its wall-clock column) must equal an uninterrupted run's, bit for bit.
//!
//! `VIT_TORTURE_KILLS` sets the number of kills (default 6, for CI) and `VIT_TORTURE_SEED` the
//! seed; `scripts/crash_torture.sh` runs it with 30 or more and prints what happened.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.parse().ok()
}

/// metrics.csv without the images_per_sec column (wall-clock dependent).
fn metrics_without_speed(run: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
}

/// Whether a checkpoint record or manifest is being written right now.
fn writing_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("checkpoint"))
        .map(|entries| entries.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().contains(".tmp-")))
        .unwrap_or(false)
}

#[test]
fn killed_anywhere_and_resumed_the_run_ends_bit_identical() {
    let kills: usize = env("VIT_TORTURE_KILLS").unwrap_or(6);
    let mut rng = vit_data::rng::SplitMix64::new(env("VIT_TORTURE_SEED").unwrap_or(0x70_27_02_e5));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    make_image_folder(&data, 20);
    let text = |out: &Path| {
        classification_config(&data, out, 3 + kills / 2)
            .replace("[run]", "[run]\neval_every = 2")
            .replace("[data]", "hidden_dropout_prob = 0.1\n[data]")
    };
    let straight = tmp.path().join("straight");
    let config = write_config(tmp.path(), "a.toml", &text(&straight));
    let start = Instant::now();
    assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    let full = start.elapsed();

    let tortured = tmp.path().join("tortured");
    let config = write_config(tmp.path(), "b.toml", &text(&tortured));
    let (mut killed, mut during_writes, mut finished) = (0, 0, 0);
    for k in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vit-train"))
            .args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Spread so that the kills cover the whole run: each start gets on average a little more
        // than its share of the run's length before it is killed.
        let deadline = Instant::now() + full.mul_f64(3.0 * rng.below(1000) as f64 / 1000.0 / kills as f64);
        let at_write = k % 2 == 1;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let now = Instant::now();
            if (at_write && writing_checkpoint(&tortured)) || (!at_write && now >= deadline) || now > deadline + full {
                child.kill().unwrap();
                killed += 1;
                during_writes += usize::from(at_write && writing_checkpoint(&tortured));
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "restart {k} panicked:\n{stderr}");
        if output.status.success() {
            finished += 1;
        } else {
            assert!(output.status.code().is_none(), "restart {k} failed rather than being killed:\n{stderr}");
        }
    }
    let stderr = assert_ok(&vit_train(&["--config", config.to_str().unwrap()]));
    eprintln!(
        "crash torture: {kills} starts, {killed} killed ({during_writes} while a checkpoint file was being \
         written), {finished} ran to the end; the last start: {}",
        if stderr.contains("resuming") { "resumed" } else { "found the run finished or fresh" }
    );
    assert!(killed > 0, "no run was interrupted");
    assert_eq!(metrics_without_speed(&straight), metrics_without_speed(&tortured));
    assert!(
        std::fs::read(straight.join("best/model.safetensors")).unwrap()
            == std::fs::read(tortured.join("best/model.safetensors")).unwrap(),
        "the tortured run's weights differ from the uninterrupted run's"
    );
}
