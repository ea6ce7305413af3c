//! The workbench's command language: parsing, errors with usage, help and completion all come
//! from one table.

use rslad_tui::cli::{MethodName, OptimizerName};
use rslad_tui::workbench::command::{
    self, AttackKind, COMMANDS, Command, common_prefix, complete, help, help_for, parse,
};
use rslad_tui::zoo::Arch;

#[test]
fn every_command_of_the_issue_parses() {
    let cases = [
        ("step", Command::Step { epochs: 1 }),
        ("step 3", Command::Step { epochs: 3 }),
        ("step batch", Command::StepBatches { batches: 1 }),
        ("step batch 7", Command::StepBatches { batches: 7 }),
        ("pause", Command::Stop),
        ("stop", Command::Stop),
        ("student small-cnn", Command::Student(Arch::SmallCnn)),
        ("teacher embedded", Command::Teacher("embedded".into())),
        ("data fashion", Command::Data("fashion".into())),
        ("eps 0.3", Command::Eps(0.3)),
        ("lr 0.01", Command::Lr(0.01)),
        ("seed 42", Command::Seed(42)),
        ("show sample 12", Command::ShowSample(12)),
        ("next", Command::Next),
        ("prev", Command::Prev),
        ("show misclassified", Command::ShowMisclassified),
        ("eval", Command::Eval { n: None }),
        ("eval n=200", Command::Eval { n: Some(200) }),
        ("save", Command::Save(None)),
        ("save runs/x", Command::Save(Some("runs/x".into()))),
        ("load runs/x", Command::Load("runs/x".into())),
        ("reset", Command::Reset),
        ("help", Command::Help(None)),
        ("help attack", Command::Help(Some("attack".into()))),
        ("quit", Command::Quit),
    ];
    for (line, expected) in cases {
        assert_eq!(parse(line), Ok(expected), "{line}");
    }
}

#[test]
fn method_options_take_fractions() {
    let Ok(Command::Method { name, options }) = parse("method rslad alpha=5/6") else {
        panic!("method did not parse");
    };
    assert_eq!(name, MethodName::Rslad);
    assert_eq!(options.len(), 1);
    assert_eq!(options[0].0, "alpha");
    assert!((options[0].1 - 5.0 / 6.0).abs() < 1e-12);
    assert_eq!(parse("eps 8/255"), Ok(Command::Eps(8.0 / 255.0)));
}

#[test]
fn optimizer_takes_the_schedule_keys() {
    assert_eq!(
        parse("optimizer sgd momentum=0.9 weight-decay=2e-4 milestones=215,260,285 gamma=1/10"),
        Ok(Command::Optimizer {
            kind: OptimizerName::Sgd,
            momentum: Some(0.9),
            weight_decay: Some(2e-4),
            gamma: Some(0.1),
            milestones: Some(vec![215, 260, 285]),
        })
    );
    assert_eq!(
        parse("optimizer adam milestones=none"),
        Ok(Command::Optimizer {
            kind: OptimizerName::Adam,
            momentum: None,
            weight_decay: None,
            gamma: None,
            milestones: Some(Vec::new()),
        })
    );
}

#[test]
fn attacks_take_their_keys() {
    assert_eq!(
        parse("attack pgd eps=0.2 steps=20 n=100"),
        Ok(Command::Attack {
            kind: AttackKind::Pgd,
            eps: Some(0.2),
            steps: Some(20),
            n: Some(100)
        })
    );
    assert_eq!(
        parse("attack autoattack"),
        Ok(Command::Attack {
            kind: AttackKind::AutoAttack,
            eps: None,
            steps: None,
            n: None
        })
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
