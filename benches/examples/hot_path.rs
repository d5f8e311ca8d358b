//! Runs one hot operation of tenure on memory, loaded as the peers benchmark loads
//! it, many times over, for a profiler to watch; prints the time per operation.
//!
//! ```text
//! cargo build --release -p tenure-benches --example hot_path
//! perf record -g target/release/examples/hot_path introspect 5000000
//! ```
//!
//! The operation is `introspect`, `authorize` or `refresh`; the count defaults to
//! a million.

use tenure_benches::OrDie;
use tenure_benches::peers::{GRANTS, Op, Tenure};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let op = args
        .first()
        .and_then(|name| Op::named(name))
        .or_die("an operation: introspect, authorize or refresh");
    let count: u64 = args
        .get(1)
        .map(|n| n.parse().or_die("a count"))
        .unwrap_or(1_000_000);
    let mut tenure = Tenure::open(GRANTS);
    let took = tenure.run(op, count);
    println!(
        "{}: {:.0} ns per operation over {count}",
        op.name(),
        took.as_nanos() as f64 / count as f64
    );
}
