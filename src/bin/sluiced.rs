//! `sluiced`, the Sluice daemon. The program lives in `sluice_control::daemon`.

fn main() -> std::process::ExitCode {
    sluice_control::daemon::main(sluice_control::BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        git_rev: env!("SLUICE_GIT_REV"),
    })
}
