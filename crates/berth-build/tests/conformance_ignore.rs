//! Upstream `moby/patternmatcher` cases, read from
//! `../shared/conformance/dockerignore/patternmatcher-cases.json`.

mod common;

use berth_build::ignore::{self, MatchType, Matcher};
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The package-level helpers: clean the path, "." never matches.
fn package_match(text: &str, patterns: &[String], legacy: bool) -> Result<bool, ()> {
    let pm = Matcher::new(patterns).map_err(|_| ())?;
    let file = ignore::clean(text);
    if file == "." {
        return Ok(false);
    }
    Ok(if legacy {
        pm.matches_legacy(&file)
    } else {
        pm.matches(&file)
    })
}

#[test]
fn patternmatcher_cases() {
    let Some(text) = common::read_shared("dockerignore/patternmatcher-cases.json") else {
        return;
    };
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut failures = Vec::new();
    let mut counts = Vec::new();

    // MatchesOrParentMatches on a matcher, one pattern and several.
    let mopm = &doc["matches_or_parent_matches"];
    let mut n = 0;
    for case in mopm["single"].as_array().unwrap() {
        n += 1;
        let pattern = case["pattern"].as_str().unwrap();
        let textp = case["text"].as_str().unwrap();
        let want = case["match"].as_bool().unwrap();
        let pm = Matcher::new(&[pattern]).unwrap();
        let got = pm.matches(textp);
        // The parent-result variant must agree, walking down from the top.
        let mut info = Default::default();
        let mut got2 = false;
        let comps: Vec<&str> = textp.split('/').collect();
        for k in 1..=comps.len() {
            let p = comps[..k].join("/");
            let (m, i) = pm.matches_with_parent(&p, &info);
            got2 = m;
            info = i;
        }
        if got != want {
            failures.push(format!(
                "single {pattern:?} {textp:?}: got {got}, want {want}"
            ));
        }
        if got2 != want && !textp.starts_with('/') && !textp.ends_with('/') {
            failures.push(format!(
                "single/parent-results {pattern:?} {textp:?}: got {got2}"
            ));
        }
    }
    for case in mopm["multi"].as_array().unwrap() {
        n += 1;
        let patterns = strings(&case["patterns"]);
        let textp = case["text"].as_str().unwrap();
        let want = case["match"].as_bool().unwrap();
        let got = Matcher::new(&patterns).unwrap().matches(textp);
        if got != want {
            failures.push(format!(
                "multi {patterns:?} {textp:?}: got {got}, want {want}"
            ));
        }
    }
    counts.push(("matches_or_parent_matches", n));

    // The deprecated Matches(text, [pattern]) with filepath.Match cases.
    let mut n = 0;
    for case in doc["matches_filepath_match"]["cases"].as_array().unwrap() {
        n += 1;
        let pattern = case["pattern"].as_str().unwrap().to_string();
        let textp = case["text"].as_str().unwrap();
        let want_err = case["error"].as_bool().unwrap();
        let want = case["match"].as_bool().unwrap();
        match package_match(textp, std::slice::from_ref(&pattern), true) {
            Err(()) if want_err => {}
            Ok(got) if !want_err && got == want => {}
            got => failures.push(format!(
                "filepath {pattern:?} {textp:?}: got {got:?}, want match={want} error={want_err}"
            )),
        }
    }
    counts.push(("matches_filepath_match", n));

    // Compilation: match type and regex text.
    let mut n = 0;
    for case in doc["compile"]["cases"].as_array().unwrap() {
        n += 1;
        let pattern = case["pattern"].as_str().unwrap();
        let want_type = match case["match_type"].as_str().unwrap() {
            "exactMatch" => MatchType::Exact,
            "prefixMatch" => MatchType::Prefix,
            "suffixMatch" => MatchType::Suffix,
            "regexpMatch" => MatchType::Regex,
            other => panic!("unknown match type {other}"),
        };
        let want_re = case["regexp"].as_str().unwrap();
        let pm = Matcher::new(&[pattern]).unwrap();
        let p = &pm.patterns()[0];
        if p.match_type() != want_type || p.go_regex() != want_re {
            failures.push(format!(
                "compile {pattern:?}: got {:?} {:?}, want {want_type:?} {want_re:?}",
                p.match_type(),
                p.go_regex()
            ));
        }
    }
    counts.push(("compile", n));

    // The package-level MatchesOrParentMatches.
    let mut n = 0;
    for case in doc["simple_tests"].as_array().unwrap() {
        n += 1;
        let patterns = strings(&case["patterns"]);
        let textp = case["text"].as_str().unwrap();
        let want_err = case["error"].as_bool().unwrap_or(false);
        let want = case["match"].as_bool().unwrap_or(false);
        match package_match(textp, &patterns, false) {
            Err(()) if want_err => {}
            Ok(got) if !want_err && got == want => {}
            got => failures.push(format!(
                "simple {patterns:?} {textp:?}: got {got:?}, want match={want} error={want_err}"
            )),
        }
    }
    counts.push(("simple_tests", n));

    // Reading an ignore file.
    let rf = &doc["ignorefile_readall"];
    let got = ignore::read_patterns(rf["input"].as_str().unwrap());
    let want = strings(&rf["expected"]);
    if got != want {
        failures.push(format!("ignorefile: got {got:?}, want {want:?}"));
    }
    counts.push(("ignorefile_readall", 1));

    let total: usize = counts.iter().map(|c| c.1).sum();
    println!(
        "patternmatcher-cases.json: {}/{total} passed {counts:?}",
        total - failures.len().min(total)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
