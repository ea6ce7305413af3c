//! The training method as a user chooses it: a name and the options that belong to that
//! method, typed, with `None` where the authors' default applies. [`MethodSettings::resolve`]
//! turns it into the core's [`Method`] once the data (and so the defaults) are known.

use super::values::{Fraction, NonNegative, Positive, ValueError, whole};
use crate::attack::{BnMode, PgdConfig};
use crate::data::DatasetKind;
use crate::train::{BnStats, Method};
use clap::ValueEnum;

/// The methods by name, as `--method` and `method NAME` take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodName {
    /// CE on natural images.
    Natural,
    /// Madry PGD adversarial training.
    Sat,
    /// TRADES (--beta).
    Trades,
    /// Hinton knowledge distillation on natural images (--teacher, --alpha, --temperature).
    Kd,
    /// Adversarially Robust Distillation (--teacher, --alpha, --temperature).
    Ard,
    /// Introspective Adversarial Distillation (--teacher, --alpha, --temperature, --beta,
    /// --iad-warmup).
    Iad,
    /// Robust Soft Label Adversarial Distillation (--teacher, --alpha, --rslad-scale).
    Rslad,
}

impl MethodName {
    pub const ALL: [MethodName; 7] = [
        MethodName::Natural,
        MethodName::Sat,
        MethodName::Trades,
        MethodName::Kd,
        MethodName::Ard,
        MethodName::Iad,
        MethodName::Rslad,
    ];

    /// The name as typed.
    pub fn name(self) -> &'static str {
        match self {
            MethodName::Natural => "natural",
            MethodName::Sat => "sat",
            MethodName::Trades => "trades",
            MethodName::Kd => "kd",
            MethodName::Ard => "ard",
            MethodName::Iad => "iad",
            MethodName::Rslad => "rslad",
        }
    }

    /// Whether the method distils from a teacher.
    pub fn distils(self) -> bool {
        matches!(
            self,
            MethodName::Kd | MethodName::Ard | MethodName::Iad | MethodName::Rslad
        )
    }

    /// Whether the method trains on adversarial points (and so has a training attack).
    pub fn trains_adversarially(self) -> bool {
        !matches!(self, MethodName::Natural | MethodName::Kd)
    }

    /// The options this method takes (the teacher aside).
    pub fn options(self) -> Vec<MethodOption> {
        MethodOption::ALL
            .into_iter()
            .filter(|o| MethodSettings::new(self).accepts(*o))
            .collect()
    }
}

impl std::fmt::Display for MethodName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A method-specific option, named the same on the command line (`--alpha`) and at the
/// workbench's prompt (`alpha=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodOption {
    Alpha,
    Beta,
    Temperature,
    IadWarmup,
    RsladScale,
}

impl MethodOption {
    pub const ALL: [MethodOption; 5] = [
        MethodOption::Alpha,
        MethodOption::Beta,
        MethodOption::Temperature,
        MethodOption::IadWarmup,
        MethodOption::RsladScale,
    ];

    pub fn key(self) -> &'static str {
        match self {
            MethodOption::Alpha => "alpha",
            MethodOption::Beta => "beta",
            MethodOption::Temperature => "temperature",
            MethodOption::IadWarmup => "iad-warmup",
            MethodOption::RsladScale => "rslad-scale",
        }
    }

    pub fn from_key(key: &str) -> Option<MethodOption> {
        MethodOption::ALL.into_iter().find(|o| o.key() == key)
    }
}

/// A method and its own options; `None` means the authors' default (which may depend on the
/// data or the number of epochs, so it is filled in by [`MethodSettings::resolve`]).
#[derive(Clone, Debug, PartialEq)]
pub enum MethodSettings {
    Natural,
    Sat {
        /// Batch-norm mode of the student during the training attack.
        attack_bn: BnMode,
    },
    Trades {
        beta: Option<NonNegative>,
        bn_stats: BnStats,
    },
    Kd {
        alpha: Option<Fraction>,
        temperature: Option<Positive>,
    },
    Ard {
        alpha: Option<Fraction>,
        temperature: Option<Positive>,
    },
    Iad {
        alpha: Option<Fraction>,
        temperature: Option<Positive>,
        beta: Option<NonNegative>,
        warmup_epochs: Option<usize>,
    },
    Rslad {
        alpha: Option<Fraction>,
        scale: Option<Positive>,
        bn_stats: BnStats,
    },
}

/// RSLAD's loss scale: the authors average the KL over batch × classes (÷10 on CIFAR-10 and
/// MNIST) and multiply by 10 on CIFAR-100 (10/100), so their effective scale is 0.1 on all.
pub const RSLAD_DEFAULT_SCALE: f32 = 0.1;

impl MethodSettings {
    /// The method with every option at its default.
    pub fn new(name: MethodName) -> MethodSettings {
        match name {
            MethodName::Natural => MethodSettings::Natural,
            MethodName::Sat => MethodSettings::Sat {
                attack_bn: BnMode::Eval,
            },
            MethodName::Trades => MethodSettings::Trades {
                beta: None,
                bn_stats: BnStats::Both,
            },
            MethodName::Kd => MethodSettings::Kd {
                alpha: None,
                temperature: None,
            },
            MethodName::Ard => MethodSettings::Ard {
                alpha: None,
                temperature: None,
            },
            MethodName::Iad => MethodSettings::Iad {
                alpha: None,
                temperature: None,
                beta: None,
                warmup_epochs: None,
            },
            MethodName::Rslad => MethodSettings::Rslad {
                alpha: None,
                scale: None,
                bn_stats: BnStats::Both,
            },
        }
    }

    pub fn name(&self) -> MethodName {
        match self {
            MethodSettings::Natural => MethodName::Natural,
            MethodSettings::Sat { .. } => MethodName::Sat,
            MethodSettings::Trades { .. } => MethodName::Trades,
            MethodSettings::Kd { .. } => MethodName::Kd,
            MethodSettings::Ard { .. } => MethodName::Ard,
            MethodSettings::Iad { .. } => MethodName::Iad,
            MethodSettings::Rslad { .. } => MethodName::Rslad,
        }
    }

    /// Whether this method has `option` (1 is a valid value of every option, so only the
    /// method can refuse it).
    pub fn accepts(&self, option: MethodOption) -> bool {
        self.clone().set(option, 1.0).is_ok()
    }

    /// Sets one option from a number, refusing an option the method does not have or a value
    /// out of range. The error names the option by its key; the caller adds `--` or `=`.
    pub fn set(&mut self, option: MethodOption, value: f64) -> Result<(), OptionError> {
        use MethodOption::*;
        let method = self.name();
        let refused = || OptionError::NotForMethod { option, method };
        let invalid = |error: ValueError| OptionError::Invalid { option, error };
        match (self, option) {
            (
                MethodSettings::Kd { alpha, .. }
                | MethodSettings::Ard { alpha, .. }
                | MethodSettings::Iad { alpha, .. }
                | MethodSettings::Rslad { alpha, .. },
                Alpha,
            ) => *alpha = Some(Fraction::new(value).map_err(invalid)?),
            (MethodSettings::Trades { beta, .. } | MethodSettings::Iad { beta, .. }, Beta) => {
                *beta = Some(NonNegative::new(value).map_err(invalid)?)
            }
            (
                MethodSettings::Kd { temperature, .. }
                | MethodSettings::Ard { temperature, .. }
                | MethodSettings::Iad { temperature, .. },
                Temperature,
            ) => *temperature = Some(Positive::new(value).map_err(invalid)?),
            (MethodSettings::Iad { warmup_epochs, .. }, IadWarmup) => {
                *warmup_epochs = Some(whole(value).map_err(invalid)?)
            }
            (MethodSettings::Rslad { scale, .. }, RsladScale) => {
                *scale = Some(Positive::new(value).map_err(invalid)?)
            }
            _ => return Err(refused()),
        }
        Ok(())
    }

    /// Sets which training-mode forwards update the batch-norm running statistics. Only
    /// TRADES and RSLAD have the option (their attack runs in eval mode, so only their
    /// training-mode forwards, the two outer ones or `strong`'s third, update them); false for
    /// any other method.
    pub fn set_bn_stats(&mut self, mode: BnStats) -> bool {
        match self {
            MethodSettings::Trades { bn_stats, .. } | MethodSettings::Rslad { bn_stats, .. } => {
                *bn_stats = mode;
                true
            }
            _ => false,
        }
    }

    /// The core's method: every default filled in for `kind` and a run of `epochs`, with the
    /// training attack `ce` (cross-entropy, uniform start) or `kl` (KL to a soft label,
    /// small Gaussian start) as the method prescribes.
    pub fn resolve(
        &self,
        kind: DatasetKind,
        epochs: usize,
        ce: PgdConfig,
        kl: PgdConfig,
    ) -> Method {
        let get = |v: Option<Fraction>, default: f32| v.map_or(default, Fraction::get);
        let positive = |v: Option<Positive>, default: f32| v.map_or(default, Positive::get);
        let beta = |v: Option<NonNegative>, default: f32| v.map_or(default, NonNegative::get);
        match self {
            MethodSettings::Natural => Method::Natural,
            MethodSettings::Sat { attack_bn } => Method::Sat {
                attack: ce,
                bn_mode: *attack_bn,
            },
            MethodSettings::Trades { beta: b, bn_stats } => Method::Trades {
                attack: kl,
                beta: beta(*b, if kind.augments() { 6.0 } else { 1.0 }),
                bn_stats: *bn_stats,
            },
            MethodSettings::Kd { alpha, temperature } => Method::Kd {
                alpha: get(*alpha, 0.9),
                temperature: positive(*temperature, 4.0),
            },
            MethodSettings::Ard { alpha, temperature } => Method::Ard {
                attack: ce,
                alpha: get(*alpha, 1.0),
                temperature: positive(*temperature, 30.0),
                kl_scale: 1.0 / kind.num_classes() as f32,
            },
            MethodSettings::Iad {
                alpha,
                temperature,
                beta: b,
                warmup_epochs,
            } => Method::Iad {
                attack: ce,
                alpha: get(*alpha, 1.0),
                temperature: positive(*temperature, 1.0),
                beta: beta(*b, 0.1),
                // 60 of 200 epochs in the authors' runs.
                warmup_epochs: warmup_epochs.unwrap_or((epochs as f64 * 0.3).round() as usize),
            },
            MethodSettings::Rslad {
                alpha,
                scale,
                bn_stats,
            } => Method::Rslad {
                attack: kl,
                alpha: get(*alpha, 5.0 / 6.0),
                scale: positive(*scale, RSLAD_DEFAULT_SCALE),
                bn_stats: *bn_stats,
            },
        }
    }
}

/// Why a method option was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionError {
    NotForMethod {
        option: MethodOption,
        method: MethodName,
    },
    Invalid {
        option: MethodOption,
        error: ValueError,
    },
}

impl OptionError {
    /// The message with the option written as the front end writes it: `prefix` is `--` on
    /// the command line and empty at the prompt.
    pub fn message(&self, prefix: &str) -> String {
        match self {
            OptionError::NotForMethod { option, method } => {
                let takes: Vec<String> = method
                    .options()
                    .iter()
                    .map(|o| format!("{prefix}{}", o.key()))
                    .collect();
                let takes = if takes.is_empty() {
                    "no options of its own".to_string()
                } else {
                    takes.join(" ")
                };
                format!(
                    "{prefix}{} does not apply to {prefix}method {method} (it takes {takes})",
                    option.key()
                )
            }
            OptionError::Invalid { option, error } => {
                error.named(&format!("{prefix}{}", option.key()))
            }
        }
    }
}
