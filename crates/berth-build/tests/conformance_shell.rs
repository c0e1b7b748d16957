//! Upstream word-expansion cases (`envVarTest`, `wordsTest`) from
//! BuildKit's `frontend/dockerfile/shell`, read from `../shared`.

mod common;

use berth_build::shell::Lex;

#[test]
fn env_var_test() {
    let Some(text) = common::read_shared("dockerfile-shell/envVarTest") else {
        return;
    };
    let env: Vec<String> = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let lex = Lex::new('\\');
    let (mut run, mut failures) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(parts.len(), 3, "line {}: {line}", n + 1);
        let (platform, source, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        run += 1;
        let got = lex.process_word(source, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(w), e) => e != "error" && w == e,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {source:?} -> {got:?}, want {expected:?}",
                n + 1
            ));
        }
    }
    println!("envVarTest: {}/{run} passed", run - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn words_test() {
    let Some(text) = common::read_shared("dockerfile-shell/wordsTest") else {
        return;
    };
    let lex = Lex::new('\\');
    let mut env: Vec<String> = Vec::new();
    let (mut run, mut failures) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            env.push(rest.trim_start_matches(' ').to_string());
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 2, "line {}: {line}", n + 1);
        let test = parts[0].trim();
        let expected: Vec<&str> = parts[1].trim_start_matches(' ').split(',').collect();
        run += 1;
        let got = lex
            .process_words(test, &env)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!(
                "line {}: {test:?} -> {got:?}, want {expected:?}",
                n + 1
            ));
        }
    }
    println!("wordsTest: {}/{run} passed", run - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
