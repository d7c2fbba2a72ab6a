//! `vit-fuzz`: a dependency-free mutation fuzzer over vit-burn's readers of user files
//! (safetensors weights and inputs, `model.safetensors.index.json`, `config.json`,
//! `preprocessor_config.json`, images, CIFAR records, and `vit-train`'s run-config TOML with its
//! `--set` overrides). The nightly-only cargo-fuzz is not needed.
//!
//! Each target starts from seed inputs (the repository's fixtures, the shipped `configs/`, and
//! small built-in files), applies random mutations, some generic (bit flips, byte insert/delete,
//! truncation, splicing) and some format-aware (safetensors length prefix and header fields, JSON
//! type swaps and extreme numbers, PNG IHDR dimensions and chunks, CIFAR label bytes, TOML values
//! of other types, keys, section headers and `--set` overrides), and calls the reader inside
//! `catch_unwind`. A panic is a finding. So are an allocation above [`Options::alloc_limit`]
//! and a single input running longer than [`Options::timeout`]; those end the process, after the
//! input is saved. Inputs whose outcome (the error message without its digits) is new join the
//! corpus, which steers mutations past the first checks.
//!
//! Run it with `scripts/fuzz.sh`, or `cargo run --release -p vit-fuzz -- --seconds 60`.

pub mod mutate;
pub mod rng;
pub mod seeds;
pub mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use rng::Rng;
pub use targets::{TARGETS, Target, Workdir};

/// How a fuzzing run goes.
#[derive(Clone, Debug)]
pub struct Options {
    /// Targets to run, in order (all when empty).
    pub targets: Vec<String>,
    /// Wall-clock seconds, split evenly over the targets.
    pub seconds: f64,
    /// Stop each target after this many inputs instead (the seeds included): with the same
    /// seed, the same inputs in the same order.
    pub execs: Option<u64>,
    /// Seed of the mutations: the same seed makes the same inputs.
    pub seed: u64,
    /// Where findings are saved (`<target>-<hash>.bin`); `None`: not saved.
    pub findings_dir: Option<PathBuf>,
    /// The workspace root, for the fixture seeds.
    pub root: PathBuf,
    /// An input running longer than this is a finding (and ends the process).
    pub timeout: Duration,
    /// An allocation larger than this is a finding (and ends the process).
    pub alloc_limit: usize,
    /// Print progress and findings.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            targets: Vec::new(),
            seconds: 60.0,
            execs: None,
            seed: 0,
            findings_dir: None,
            root: seeds::default_root(),
            timeout: Duration::from_secs(20),
            alloc_limit: 3 << 30,
            verbose: false,
        }
    }
}

/// One distinct panic.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The target it came from.
    pub target: &'static str,
    /// The panic message and location.
    pub message: String,
    /// The (first) input that caused it.
    pub input: Vec<u8>,
    /// Where it was saved.
    pub saved: Option<PathBuf>,
    /// How many inputs hit the same panic location.
    pub hits: usize,
}

/// Most inputs kept per target (seeds included).
const MAX_CORPUS: usize = 4096;

/// What one target's run did.
#[derive(Clone, Debug)]
pub struct TargetReport {
    /// The target.
    pub target: &'static str,
    /// Inputs executed.
    pub execs: u64,
    /// Corpus size at the end (seeds + kept inputs).
    pub corpus: usize,
    /// Distinct outcomes seen.
    pub outcomes: usize,
    /// Seconds spent.
    pub seconds: f64,
    /// Distinct panics.
    pub findings: Vec<Finding>,
}

// ---------------------------------------------------------------------------------------------
// Panic capture, watchdog, allocation guard

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

struct Current {
    target: &'static str,
    input: Vec<u8>,
    started: Option<Instant>,
    findings_dir: Option<PathBuf>,
}

static CURRENT: Mutex<Current> =
    Mutex::new(Current { target: "", input: Vec::new(), started: None, findings_dir: None });
static ALLOC_LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static IN_GUARD: AtomicBool = AtomicBool::new(false);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The system allocator, with a ceiling on single allocations while an input runs: a reader
/// asking for more than [`Options::alloc_limit`] bytes (a size taken from a file header without
/// a check) is a finding; the input is saved and the process exits with status 3. Install it in
/// the binary or test that fuzzes: `#[global_allocator] static A: GuardAlloc = GuardAlloc;`.
pub struct GuardAlloc;

fn check_size(size: usize) {
    if size > ALLOC_LIMIT.load(Ordering::Relaxed) && !IN_GUARD.swap(true, Ordering::SeqCst) {
        fatal("allocation", &format!("an allocation of {size} bytes (limit {})", ALLOC_LIMIT.load(Ordering::Relaxed)));
    }
}

// SAFETY: every call is forwarded to `System` unchanged; `check_size` only reads atomics and, on
// a violation, ends the process.
unsafe impl GlobalAlloc for GuardAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Saves the running input as a finding of `kind`, prints it, and exits with status 3.
fn fatal(kind: &str, what: &str) -> ! {
    ALLOC_LIMIT.store(usize::MAX, Ordering::SeqCst);
    let (target, input, dir) = match CURRENT.try_lock() {
        Ok(c) => (c.target, c.input.clone(), c.findings_dir.clone()),
        Err(_) => ("unknown", Vec::new(), None),
    };
    let saved = dir.and_then(|d| save(&d, &format!("{target}-{kind}"), &input));
    eprintln!("\nFINDING [{target}] {kind}: {what}");
    print_input(&input, saved.as_deref());
    std::process::exit(3);
}

fn start_watchdog(timeout: Duration) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let late = lock(&CURRENT).started.is_some_and(|t| t.elapsed() > timeout);
            if late && !flag.load(Ordering::Relaxed) {
                fatal("timeout", &format!("one input ran longer than {timeout:?}"));
            }
        }
    });
    stop
}

fn panic_message(info: &panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into());
    match info.location() {
        Some(l) => format!("{msg} at {}:{}:{}", l.file(), l.line(), l.column()),
        None => msg,
    }
}

/// 64-bit FNV-1a, for finding file names.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn save(dir: &Path, stem: &str, input: &[u8]) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{stem}-{:016x}.bin", fnv1a(input)));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// Prints an input: as text when it mostly is, else as hex (first 512 bytes).
pub fn print_input(input: &[u8], saved: Option<&Path>) {
    if let Some(p) = saved {
        eprintln!("  saved: {}", p.display());
    }
    let head = &input[..input.len().min(512)];
    let printable = head.iter().filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()).count();
    eprintln!("  input ({} bytes{}):", input.len(), if input.len() > 512 { ", first 512 shown" } else { "" });
    if printable * 10 >= head.len() * 9 {
        eprintln!("  {}", String::from_utf8_lossy(head).replace('\n', "\n  "));
    } else {
        for row in head.chunks(32) {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            eprintln!("  {}", hex.join(" "));
        }
    }
}

/// Runs `target` on one input with panics caught: `Err(message)` when it panicked.
pub fn exec_one(target: &Target, work: &Workdir, input: &[u8]) -> Result<String, String> {
    *lock(&LAST_PANIC) = None;
    match panic::catch_unwind(AssertUnwindSafe(|| (target.exec)(work, input))) {
        Ok(sig) => Ok(sig),
        Err(_) => Err(lock(&LAST_PANIC).take().unwrap_or_else(|| "panic (no message)".into())),
    }
}

struct HookGuard;

impl HookGuard {
    fn install() -> Self {
        panic::set_hook(Box::new(|info| {
            let message = panic_message(info);
            // Some panics cannot unwind (they abort right after this hook): print the message and
            // keep the input so that those are findings too.
            eprintln!("panic: {message}");
            if let Ok(c) = CURRENT.try_lock()
                && let Some(dir) = &c.findings_dir
                && std::fs::create_dir_all(dir).is_ok()
            {
                let _ = std::fs::write(dir.join(format!("{}-last-panic.bin", c.target)), &c.input);
            }
            *lock(&LAST_PANIC) = Some(message);
        }));
        HookGuard
    }
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        // (Changing the hook while unwinding would abort.)
        if !std::thread::panicking() {
            let _ = panic::take_hook();
        }
    }
}

/// Replays one saved input on `target`: `Err(panic message)` when it still panics. Allocations
/// above the default [`Options::alloc_limit`] end the process, as while fuzzing.
pub fn replay(target: &Target, input: &[u8]) -> Result<String, String> {
    let work = Workdir::new().map_err(|e| format!("cannot create a work directory: {e}"))?;
    let _hook = HookGuard::install();
    ALLOC_LIMIT.store(Options::default().alloc_limit, Ordering::SeqCst);
    let result = exec_one(target, &work, input);
    ALLOC_LIMIT.store(usize::MAX, Ordering::SeqCst);
    result
}

/// Where a panic message says it happened (`file:line`), to count repeats as one finding.
fn panic_site(message: &str) -> String {
    message.rsplit(" at ").next().unwrap_or(message).rsplitn(2, ':').last().unwrap_or(message).to_string()
}

/// Fuzzes the selected targets for `options.seconds` in all; returns what each did.
pub fn run(options: &Options) -> Result<Vec<TargetReport>, String> {
    let selected: Vec<&'static Target> = if options.targets.is_empty() {
        TARGETS.iter().collect()
    } else {
        options
            .targets
            .iter()
            .map(|n| {
                targets::find(n).ok_or_else(|| {
                    format!(
                        "unknown target `{n}`; targets: {}",
                        TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    let work = Workdir::new().map_err(|e| format!("cannot create a work directory: {e}"))?;
    let per_target = Duration::from_secs_f64(options.seconds.max(0.0) / selected.len().max(1) as f64);
    let _hook = HookGuard::install();
    lock(&CURRENT).findings_dir = options.findings_dir.clone();
    let stop = start_watchdog(options.timeout);
    let mut reports = Vec::new();
    for (k, target) in selected.iter().enumerate() {
        let mut rng = Rng::new(options.seed ^ fnv1a(target.name.as_bytes()) ^ (k as u64));
        reports.push(fuzz_target(target, &work, &mut rng, per_target, options));
    }
    stop.store(true, Ordering::Relaxed);
    let mut c = lock(&CURRENT);
    c.started = None;
    c.findings_dir = None;
    Ok(reports)
}

fn fuzz_target(
    target: &'static Target,
    work: &Workdir,
    rng: &mut Rng,
    budget: Duration,
    options: &Options,
) -> TargetReport {
    let start = Instant::now();
    let mut corpus: Vec<Vec<u8>> = (target.seeds)(&options.root);
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let seeds = corpus.len();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut by_site: HashMap<String, usize> = HashMap::new();
    let mut execs = 0u64;
    let mut next_report = Duration::from_secs(10);
    let mut input = Vec::new();
    // Seeds run unmutated first.
    let mut pending_seed = 0usize;
    loop {
        let done = match options.execs {
            Some(n) => execs >= n,
            None => start.elapsed() >= budget,
        };
        if done && pending_seed >= seeds {
            break;
        }
        input.clear();
        if pending_seed < seeds {
            input.extend_from_slice(&corpus[pending_seed]);
            pending_seed += 1;
        } else {
            // Kept inputs are favoured over the (large) seeds once there are some.
            let i = if corpus.len() > seeds && rng.below(3) != 0 {
                rng.range(seeds, corpus.len() - 1)
            } else {
                rng.below(corpus.len())
            };
            input.extend_from_slice(&corpus[i]);
            mutate::stacked(rng, &mut input, &corpus, target.mutate);
        }
        {
            let mut c = lock(&CURRENT);
            c.target = target.name;
            c.input.clear();
            c.input.extend_from_slice(&input);
            c.started = Some(Instant::now());
        }
        ALLOC_LIMIT.store(options.alloc_limit, Ordering::SeqCst);
        let result = exec_one(target, work, &input);
        ALLOC_LIMIT.store(usize::MAX, Ordering::SeqCst);
        lock(&CURRENT).started = None;
        execs += 1;
        match result {
            Ok(sig) => {
                if seen.insert(fnv1a(sig.as_bytes())) && pending_seed >= seeds {
                    // A new outcome: keep the input (when full, in place of a kept one).
                    if corpus.len() < MAX_CORPUS.max(seeds + 1) {
                        corpus.push(input.clone());
                    } else {
                        let i = rng.range(seeds, corpus.len() - 1);
                        corpus[i].clone_from(&input);
                    }
                }
            }
            Err(message) => {
                let site = panic_site(&message);
                if let Some(&i) = by_site.get(&site) {
                    findings[i].hits += 1;
                    continue;
                }
                let saved = options.findings_dir.as_deref().and_then(|d| save(d, target.name, &input));
                if options.verbose {
                    eprintln!("\nFINDING [{}] panic: {message}", target.name);
                    print_input(&input, saved.as_deref());
                }
                by_site.insert(site, findings.len());
                findings.push(Finding { target: target.name, message, input: input.clone(), saved, hits: 1 });
            }
        }
        if options.verbose && start.elapsed() >= next_report {
            eprintln!(
                "  [{}] {:.0}s: {execs} execs, corpus {}, {} outcomes, {} findings",
                target.name,
                start.elapsed().as_secs_f64(),
                corpus.len(),
                seen.len(),
                findings.len()
            );
            next_report += Duration::from_secs(10);
        }
    }
    TargetReport {
        target: target.name,
        execs,
        corpus: corpus.len(),
        outcomes: seen.len(),
        seconds: start.elapsed().as_secs_f64(),
        findings,
    }
}
