//! A library loaded while traced: on a tokio current-thread runtime,
//! `--tasks N` tasks (default 2) each run job -> step -> YieldNow(`--yields K`,
//! default 3); then, between two `block_on`s, the program `dlopen`s
//! libz.so.1 (RTLD_NOW; libm.so.6 if there is no zlib), which it does not
//! link, looks up `zlibVersion` (`cos`) and calls it; then the tasks run again.
//!
//! Why the counts are exact: each task is polled once per self-wake, so each
//! function is polled N(K+1) times per round, 2N(K+1) in all; the library's
//! code is not in the ground truth. stdout does not name the library or its
//! version (stderr does), so it is the same on every machine.

use std::ffi::{c_char, CStr};
use targets::{Args, Counts, GroundTruth, YieldNow, YIELD_NOW_POLL};

const PROGRAM: &str = "dlopen_tokio";

#[inline(never)]
async fn job(id: u64, yields: u64) -> u64 {
    step(yields).await + id
}

#[inline(never)]
async fn step(yields: u64) -> u64 {
    YieldNow::new(yields).await;
    1
}

/// One round: `tasks` tasks running `job`, awaited in order.
async fn round(tasks: u64, yields: u64) {
    let handles: Vec<_> = (0..tasks).map(|id| tokio::spawn(job(id, yields))).collect();
    let mut sum = 0;
    for h in handles {
        sum += h.await.expect("job failed");
    }
    assert_eq!(sum, tasks * (tasks + 1) / 2); // the ids, plus 1 from each job
}

/// dlopens zlib (else libm), calls one function of it and checks the result;
/// returns a description for stderr.
fn call_dlopened() -> Result<String, String> {
    // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is called
    // with the C signature its library declares.
    unsafe {
        let zlib = libc::dlopen(c"libz.so.1".as_ptr(), libc::RTLD_NOW);
        if !zlib.is_null() {
            let f = libc::dlsym(zlib, c"zlibVersion".as_ptr());
            if f.is_null() {
                return Err("libz.so.1 has no zlibVersion".into());
            }
            let zlib_version: extern "C" fn() -> *const c_char = std::mem::transmute(f);
            let v = CStr::from_ptr(zlib_version()).to_string_lossy();
            return match v.starts_with("1.") {
                true => Ok(format!("libz.so.1: zlibVersion() = {v}")),
                false => Err(format!("zlibVersion() = '{v}', want 1.x")),
            };
        }
        let libm = libc::dlopen(c"libm.so.6".as_ptr(), libc::RTLD_NOW);
        if libm.is_null() {
            return Err("cannot dlopen libz.so.1 or libm.so.6".into());
        }
        let f = libc::dlsym(libm, c"cos".as_ptr());
        if f.is_null() {
            return Err("libm.so.6 has no cos".into());
        }
        let cos: extern "C" fn(f64) -> f64 = std::mem::transmute(f);
        match cos(std::hint::black_box(0.0)) {
            1.0 => Ok("libm.so.6: cos(0) = 1".into()),
            x => Err(format!("cos(0) = {x}, want 1")),
        }
    }
}

fn ground_truth(args: &Args) -> GroundTruth {
    let (n, k) = (args.tasks, args.yields);
    let mut gt = GroundTruth::new(PROGRAM);
    gt.param("tasks", n).param("yields", k);
    for f in ["job", "step"] {
        gt.function(
            &format!("{PROGRAM}::{f}::{{{{closure}}}}"),
            Counts::yielding(2 * n, k),
        );
    }
    gt.function(YIELD_NOW_POLL, Counts::yielding(2 * n, k));
    gt.line(&format!("{PROGRAM}: round 1: {n} tasks x {k} yields done"))
        .line(&format!("{PROGRAM}: called a function of a dlopened library"))
        .line(&format!("{PROGRAM}: round 2: {n} tasks x {k} yields done"));
    gt
}

fn main() {
    let args = Args::parse(2);
    let gt = ground_truth(&args);
    if args.ground_truth {
        println!("{}", gt.to_json());
        return;
    }
    let (n, k) = (args.tasks, args.yields);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(round(n, k));
    println!("{PROGRAM}: round 1: {n} tasks x {k} yields done");
    match call_dlopened() {
        Ok(what) => eprintln!("{PROGRAM}: {what}"),
        Err(e) => {
            eprintln!("{PROGRAM}: {e}");
            std::process::exit(1);
        }
    }
    println!("{PROGRAM}: called a function of a dlopened library");
    rt.block_on(round(n, k));
    println!("{PROGRAM}: round 2: {n} tasks x {k} yields done");
}
