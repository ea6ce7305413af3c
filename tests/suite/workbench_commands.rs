//! The workbench's command language: parsing, errors with usage, help and completion all come
//! from one table.

use rslad_tui::lab::command::{
    self, AttackRequest, COMMANDS, Command, EngineCommand, MethodChange, OptimizerChange,
    SessionCommand, UiCommand, common_prefix, complete, help, help_for, parse,
};
use rslad_tui::settings::{
    AttackName, Epsilon, Gamma, LearningRate, MethodName, MethodSettings, Milestones, Momentum,
    OptimizerName, WeightDecay,
};
use rslad_tui::zoo::Arch;

fn engine(command: EngineCommand) -> Command {
    command.into()
}

#[test]
fn every_command_of_the_issue_parses() {
    let eps = |v: f64| Epsilon::new(v).unwrap();
    let cases = [
        ("step", engine(EngineCommand::Step { epochs: 1 })),
        ("step 3", engine(EngineCommand::Step { epochs: 3 })),
        (
            "step batch",
            engine(EngineCommand::StepBatches { batches: 1 }),
        ),
        (
            "step batch 7",
            engine(EngineCommand::StepBatches { batches: 7 }),
        ),
        ("pause", UiCommand::Stop.into()),
        ("stop", UiCommand::Stop.into()),
        (
            "student small-cnn",
            engine(EngineCommand::Student(Arch::SmallCnn)),
        ),
        (
            "teacher embedded",
            engine(EngineCommand::Teacher("embedded".into())),
        ),
        (
            "data fashion",
            engine(EngineCommand::Data("fashion".into())),
        ),
        ("eps 0.3", engine(EngineCommand::Eps(eps(0.3)))),
        (
            "lr 0.01",
            engine(EngineCommand::Lr(LearningRate::new(0.01).unwrap())),
        ),
        ("seed 42", engine(EngineCommand::Seed(42))),
        ("show sample 12", engine(EngineCommand::ShowSample(12))),
        ("next", engine(EngineCommand::Next)),
        ("prev", engine(EngineCommand::Prev)),
        (
            "show misclassified",
            engine(EngineCommand::ShowMisclassified),
        ),
        ("eval", engine(EngineCommand::Eval { n: None })),
        ("eval n=200", engine(EngineCommand::Eval { n: Some(200) })),
        (
            "diagnose",
            engine(EngineCommand::Diagnose {
                n: None,
                image: None,
            }),
        ),
        (
            "diagnose image=0 n=50",
            engine(EngineCommand::Diagnose {
                n: Some(50),
                image: Some(0),
            }),
        ),
        (
            "save",
            engine(EngineCommand::Save {
                path: None,
                overwrite: false,
            }),
        ),
        (
            "save runs/x",
            engine(EngineCommand::Save {
                path: Some("runs/x".into()),
                overwrite: false,
            }),
        ),
        (
            "save runs/x --overwrite",
            engine(EngineCommand::Save {
                path: Some("runs/x".into()),
                overwrite: true,
            }),
        ),
        ("load runs/x", engine(EngineCommand::Load("runs/x".into()))),
        ("reset", engine(EngineCommand::Reset)),
        (
            "save session s1",
            SessionCommand::SaveSession {
                name: "s1".into(),
                overwrite: false,
            }
            .into(),
        ),
        (
            "save session s1 --overwrite",
            SessionCommand::SaveSession {
                name: "s1".into(),
                overwrite: true,
            }
            .into(),
        ),
        (
            "load session s1",
            SessionCommand::LoadSession("s1".into()).into(),
        ),
        ("recover", SessionCommand::Recover.into()),
        ("help", UiCommand::Help(None).into()),
        ("help attack", UiCommand::Help(Some("attack".into())).into()),
        ("quit", UiCommand::Quit.into()),
    ];
    for (line, expected) in cases {
        assert_eq!(parse(line), Ok(expected), "{line}");
    }
}

/// `bn-stats=` reaches TRADES' and RSLAD's settings and the method they resolve to (whose label
/// names it); other methods and unknown modes are refused.
#[test]
fn method_bn_stats_option_parses_for_trades_and_rslad_only() {
    use rslad_tui::data::DatasetKind;
    use rslad_tui::train::{BnStats, Method};
    for (line, mode) in [
        (
            "method trades bn-stats=adversarial beta=2",
            BnStats::Adversarial,
        ),
        ("method rslad bn-stats=natural", BnStats::Natural),
        ("method rslad bn-stats=both", BnStats::Both),
        ("method trades bn-stats=strong", BnStats::Strong),
    ] {
        let Ok(Command::Run(command::Work::Engine(EngineCommand::Method(change)))) = parse(line)
        else {
            panic!("{line} did not parse");
        };
        let attack = Method::kl_attack(0.3, 0.01, 10);
        let method = change.method.resolve(DatasetKind::Mnist, 3, attack, attack);
        assert_eq!(method.bn_stats(), Some(mode), "{line}");
        assert_eq!(
            method
                .label()
                .contains(&format!("bn-stats {}", mode.name())),
            mode != BnStats::Both,
            "{line}: {}",
            method.label()
        );
    }
    let error = parse("method sat bn-stats=adversarial").unwrap_err();
    assert!(error.message.contains("trades and rslad"), "{error}");
    let error = parse("method rslad bn-stats=half").unwrap_err();
    assert!(
        error
            .message
            .contains("both, adversarial, natural or strong"),
        "{error}"
    );
}

/// `recalibrate` takes where the statistics come from first (adversarial by default) and
/// `batches=`; anything else is refused.
#[test]
fn recalibrate_parses_its_source_and_batches() {
    use rslad_tui::train::StatsSource;
    let cases = [
        ("recalibrate", StatsSource::Adversarial, None),
        ("recalibrate natural", StatsSource::Natural, None),
        (
            "recalibrate adversarial batches=20",
            StatsSource::Adversarial,
            Some(20),
        ),
        ("recalibrate batches=5", StatsSource::Adversarial, Some(5)),
    ];
    for (line, source, batches) in cases {
        assert_eq!(
            parse(line),
            Ok(engine(EngineCommand::Recalibrate { source, batches })),
            "{line}"
        );
    }
    for bad in [
        "recalibrate both",
        "recalibrate batches=0",
        "recalibrate batches=2 natural",
        "recalibrate n=3",
    ] {
        assert!(parse(bad).is_err(), "{bad} parsed");
    }
}

/// `start=` chooses where the training attack starts; an unknown start is refused by name.
#[test]
fn method_start_option_parses_and_unknown_starts_are_refused() {
    let Ok(Command::Run(command::Work::Engine(EngineCommand::Method(change)))) =
        parse("method rslad start=uniform alpha=0.5")
    else {
        panic!("method did not parse");
    };
    assert_eq!(
        change.start,
        Some(rslad_tui::settings::AttackStart::Uniform)
    );
    let error = parse("method rslad start=middle").unwrap_err();
    assert!(
        error
            .message
            .contains("reference, uniform, gaussian or none"),
        "{error}"
    );
}

#[test]
fn method_options_take_fractions() {
    let Ok(Command::Run(command::Work::Engine(EngineCommand::Method(change)))) =
        parse("method rslad alpha=5/6")
    else {
        panic!("method did not parse");
    };
    let MethodChange {
        method: MethodSettings::Rslad { alpha, scale, .. },
        steps: None,
        step_size: None,
        eps_warmup: None,
        start: None,
    } = change
    else {
        panic!("rslad with one option: {change:?}");
    };
    assert_eq!(scale, None);
    assert!((alpha.unwrap().get() - 5.0 / 6.0).abs() < 1e-6);
    assert_eq!(change_name("method rslad alpha=5/6"), MethodName::Rslad);
    assert_eq!(
        parse("eps 8/255"),
        Ok(engine(EngineCommand::Eps(
            Epsilon::new(8.0 / 255.0).unwrap()
        )))
    );
}

fn change_name(line: &str) -> MethodName {
    match parse(line) {
        Ok(Command::Run(command::Work::Engine(EngineCommand::Method(change)))) => {
            change.method.name()
        }
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn optimizer_takes_the_schedule_keys() {
    assert_eq!(
        parse("optimizer sgd momentum=0.9 weight-decay=2e-4 milestones=215,260,285 gamma=1/10"),
        Ok(engine(EngineCommand::Optimizer(OptimizerChange {
            kind: OptimizerName::Sgd,
            momentum: Some(Momentum::new(0.9).unwrap()),
            weight_decay: Some(WeightDecay::new(2e-4).unwrap()),
            gamma: Some(Gamma::new(0.1).unwrap()),
            milestones: Some(Milestones::new(vec![215, 260, 285]).unwrap()),
        })))
    );
    assert_eq!(
        parse("optimizer adam milestones=none"),
        Ok(engine(EngineCommand::Optimizer(OptimizerChange {
            kind: OptimizerName::Adam,
            momentum: None,
            weight_decay: None,
            gamma: None,
            milestones: Some(Milestones::default()),
        })))
    );
}

#[test]
fn attacks_take_their_keys() {
    assert_eq!(
        parse("attack pgd eps=0.2 steps=20 n=100"),
        Ok(engine(EngineCommand::Attack(AttackRequest {
            kind: AttackName::Pgd,
            eps: Some(Epsilon::new(0.2).unwrap()),
            steps: Some(20),
            n: Some(100)
        })))
    );
    assert_eq!(
        parse("attack autoattack"),
        Ok(engine(EngineCommand::Attack(AttackRequest {
            kind: AttackName::Autoattack,
            eps: None,
            steps: None,
            n: None
        })))
    );
}

#[test]
fn bad_lines_get_one_line_with_the_usage() {
    let cases = [
        ("step 0", "step [N]"),
        ("step -2", "step [N]"),
        ("step batch x", "step [N]"),
        ("method rslad gamma=1", "method NAME"),
        ("method nonsense", "method NAME"),
        ("method rslad alpha", "method NAME"),
        ("method rslad alpha=1/0", "method NAME"),
        ("attack fgsm steps=3", "attack fgsm"),
        ("attack pgd n=0", "attack fgsm"),
        ("attack pgd n=2.5", "attack fgsm"),
        ("attack pgd eps=2", "attack fgsm"),
        ("attack laser", "attack fgsm"),
        ("eps 1.5", "eps VALUE"),
        ("eps abc", "eps VALUE"),
        ("lr 0", "lr VALUE"),
        ("optimizer", "optimizer sgd|adam"),
        ("optimizer rmsprop", "optimizer sgd|adam"),
        ("optimizer sgd momentum=1", "optimizer sgd|adam"),
        ("optimizer sgd weight-decay=-1", "optimizer sgd|adam"),
        ("optimizer sgd milestones=260,215", "optimizer sgd|adam"),
        ("optimizer sgd milestones=a", "optimizer sgd|adam"),
        ("optimizer sgd milestones=215, 260", "commas and no spaces"),
        ("optimizer sgd weight-decay=1e39", "optimizer sgd|adam"),
        ("optimizer sgd gamma=1e300", "optimizer sgd|adam"),
        ("optimizer sgd lr=0.1", "optimizer sgd|adam"),
        ("seed -1", "seed N"),
        ("student resnet-9000", "student MODEL"),
        ("show sample", "show sample N"),
        ("show everything", "show sample N"),
        ("next 3", "next"),
        ("help nothing", "help [COMMAND]"),
        ("load", "load PATH"),
        ("diagnose image=-1", "diagnose [n=N] [image=I]"),
        ("diagnose image=1.5", "diagnose [n=N] [image=I]"),
        ("diagnose n=0", "diagnose [n=N] [image=I]"),
        ("diagnose sample=3", "diagnose [n=N] [image=I]"),
    ];
    for (line, usage) in cases {
        let error = parse(line).expect_err(line);
        let text = error.to_string();
        assert!(text.contains(usage), "{line}: {text}");
        assert!(!text.contains('\n'), "{line}: more than one line: {text}");
    }
    let unknown = parse("fly away").unwrap_err().to_string();
    assert!(unknown.contains("unknown command `fly`"), "{unknown}");
    assert!(
        unknown.contains("step") && unknown.contains("attack"),
        "{unknown}"
    );
}

#[test]
fn help_lists_every_command_from_the_table() {
    let text = help();
    for spec in COMMANDS {
        assert!(text.contains(spec.usage), "help lacks {}", spec.usage);
        let one = help_for(spec.name).unwrap();
        assert!(one.contains(spec.summary));
        // Every command in the table is parsed somewhere (a bare name either parses or
        // explains its missing argument, never "unknown command").
        if let Err(e) = parse(spec.name) {
            assert!(!e.message.contains("unknown command"), "{}", spec.name);
        }
    }
}

#[test]
fn completion_offers_commands_models_methods_attacks_and_keys() {
    assert_eq!(complete("").len(), COMMANDS.len());
    assert_eq!(complete("ste"), ["step"]);
    assert_eq!(
        complete("s"),
        ["save", "seed", "show", "step", "stop", "student"]
    );
    assert_eq!(complete("method r"), ["rslad"]);
    assert_eq!(complete("student small"), ["small-cnn"]);
    assert_eq!(complete("attack a"), ["autoattack"]);
    assert_eq!(complete("attack pgd "), ["eps=", "n=", "steps="]);
    assert_eq!(complete("attack pgd n=5 "), ["eps=", "steps="]);
    assert_eq!(complete("method rslad al"), ["alpha="]);
    assert_eq!(complete("step b"), ["batch"]);
    assert!(complete("step batch ").is_empty());
    assert_eq!(complete("show "), ["misclassified", "sample"]);
    assert_eq!(complete("help at"), ["attack"]);
    assert!(complete("teacher ").contains(&"embedded".to_string()));
    assert!(complete("data f").contains(&"fashion".to_string()));
    assert!(complete("zzz ").is_empty());
}

#[test]
fn completion_of_paths_lists_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("runs")).unwrap();
    std::fs::write(dir.path().join("run.ron"), "").unwrap();
    let base = dir.path().to_str().unwrap();
    let got = complete(&format!("load {base}/ru"));
    assert_eq!(got, [format!("{base}/run.ron"), format!("{base}/runs/")]);
}

#[test]
fn common_prefix_of_candidates() {
    let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(common_prefix(&c(&["step", "stop", "student"])), "st");
    assert_eq!(common_prefix(&c(&["eps=", "n="])), "");
    assert_eq!(common_prefix(&c(&["alpha="])), "alpha=");
}

#[test]
fn numbers_accept_decimals_and_fractions_only() {
    assert_eq!(command::number("0.25"), Ok(0.25));
    assert_eq!(command::number("1/4"), Ok(0.25));
    assert!(command::number("inf").is_err());
    assert!(command::number("1/x").is_err());
    assert!(command::number("").is_err());
}

#[test]
fn the_readme_command_reference_matches_the_table() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for spec in COMMANDS {
        let row = format!(
            "| `{}` | {} |",
            spec.usage.replace('|', "\\|"),
            spec.summary
        );
        assert!(readme.contains(&row), "README lacks the row:\n{row}");
    }
}
