//! `sluicectl pipeline check`: offline load of every corpus program, and precise
//! errors with exit status 1.

mod common;
use common::corpus;
use std::process::Command;

fn ctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluicectl")).args(args).output().expect("run sluicectl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_corpus_program_checks_with_its_p4info() {
    let Some(c) = corpus() else { return };
    let mut n = 0;
    for dir in std::fs::read_dir(&c).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let json = f.unwrap().path();
            if json.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let stem = json.file_stem().unwrap().to_string_lossy().into_owned();
            let info = dir.join(format!("{stem}.p4info.txt"));
            let mut args = vec!["pipeline", "check", json.to_str().unwrap()];
            if info.exists() {
                args.push(info.to_str().unwrap());
            }
            let (code, out, err) = ctl(&args);
            assert_eq!(code, 0, "{}: {err}", json.display());
            assert!(out.contains("OK: the program loads"), "{out}");
            n += 1;
        }
    }
    assert!(n >= 13, "{n} programs checked");
}

#[test]
fn summary_lists_tables_with_match_kinds_and_sizes() {
    let Some(c) = corpus() else { return };
    let json = c.join("simple_router/simple_router.json");
    let (code, out, _) = ctl(&["pipeline", "check", json.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("ipv4_lpm [ipv4.dstAddr:lpm/32] size 1024"), "{out}");
    assert!(out.contains("parser states:"), "{out}");
    let (code, out, _) = ctl(&["pipeline", "check", json.to_str().unwrap(), "--json-output"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["tables"].as_array().unwrap().iter().any(|t| t["name"] == "ipv4_lpm" && t["keys"][0]["match"] == "lpm"));
}

#[test]
fn errors_exit_1_with_the_reason() {
    let Some(c) = corpus() else { return };
    let json = c.join("simple_router/simple_router.json");
    let wrong = c.join("onos_basic/basic.p4info.txt");
    let (code, _, err) = ctl(&["pipeline", "check", json.to_str().unwrap(), wrong.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("does not match"), "{err}");
    let (code, _, err) = ctl(&["pipeline", "check", "/nonexistent.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read BMv2 JSON /nonexistent.json"), "{err}");
    let (code, _, _) = ctl(&[]);
    assert_eq!(code, 2);
}
