//! `vit-fuzz`: fuzz the readers of user files for a bounded time.
//!
//! ```text
//! vit-fuzz [--seconds N | --execs N] [--seed S] [--target NAME]... [--findings DIR] [--timeout SECS]
//! vit-fuzz --replay FILE [--target NAME]
//! vit-fuzz --list
//! ```
//! Exit status: 0 no finding, 1 findings (saved as `DIR/<target>-<hash>.bin`), 2 bad arguments,
//! 3 an input allocated too much or ran too long (saved as `DIR/<target>-allocation-<hash>.bin` or
//! `...-timeout-...`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use vit_fuzz::{GuardAlloc, Options, TARGETS, print_input, replay, run, targets};

#[global_allocator]
static ALLOC: GuardAlloc = GuardAlloc;

const USAGE: &str = "usage: vit-fuzz [--seconds N | --execs N] [--seed S] [--target NAME]... [--findings DIR] [--timeout SECS] [--root DIR]
       vit-fuzz --replay FILE [--target NAME]
       vit-fuzz --list";

fn main() -> ExitCode {
    match main_inner() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("vit-fuzz: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn value<T: std::str::FromStr>(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<T, String> {
    let raw = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    raw.parse().map_err(|_| format!("{flag}: cannot parse `{raw}`"))
}

fn main_inner() -> Result<ExitCode, String> {
    let mut options =
        Options { findings_dir: Some(PathBuf::from("fuzz-findings")), verbose: true, ..Options::default() };
    let mut replay_file: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = value(&mut args, "--seconds")?,
            "--seed" => options.seed = value(&mut args, "--seed")?,
            "--execs" => options.execs = Some(value(&mut args, "--execs")?),
            "--target" => {
                let names: String = value(&mut args, "--target")?;
                options.targets.extend(names.split(',').filter(|s| !s.is_empty()).map(str::to_string));
            }
            "--findings" => options.findings_dir = Some(value(&mut args, "--findings")?),
            "--root" => options.root = value(&mut args, "--root")?,
            "--timeout" => options.timeout = Duration::from_secs_f64(value(&mut args, "--timeout")?),
            "--replay" => replay_file = Some(value(&mut args, "--replay")?),
            "--quiet" => options.verbose = false,
            "--list" => {
                for t in TARGETS {
                    println!("{:<12} {}", t.name, t.about);
                }
                return Ok(ExitCode::SUCCESS);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }

    if let Some(file) = replay_file {
        let input = std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        // The target is given, or is the file name's prefix (`<target>-<hash>.bin`).
        let stem = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let name =
            options.targets.first().cloned().unwrap_or_else(|| stem.split('-').next().unwrap_or_default().to_string());
        let target = targets::find(&name).ok_or_else(|| format!("unknown target `{name}`; give --target"))?;
        return Ok(match replay(target, &input) {
            Ok(outcome) => {
                println!("[{name}] no panic; outcome: {outcome}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                println!("[{name}] PANIC: {message}");
                ExitCode::from(1)
            }
        });
    }

    eprintln!(
        "vit-fuzz: seed {}, {:.0} s over {}",
        options.seed,
        options.seconds,
        if options.targets.is_empty() { "all targets".to_string() } else { options.targets.join(", ") }
    );
    let reports = run(&options)?;
    let mut total = 0;
    println!("{:<12} {:>10} {:>8} {:>8} {:>9} {:>8}", "target", "execs", "exec/s", "corpus", "outcomes", "findings");
    for r in &reports {
        println!(
            "{:<12} {:>10} {:>8.0} {:>8} {:>9} {:>8}",
            r.target,
            r.execs,
            r.execs as f64 / r.seconds.max(1e-9),
            r.corpus,
            r.outcomes,
            r.findings.len()
        );
        total += r.findings.len();
    }
    for f in reports.iter().flat_map(|r| &r.findings) {
        println!("\nFINDING [{}] ({} inputs): {}", f.target, f.hits, f.message);
        print_input(&f.input, f.saved.as_deref());
    }
    Ok(if total == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
