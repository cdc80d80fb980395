//! A stand-in for sysbox-mgr in the node agent's end-to-end tests: a real process that takes
//! sysbox-mgr's command line and keeps it in `/proc/<pid>/cmdline`, writes its pid file once it
//! runs and removes it on SIGTERM, as sysbox-mgr does (`Start` writes `/run/sysbox/sysmgr.pid`,
//! `Stop` destroys it). It serves nothing.
//!
//! The tests copy it to `<host-root>/usr/bin/sysbox-mgr`, so the kernel names the process
//! `sysbox-mgr` (its `comm`) and its executable is a file called `sysbox-mgr`:
//!
//!     STAND_IN_PID_FILE=<host-root>/run/sysbox/sysmgr.pid <host-root>/usr/bin/sysbox-mgr --relaxed-read-only
//!
//! It exits when its parent does (PR_SET_PDEATHSIG), so a test that dies leaves none behind.

use std::path::PathBuf;

fn main() {
    // SAFETY: prctl with PR_SET_PDEATHSIG and a signal number has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    let pid_file = std::env::var_os("STAND_IN_PID_FILE").map(PathBuf::from);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        if let Some(path) = &pid_file {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).expect("create the pid file's folder");
            }
            std::fs::write(path, format!("{}\n", std::process::id())).expect("write the pid file");
        }
        term.recv().await;
        if let Some(path) = &pid_file {
            let _ = std::fs::remove_file(path);
        }
    });
}
