//! `sluicectl`, the Sluice command-line tool. The program lives in `sluice_control::ctl`.

fn main() -> std::process::ExitCode {
    sluice_control::ctl::main(sluice_control::BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        git_rev: env!("SLUICE_GIT_REV"),
    })
}
