//! A Rust hello-world built like etagstore (same profile, same static
//! linking): the start-up floor the benchmarks compare etagstore with.

fn main() {
    println!("hello");
}
