//! A short run of every benchmark pair, one line per operation:
//! `name engine_ns raw_ns ratio`, then the targets.
//!
//! ```text
//! cargo run --release -p tenure-benches --bin summary [-- [--quick] [FILTER]]
//! ```
//!
//! Each pair runs in a fresh process of its own, timed in alternating rounds of
//! the engine and the raw store, each round long enough to time reliably; the
//! figures are the medians of the rounds, in nanoseconds per operation. A FILTER
//! keeps the cases whose names contain it (and the memory and disk measurements
//! when it is `bytes`; only the after-rotation ones when it is `bytes/rotated`).
//!
//! The after-rotation measurements rotate grants a thousand times each through the
//! engine, the way a running server does (a round an access-token lifetime apart,
//! the expired tokens swept before each): 5,000 grants on memory and 300 on sled,
//! about a minute and a half in all.
//!
//! Every backend lists pages in zones of 10k, 100k and 1M grants. Loading a million
//! grants into sled, redb or PostgreSQL takes minutes; `--quick` leaves that zone
//! out for them.
//!
//! A FILTER of `peers` runs only tenure on memory against oxide-auth's `TokenMap`
//! and the floor (introspect, authorize, refresh; see `tenure_benches::peers`).
//!
//! A FILTER of `durable` runs only sled and redb side by side: authorizations per
//! second with 1, 4 and 16 writers (group commit), and the disk bytes per grant of
//! 100,000 grants over a store's life (created; a quarter revoked and a quarter
//! expired and swept; that half deleted; as many created again). The PostgreSQL cases run only when
//! `TENURE_BENCH_POSTGRES_URL` or `TENURE_TEST_POSTGRES_URL` names a database
//! (`scripts/with-postgres.sh target/release/summary` starts a throwaway one).

use std::process::Command;
use std::time::Duration;

use tenure_benches::durable::{self, Durable};
use tenure_benches::memory::Memory;
use tenure_benches::peers::{self, Op};
use tenure_benches::rss::{self, Fill, Store};
use tenure_benches::{Bench, Case, OrDie, Sizes, cases, memory, postgres, redb, sled};

/// Rounds per side.
const ROUNDS: usize = 5;

/// Grants in the memory measurement.
const MEMORY_GRANTS: u64 = 1_000_000;

/// Grants in the disk measurement.
const DISK_GRANTS: u64 = 100_000;

/// How long each group-commit measurement authorizes.
const GROUP_COMMIT_TIME: Duration = Duration::from_secs(3);

/// Writers in the group-commit measurements.
const GROUP_COMMIT_WRITERS: [u64; 3] = [1, 4, 16];

/// Grants in the memory measurement after rotations (each rotated 1,000 times).
const ROTATED_MEMORY_GRANTS: u64 = 5_000;

/// Grants in the disk measurement after rotations (each rotated 1,000 times).
const ROTATED_DISK_GRANTS: u64 = 300;

/// Nanoseconds per operation of one side: the median of the rounds.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Iterations that take at least `floor` on the engine side (the slower one).
fn calibrate(bench: &mut dyn Bench, floor: Duration) -> u64 {
    let mut iters = 1;
    loop {
        if bench.engine(iters) >= floor || iters >= 1 << 24 {
            return iters;
        }
        iters *= 2;
    }
}

/// Times one pair; `(engine_ns, raw_ns)`.
fn measure(case: Case) -> (f64, f64) {
    let mut bench = (case.make)();
    let iters = calibrate(&mut *bench, Duration::from_millis(100));
    bench.raw(iters);
    let per_op = |d: Duration| d.as_nanos() as f64 / iters as f64;
    let (mut engine, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        engine.push(per_op(bench.engine(iters)));
        raw.push(per_op(bench.raw(iters)));
    }
    (median(engine), median(raw))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--bytes-per-grant") {
        // A child process: one memory measurement.
        let store = match args.get(1).map(String::as_str) {
            Some("raw") => Store::Raw,
            _ => Store::Memory,
        };
        let fill = match args.get(2).map(String::as_str) {
            Some("authorized") => Fill::Authorized,
            _ => Fill::Grants,
        };
        println!("{}", rss::bytes_per_grant(store, fill, MEMORY_GRANTS));
        return;
    }
    if args.first().map(String::as_str) == Some("--disk-bytes-per-grant") {
        // A child process: one disk measurement.
        let raw = args.get(1).map(String::as_str) == Some("raw");
        let fill = match args.get(2).map(String::as_str) {
            Some("authorized") => Fill::Authorized,
            _ => Fill::Grants,
        };
        println!("{}", rss::disk_bytes_per_grant(raw, fill, DISK_GRANTS));
        return;
    }
    if args.first().map(String::as_str) == Some("--rotated-bytes-per-grant") {
        // A child process: memory after rotations, `fresh rotated`.
        let n = grants_arg(&args).unwrap_or(ROTATED_MEMORY_GRANTS);
        let (fresh, rotated) = rss::rotated_bytes_per_grant(n, rss::ROTATIONS);
        println!("{fresh} {rotated}");
        return;
    }
    if args.first().map(String::as_str) == Some("--rotated-disk-bytes-per-grant") {
        // A child process: sled's disk after rotations, `fresh rotated` for its
        // files and then for its live records.
        // `--rotated-disk-bytes-per-grant [GRANTS [ROTATIONS]]`.
        let n = grants_arg(&args).unwrap_or(ROTATED_DISK_GRANTS);
        let rotations = args
            .get(2)
            .map(|r| r.parse().or_die("a rotation count"))
            .unwrap_or(rss::ROTATIONS);
        let d = rss::rotated_disk_bytes_per_grant(n, rotations);
        println!(
            "{} {} {} {}",
            d.fresh, d.rotated, d.live_fresh, d.live_rotated
        );
        return;
    }
    if args.first().map(String::as_str) == Some("--group-commit") {
        // A child process: authorizations per second, `--group-commit KIND WRITERS`.
        let kind = durable_arg(&args);
        let writers = args
            .get(2)
            .map(|n| n.parse().or_die("a writer count"))
            .or_die("a writer count");
        println!(
            "{}",
            durable::group_commit(kind, writers, GROUP_COMMIT_TIME)
        );
        return;
    }
    if args.first().map(String::as_str) == Some("--lifecycle") {
        // A child process: bytes per grant over a store's life, `--lifecycle KIND [N]`.
        let kind = durable_arg(&args);
        let n = args
            .get(2)
            .map_or(DISK_GRANTS, |n| n.parse().or_die("a grant count"));
        let l = durable::lifecycle(kind, n);
        println!("{} {} {} {}", l.created, l.swept, l.deleted, l.refilled);
        return;
    }
    if args.first().map(String::as_str) == Some("--peers") {
        // A child process: one operation on three sides, `tenure peer floor`.
        let op = args
            .get(1)
            .and_then(|name| Op::named(name))
            .or_die("an operation: introspect, authorize or refresh");
        let (tenure, peer, floor) =
            peers::measure(op, peers::GRANTS, ROUNDS, Duration::from_millis(100));
        println!("{tenure} {peer} {floor}");
        return;
    }
    if args.first().map(String::as_str) == Some("--case") {
        // A child process: one pair, printed as `engine_ns raw_ns`.
        let name = args.get(1).cloned().unwrap_or_default();
        let case = all_cases(&Sizes::full())
            .into_iter()
            .find(|c| c.name == name)
            .or_die("no such case");
        let (engine, raw) = measure(case);
        println!("{engine} {raw}");
        return;
    }
    if args.first().map(String::as_str) == Some("--scaling") {
        // A child process: introspection on two threads against one.
        let (engine, raw) = cases::introspect_scaling::<Memory>(2, 9, Duration::from_millis(100));
        println!("{engine} {raw}");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = all_cases(&Sizes::full())
        .into_iter()
        .map(|c| c.name)
        .filter(|n| n.contains(&filter))
        .filter(|n| !quick || !is_durable(n) || !n.ends_with("/n=1000000"))
        .collect();

    println!(
        "{:<40} {:>12} {:>12} {:>7}",
        "name", "engine_ns", "raw_ns", "ratio"
    );
    let mut results = Vec::new();
    for name in names {
        // Each pair in a fresh process, so that no pair runs in a heap another
        // pair's fixtures have left behind.
        let figures = child_line(&["--case", &name]);
        let mut figures = figures
            .split_whitespace()
            .map(|f| f.parse::<f64>().or_die("reading a pair's figures"));
        let (engine, raw) = (
            figures.next().or_die("engine figure"),
            figures.next().or_die("raw figure"),
        );
        println!(
            "{name:<40} {engine:>12.0} {raw:>12.0} {:>7.2}",
            engine / raw
        );
        results.push((name, engine, raw));
    }

    let engine_ns = |name: &str| {
        results
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, e, _)| *e)
    };
    let ratio = |name: &str| {
        results
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, e, r)| e / r)
    };
    let raw_ns = |name: &str| {
        results
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, r)| *r)
    };
    println!();
    println!(
        "{:<52} {:>8} {:>8} {:>8}",
        "target", "engine", "raw", "goal"
    );
    let report = |what: &str, engine: Option<f64>, raw: Option<f64>, goal: &str| {
        if let Some(e) = engine {
            let raw = raw.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
            println!("{what:<52} {e:>8.2} {raw:>8} {goal:>8}");
        }
    };
    report(
        "introspect, memory: engine / raw",
        ratio("memory/introspect"),
        None,
        "<= 1.5",
    );
    report(
        "introspect, sled: engine / raw",
        ratio("sled/introspect"),
        None,
        "<= 1.3",
    );
    report(
        "introspect, redb: engine / raw",
        ratio("redb/introspect"),
        None,
        "<= 1.3",
    );
    if filter.is_empty() || "memory/introspect/2-threads".contains(&filter) {
        let line = child_line(&["--scaling"]);
        let mut figures = line
            .split_whitespace()
            .map(|f| f.parse::<f64>().or_die("reading the scaling figures"));
        report(
            "introspect, memory: 2 threads / 1 thread",
            figures.next(),
            figures.next(),
            ">= 1.7",
        );
    }
    // The same quotient of two cases, for the engine and for the raw store.
    let scaling = |what: &str, big: &str, small: &str, goal: &str| {
        let of = |ns: &dyn Fn(&str) -> Option<f64>| ns(big).zip(ns(small)).map(|(b, s)| b / s);
        report(what, of(&engine_ns), of(&raw_ns), goal);
    };
    for backend in ["memory", "sled", "redb", "postgres"] {
        scaling(
            &format!("refresh, {backend}: after 1,000 rotations / fresh"),
            &format!("{backend}/refresh/history=1000"),
            &format!("{backend}/refresh"),
            "<= 1.2",
        );
        scaling(
            &format!("revoke, {backend}: k=100 / k=1"),
            &format!("{backend}/revoke/k=100"),
            &format!("{backend}/revoke/k=1"),
            "<= 1.5",
        );
        scaling(
            &format!("page of 50, {backend}: n=1M / n=10k"),
            &format!("{backend}/page/n=1000000"),
            &format!("{backend}/page/n=10000"),
            "<= 1.5",
        );
        scaling(
            &format!("sweep of 100, {backend}: n=100k / n=10k"),
            &format!("{backend}/sweep/k=100,n=100000"),
            &format!("{backend}/sweep/k=100,n=10000"),
            "~1",
        );
        scaling(
            &format!("sweep, {backend}: k=100 / k=10"),
            &format!("{backend}/sweep/k=100,n=10000"),
            &format!("{backend}/sweep/k=10,n=10000"),
            "~10",
        );
    }
    let rotated = (filter.is_empty() || filter == "bytes" || filter == "bytes/rotated")
        .then(rotated_bytes_per_grant);
    if let Some(r) = &rotated {
        report(
            "bytes, memory resident: 1,000 rotations / fresh",
            Some(r.memory.1 / r.memory.0),
            None,
            "<= 1.5",
        );
        report(
            "bytes, sled on disk: 1,000 rotations / fresh",
            Some(r.disk.1 / r.disk.0),
            None,
            "<= 1.5",
        );
        report(
            "bytes, sled live records: 1,000 rotations / fresh",
            Some(r.live.1 / r.live.0),
            None,
            "-",
        );
    }
    if filter.is_empty() || filter == "bytes" {
        bytes_per_grant();
    }
    if filter.is_empty() || filter == "durable" {
        sled_and_redb();
    }
    if filter.is_empty() || filter == "peers" {
        against_peers();
    }
    if let Some(r) = &rotated {
        println!();
        println!(
            "{:<64} {:>7} {:>7} {:>6}",
            "bytes per grant, fresh and after 1,000 rotations", "fresh", "rotated", "ratio"
        );
        let line = |what: &str, (fresh, rotated): (f64, f64)| {
            println!(
                "{what:<64} {fresh:>7.0} {rotated:>7.0} {:>6.2}",
                rotated / fresh
            );
        };
        line(
            &format!("memory, resident, {ROTATED_MEMORY_GRANTS} grants (goal <= 1.5)"),
            r.memory,
        );
        line(
            &format!("sled, on disk, {ROTATED_DISK_GRANTS} grants (goal <= 1.5)"),
            r.disk,
        );
        line(
            &format!("sled, live records (keys + values), {ROTATED_DISK_GRANTS} grants"),
            r.live,
        );
        let mb = |per_grant: f64| per_grant * ROTATED_DISK_GRANTS as f64 / 1e6;
        println!(
            "  Rotated through the engine as a running server rotates them: a round of\n  \
             rotations an access-token lifetime + 1 s apart, 32 at a time, sweep_expired\n  \
             before each round pruning the expired access tokens; sled with its default\n  \
             settings. Sled's files grew by {:.1} MB fresh and {:.1} MB rotated for\n  \
             {:.2} MB and {:.2} MB of live records: the rest is garbage in sled's log,\n  \
             which grows with the writes more than with the records.",
            mb(r.disk.0),
            mb(r.disk.1),
            mb(r.live.0),
            mb(r.live.1),
        );
    }
}

/// Bytes per grant, fresh and after 1,000 rotations: `(fresh, rotated)`.
struct Rotated {
    /// Resident, memory backend.
    memory: (f64, f64),
    /// Sled's files.
    disk: (f64, f64),
    /// Sled's live records.
    live: (f64, f64),
}

/// Measures [`Rotated`], each in a child process.
fn rotated_bytes_per_grant() -> Rotated {
    let figures = |flag: &str| -> Vec<f64> {
        child_line(&[flag])
            .split_whitespace()
            .map(|f| f.parse::<f64>().or_die("reading a measurement"))
            .collect()
    };
    let pair = |figures: &[f64], at: usize| {
        (
            *figures.get(at).or_die("a fresh figure"),
            *figures.get(at + 1).or_die("a rotated figure"),
        )
    };
    let memory = figures("--rotated-bytes-per-grant");
    let disk = figures("--rotated-disk-bytes-per-grant");
    Rotated {
        memory: pair(&memory, 0),
        disk: pair(&disk, 0),
        live: pair(&disk, 2),
    }
}

/// The grant count a measurement child was given after its flag, if any.
fn grants_arg(args: &[String]) -> Option<u64> {
    args.get(1).map(|n| n.parse().or_die("a grant count"))
}

/// The store a measurement child was given after its flag.
fn durable_arg(args: &[String]) -> Durable {
    args.get(1)
        .and_then(|name| Durable::named(name))
        .or_die("a store: sled or redb")
}

/// sled and redb side by side: group-commit throughput and disk use over a
/// store's life, each measurement in a child process of its own.
fn sled_and_redb() {
    println!();
    println!(
        "{:<52} {:>10} {:>10} {:>7}",
        "authorizations per second (group commit)", "sled", "redb", "redb/sled"
    );
    for writers in GROUP_COMMIT_WRITERS {
        let rate = |kind: Durable| child(&["--group-commit", kind.name(), &writers.to_string()]);
        let (sled, redb) = (rate(Durable::Sled), rate(Durable::Redb));
        println!(
            "{:<52} {sled:>10.0} {redb:>10.0} {:>7.2}",
            format!("{writers} writer{}", if writers == 1 { "" } else { "s" }),
            redb / sled
        );
    }
    let lifecycle = |kind: Durable| -> Vec<f64> {
        child_line(&["--lifecycle", kind.name()])
            .split_whitespace()
            .map(|f| f.parse::<f64>().or_die("reading a measurement"))
            .collect()
    };
    let (sled, redb) = (lifecycle(Durable::Sled), lifecycle(Durable::Redb));
    println!();
    println!(
        "{:<52} {:>10} {:>10} {:>7}",
        "disk bytes per grant created, over a store's life", "sled", "redb", "redb/sled"
    );
    let stages = [
        format!("{DISK_GRANTS} grants authorized"),
        "a quarter revoked, a quarter expired, swept".to_owned(),
        "that half deleted".to_owned(),
        "as many authorized again".to_owned(),
    ];
    for (at, stage) in stages.iter().enumerate() {
        let (s, r) = (
            *sled.get(at).or_die("a sled figure"),
            *redb.get(at).or_die("a redb figure"),
        );
        println!("{stage:<52} {s:>10.0} {r:>10.0} {:>7.2}", r / s);
    }
    println!(
        "  Through the engine, 16 writers at once, each store with its default\n  \
         settings (immediate durability), flushed before each figure."
    );
}

/// tenure on memory against oxide-auth's `TokenMap` and the floor, each operation
/// in a child process of its own.
fn against_peers() {
    println!();
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>11} {:>12}",
        "ns per operation", "tenure", "oxide-auth", "floor", "tenure/peer", "tenure/floor"
    );
    for op in Op::ALL {
        let figures: Vec<f64> = child_line(&["--peers", op.name()])
            .split_whitespace()
            .map(|f| f.parse::<f64>().or_die("reading a measurement"))
            .collect();
        let at = |i: usize| *figures.get(i).or_die("a peers figure");
        let (tenure, peer, floor) = (at(0), at(1), at(2));
        println!(
            "{:<24} {tenure:>10.0} {peer:>10.0} {floor:>10.0} {:>11.2} {:>12.2}",
            op.name(),
            tenure / peer,
            tenure / floor
        );
    }
    println!(
        "  {} live grants on each side, one thread, alternating rounds; tenure on the\n  \
         memory backend; the floor is SHA-256 of a token and a HashMap probe (see\n  \
         tenure_benches::peers).",
        peers::GRANTS
    );
}

/// Every case of every backend (PostgreSQL's when a database is named).
fn all_cases(sizes: &Sizes) -> Vec<Case> {
    memory::cases(sizes)
        .into_iter()
        .chain(sled::cases(sizes))
        .chain(redb::cases(sizes))
        .chain(postgres::cases(sizes))
        .collect()
}

/// Whether a case runs on a durable backend.
fn is_durable(name: &str) -> bool {
    name.starts_with("sled/") || name.starts_with("redb/") || name.starts_with("postgres/")
}

/// Runs this program with `args` in a child process and returns what it printed;
/// a failed child fails the summary with its error output.
fn child_line(args: &[&str]) -> String {
    let exe = std::env::current_exe().or_die("finding this program");
    let out = Command::new(exe)
        .args(args)
        .output()
        .or_die("running a measurement");
    if !out.status.success() {
        panic!(
            "measurement {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs one measurement in a child process of this program and reads its figure.
fn child(args: &[&str]) -> f64 {
    child_line(args).parse().or_die("reading a measurement")
}

/// Resident bytes per grant of the memory backend at a million grants, and disk
/// bytes per grant of sled, each against its raw twin.
fn bytes_per_grant() {
    println!();
    println!(
        "{:<56} {:>9} {:>9} {:>7}",
        "bytes per grant", "engine", "raw", "ratio"
    );
    let line = |what: &str, engine: f64, raw: f64| {
        println!("{what:<56} {engine:>9.0} {raw:>9.0} {:>7.2}", engine / raw);
    };
    for (fill, what) in [
        ("grants", "grants with their indexes (goal <= 600)"),
        ("authorized", "grants + 2 tokens + history each"),
    ] {
        line(
            &format!("memory, resident, 1M {what}"),
            child(&["--bytes-per-grant", "memory", fill]),
            child(&["--bytes-per-grant", "raw", fill]),
        );
    }
    for (fill, what) in [
        ("grants", "grants with their indexes"),
        ("authorized", "grants + 2 tokens + history each"),
    ] {
        line(
            &format!("sled, on disk, 100k {what}"),
            child(&["--disk-bytes-per-grant", "engine", fill]),
            child(&["--disk-bytes-per-grant", "raw", fill]),
        );
    }
}
