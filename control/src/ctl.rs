//! `sluicectl`: the operator's command-line tool.
//!
//! Today it works offline: `sluicectl pipeline check <bmv2.json> [<p4info>] [--entries
//! <file>] [--json]` loads and compiles a program without a running daemon and
//! prints a summary (tables with match kinds and sizes, actions, externs, parser
//! states) or the precise error. Exit status: 0 loaded, 1 refused, 2 bad usage.
//! Commands that talk to a running `sluiced` come with the management API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::BuildInfo;

/// Command-line arguments of `sluicectl`.
#[derive(Debug, Parser)]
#[command(name = "sluicectl", about = "Sluice command-line tool", disable_version_flag = true)]
pub struct Args {
    /// Print the version and exit.
    #[arg(long)]
    pub version: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// P4 programs.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
}

/// `sluicectl pipeline ...`
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Load and compile a program offline; print a summary or the precise error.
    Check {
        /// BMv2 JSON (p4c-bm2-ss output).
        json: PathBuf,
        /// P4Info (text format), cross-checked against the JSON.
        p4info: Option<PathBuf>,
        /// Table entries (simple_switch_CLI syntax) to apply as a check.
        #[arg(long)]
        entries: Option<PathBuf>,
        /// Print a JSON object instead of text.
        #[arg(long)]
        json_output: bool,
    },
}

/// Run `sluicectl`.
pub fn main(build: BuildInfo) -> ExitCode {
    let args = Args::parse();
    if args.version {
        println!("sluicectl {} (git {})", build.version, build.git_rev);
        return ExitCode::SUCCESS;
    }
    match args.command {
        None => {
            eprintln!("sluicectl: no command given; try `sluicectl --help`");
            ExitCode::from(2)
        }
        Some(Command::Pipeline(PipelineCommand::Check { json, p4info, entries, json_output })) => {
            match crate::pipeline::load(&json, p4info.as_deref(), entries.as_deref()) {
                Ok(l) => {
                    if json_output {
                        let ir = &l.ir;
                        let v = serde_json::json!({
                            "ok": true,
                            "program": ir.name,
                            "tables": ir.tables.iter().enumerate().map(|(i, t)| serde_json::json!({
                                "name": t.name,
                                "keys": t.keys.iter().map(|k| serde_json::json!({"name": k.name, "match": k.kind.name(), "width": k.width})).collect::<Vec<_>>(),
                                "size": t.max_size,
                                "entries": l.rt.tables[i].len(),
                                "actions": t.actions.iter().map(|a| ir.actions[*a as usize].name.clone()).collect::<Vec<_>>(),
                            })).collect::<Vec<_>>(),
                            "parser_states": ir.states.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                            "counters": ir.counters.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                            "meters": ir.meters.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                            "registers": ir.registers.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                            "action_profiles": ir.profiles.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                            "digests": ir.learn_lists.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                        });
                        println!("{}", serde_json::to_string_pretty(&v).expect("summary serialises"));
                    } else {
                        print!("{}", crate::pipeline::summary(&l));
                        println!("OK: the program loads");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    if json_output {
                        println!("{}", serde_json::json!({"ok": false, "error": e}));
                    } else {
                        eprintln!("sluicectl: pipeline check failed: {e}");
                    }
                    ExitCode::from(1)
                }
            }
        }
    }
}
