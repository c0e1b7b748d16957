//! Whole-file parser tests.

use std::time::Duration;

use super::*;
use crate::instructions::*;

fn kinds(df: &Dockerfile, stage: usize) -> Vec<&InstructionKind> {
    df.stages[stage]
        .instructions
        .iter()
        .map(|i| &i.kind)
        .collect()
}

#[test]
fn stages_and_from() {
    let df = parse(
        "# syntax=docker/dockerfile:1\nARG BASE=alpine\nARG A B=2\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\nRUN make\nfrom scratch\nCOPY --from=build /out /\n",
    )
    .unwrap();
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.global_args.len(), 2);
    let InstructionKind::Arg(decls) = &df.global_args[1].kind else {
        panic!()
    };
    assert_eq!(decls.len(), 2);
    assert_eq!(decls[1].default.as_deref(), Some("2"));
    assert_eq!(df.stages.len(), 2);
    let s0 = &df.stages[0];
    assert_eq!(s0.name.as_deref(), Some("build"));
    assert_eq!(s0.base.image, "${BASE}");
    assert_eq!(s0.base.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s0.line, 4);
    assert!(df.stages[1].base.is_scratch());
    assert_eq!(df.stages[1].instructions[0].line, 7);
}

#[test]
fn run_forms_and_flags() {
    let df = parse(
        "FROM a\nRUN [\"echo\", \"hi\"]\nRUN --mount=type=cache,target=/c --network=none echo $X\nRUN --network=host [\"x\"]\n",
    )
    .unwrap();
    let k = kinds(&df, 0);
    let InstructionKind::Run(r0) = k[0] else {
        panic!()
    };
    assert_eq!(
        r0.command,
        CommandLine::Exec(vec!["echo".into(), "hi".into()])
    );
    let InstructionKind::Run(r1) = k[1] else {
        panic!()
    };
    assert_eq!(r1.command, CommandLine::Shell("echo $X".into()));
    assert_eq!(r1.network, NetworkMode::None);
    assert_eq!(r1.mounts[0].kind, MountType::Cache);
    let InstructionKind::Run(r2) = k[2] else {
        panic!()
    };
    assert_eq!(r2.network, NetworkMode::Host);
}

#[test]
fn heredocs_in_run_and_copy() {
    let src = "FROM a\nRUN <<EOF\napt-get update\napt-get install -y x\nEOF\nRUN python3 <<'PY' > /out\nprint(\"$HOME\")\nPY\nRUN <<-EOT bash\n\t\techo tabbed\n\tEOT\nCOPY <<one.txt <<\"two.txt\" /dst/\n1\none.txt\n2 $X\ntwo.txt\nCMD done\n";
    let df = parse(src).unwrap();
    let ins = &df.stages[0].instructions;
    let InstructionKind::Run(r) = &ins[0].kind else {
        panic!()
    };
    assert_eq!((ins[0].line, ins[0].end_line), (2, 5));
    assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
    assert_eq!(
        r.heredocs[0].content,
        "apt-get update\napt-get install -y x\n"
    );
    assert!(r.heredocs[0].expand);
    let InstructionKind::Run(r) = &ins[1].kind else {
        panic!()
    };
    assert_eq!(r.heredocs[0].name, "PY");
    assert!(!r.heredocs[0].expand);
    let InstructionKind::Run(r) = &ins[2].kind else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "echo tabbed\n");
    assert!(r.heredocs[0].chomp);
    let InstructionKind::Copy(c) = &ins[3].kind else {
        panic!()
    };
    assert_eq!(c.dest, "/dst/");
    let CopySource::Inline(h1) = &c.sources[0] else {
        panic!()
    };
    let CopySource::Inline(h2) = &c.sources[1] else {
        panic!()
    };
    assert_eq!(
        (h1.name.as_str(), h1.content.as_str(), h1.expand),
        ("one.txt", "1\n", true)
    );
    assert_eq!(
        (h2.name.as_str(), h2.content.as_str(), h2.expand),
        ("two.txt", "2 $X\n", false)
    );
    assert_eq!(ins[4].line, 17);
}

#[test]
fn env_both_forms_and_label() {
    let df = parse(
        "FROM a\nENV PATH /usr/bin:$PATH\nENV A=1 B=\"two words\" C=three\\ words\nLABEL org.x=\"y\" z=1\nLABEL legacy value here\n",
    )
    .unwrap();
    let k = kinds(&df, 0);
    let InstructionKind::Env(e) = k[0] else {
        panic!()
    };
    assert!(e.legacy);
    assert_eq!(e.pairs[0].key, "PATH");
    assert_eq!(e.pairs[0].value, "/usr/bin:$PATH");
    let InstructionKind::Env(e) = k[1] else {
        panic!()
    };
    assert!(!e.legacy);
    let got: Vec<(&str, &str)> = e
        .pairs
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![("A", "1"), ("B", "\"two words\""), ("C", "three\\ words")]
    );
    let InstructionKind::Label(l) = k[2] else {
        panic!()
    };
    assert_eq!(l.pairs.len(), 2);
    let InstructionKind::Label(l) = k[3] else {
        panic!()
    };
    assert_eq!(l.pairs[0].value, "value here");
    let err = parse("FROM a\nENV ONLYKEY\n").unwrap_err();
    assert_eq!(err.to_string(), "Dockerfile:2: ENV must have two arguments");
    assert!(parse("FROM a\nENV a=1 b\n").is_err());
}

#[test]
fn metadata_instructions() {
    let df = parse(
        "FROM a\nCMD echo hi\nENTRYPOINT [\"/bin/tini\", \"--\"]\nEXPOSE 80/tcp 443\nVOLUME [\"/data\", \"/logs\"]\nVOLUME /a /b\nUSER app:app\nWORKDIR /srv\nSHELL [\"/bin/bash\", \"-c\"]\nSTOPSIGNAL SIGTERM\nMAINTAINER me\n",
    )
    .unwrap();
    let k = kinds(&df, 0);
    assert_eq!(
        *k[0],
        InstructionKind::Cmd(CommandLine::Shell("echo hi".into()))
    );
    assert_eq!(
        *k[1],
        InstructionKind::Entrypoint(CommandLine::Exec(vec!["/bin/tini".into(), "--".into()]))
    );
    assert_eq!(
        *k[2],
        InstructionKind::Expose(vec!["80/tcp".into(), "443".into()])
    );
    assert_eq!(
        *k[3],
        InstructionKind::Volume(vec!["/data".into(), "/logs".into()])
    );
    assert_eq!(
        *k[4],
        InstructionKind::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(*k[5], InstructionKind::User("app:app".into()));
    assert_eq!(*k[6], InstructionKind::Workdir("/srv".into()));
    assert_eq!(
        *k[7],
        InstructionKind::Shell(vec!["/bin/bash".into(), "-c".into()])
    );
    assert_eq!(*k[8], InstructionKind::StopSignal("SIGTERM".into()));
    assert_eq!(*k[9], InstructionKind::Maintainer("me".into()));
    assert!(parse("FROM a\nSHELL /bin/sh -c\n").is_err());
}

#[test]
fn healthcheck_flags() {
    let df = parse(
        "FROM a\nHEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=3 CMD curl -f http://localhost/\nHEALTHCHECK NONE\nhealthcheck cmd [\"true\"]\n",
    )
    .unwrap();
    let k = kinds(&df, 0);
    assert_eq!(
        *k[0],
        InstructionKind::Healthcheck(Healthcheck::Cmd {
            command: CommandLine::Shell("curl -f http://localhost/".into()),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(5)),
            start_period: Some(Duration::from_secs(60)),
            start_interval: Some(Duration::from_secs(2)),
            retries: Some(3),
        })
    );
    assert_eq!(*k[1], InstructionKind::Healthcheck(Healthcheck::None));
    assert!(matches!(
        k[2],
        InstructionKind::Healthcheck(Healthcheck::Cmd { .. })
    ));
    for bad in [
        "HEALTHCHECK NONE x",
        "HEALTHCHECK --retries=-1 CMD x",
        "HEALTHCHECK --interval=5 CMD x",
        "HEALTHCHECK CMD",
        "HEALTHCHECK WHAT x",
        "HEALTHCHECK --bogus=1 CMD x",
    ] {
        assert!(parse(&format!("FROM a\n{bad}\n")).is_err(), "{bad}");
    }
}

#[test]
fn onbuild_wraps_an_instruction() {
    let df =
        parse("FROM a\nONBUILD COPY --chown=1 . /app\nONBUILD RUN <<EOF\nmake\nEOF\n").unwrap();
    let InstructionKind::Onbuild(inner) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    let InstructionKind::Copy(c) = &inner.kind else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("1"));
    let InstructionKind::Onbuild(inner) = &df.stages[0].instructions[1].kind else {
        panic!()
    };
    let InstructionKind::Run(r) = &inner.kind else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "make\n");
    for bad in [
        "ONBUILD ONBUILD RUN x",
        "ONBUILD FROM x",
        "ONBUILD MAINTAINER x",
        "ONBUILD",
    ] {
        assert!(parse(&format!("FROM a\n{bad}\n")).is_err(), "{bad}");
    }
}

#[test]
fn copy_and_add_flags() {
    let df = parse(
        "FROM a\nCOPY --from=0 --chown=1:2 --chmod=755 --link --exclude=*.md --exclude=x --parents a b /d/\nADD --checksum=sha256:abc --keep-git-dir https://x/y.tar /z\nCOPY [\"a b\", \"/c\"]\n",
    )
    .unwrap();
    let k = kinds(&df, 0);
    let InstructionKind::Copy(c) = k[0] else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("0"));
    assert_eq!(c.chmod.as_deref(), Some("755"));
    assert!(c.link && c.parents);
    assert_eq!(c.excludes, vec!["*.md", "x"]);
    assert_eq!(c.sources.len(), 2);
    let InstructionKind::Add(a) = k[1] else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert!(a.keep_git_dir);
    let InstructionKind::Copy(c) = k[2] else {
        panic!()
    };
    assert_eq!(c.sources, vec![CopySource::Path("a b".into())]);
    assert!(parse("FROM a\nCOPY --checksum=x a b\n").is_err());
    assert!(parse("FROM a\nADD --from=x a b\n").is_err());
    assert!(parse("FROM a\nCOPY onlyone\n").is_err());
}

#[test]
fn escape_directive_backtick() {
    let df = parse("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n  && echo done\nENV P=C:\\tools Q=a` b\n").unwrap();
    assert_eq!(df.directives.escape, '`');
    let k = kinds(&df, 0);
    assert_eq!(
        *k[0],
        InstructionKind::Run(Run {
            command: CommandLine::Shell("dir c:\\   && echo done".into()),
            heredocs: vec![],
            mounts: vec![],
            network: NetworkMode::Default,
            security: None,
        })
    );
    let InstructionKind::Env(e) = k[1] else {
        panic!()
    };
    assert_eq!(e.pairs[1].value, "a` b");
}

#[test]
fn errors_name_the_line() {
    let e = parse("FROM a\n\nRUNN make\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(
        e.to_string()
            .starts_with("Dockerfile:3: unknown instruction: RUNN"),
        "{e}"
    );
    let e = parse("FROM\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:1: FROM requires at least one argument"
    );
    let e = parse("FROM a b\n").unwrap_err();
    assert_eq!(e.message, "FROM requires either one or three arguments");
    let e = parse("FROM a AS 1x\n").unwrap_err();
    assert!(e.message.contains("invalid name for build stage"));
    let e = parse("RUN x\n").unwrap_err();
    assert!(e.message.contains("no build stage"), "{e}");
    let e = parse("# just a comment\n\n").unwrap_err();
    assert!(e.message.contains("no instructions"));
    let e = parse("FROM a\nRUN --network=bogus x\n").unwrap_err();
    assert_eq!(e.line, 2);
    let e = parse("FROM a\nCMD --x=1 y\n").unwrap_err();
    assert_eq!(e.message, "unknown flag: x");
    let e = parse("FROM a\nRUN [1, 2]\n").unwrap_err();
    assert!(e.message.contains("strings only"));
    let e = parse_named("FROM a\nRUNN x\n", "app.Dockerfile").unwrap_err();
    assert!(e.to_string().starts_with("app.Dockerfile:2:"));
}

#[test]
fn continuation_warnings_are_kept() {
    let df = parse("FROM a\nRUN a \\\n\n  b\n").unwrap();
    assert_eq!(df.warnings.len(), 1);
    assert_eq!(df.stages[0].instructions[0].original, "RUN a   b");
}
