//! `gust-init`: environments' supervisors (`gust __sandbox-init`), as a binary of its
//! own. Every environment and spare starts one, and a small executable starts in a
//! fraction of the server's time (whose ~60,000 relocations are applied at every exec).
//! The server uses it when it sits beside the `gust` binary and speaks the same protocol
//! (`gust_sandbox::isolate::init_program`), and runs itself otherwise.

fn main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(gust_sandbox::isolate::INIT_ARG)) {
        eprintln!("gust-init: started by the gust server for its environments only");
        std::process::exit(2);
    }
    let rest: Vec<_> = args.collect();
    std::process::exit(gust_sandbox::isolate::init_main(&rest));
}
