//! Numbers that are checked once, where they enter the program: each newtype can only hold a
//! valid value, so the engine and the core never check them again. The error says the rule in
//! plain words; the front end that read the value adds its own name for it (`--eps` on the
//! command line, `eps` at the workbench's prompt).

use std::fmt;

/// Why a value was refused: the rule it breaks, e.g. "must be in [0, 1]; got 1.5".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError(pub String);

impl ValueError {
    /// The message with the name the user typed in front, e.g. "--eps must be in [0, 1]; …".
    pub fn named(&self, name: &str) -> String {
        format!("{name} {}", self.0)
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

/// Declares a newtype over a number with one check.
macro_rules! checked {
    ($(#[$doc:meta])* $name:ident($inner:ty), |$v:ident| $ok:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, PartialOrd, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name($inner);

        impl $name {
            pub fn new(value: impl Into<f64>) -> Result<Self, ValueError> {
                let $v: f64 = value.into();
                if $ok {
                    Ok(Self($v as $inner))
                } else {
                    Err(ValueError(format!(concat!($rule, "; got {}"), $v)))
                }
            }

            pub fn get(self) -> $inner {
                self.0
            }
        }

        impl TryFrom<f64> for $name {
            type Error = ValueError;

            fn try_from(value: f64) -> Result<Self, ValueError> {
                Self::new(value)
            }
        }

        impl From<$name> for f64 {
            fn from(value: $name) -> f64 {
                value.0 as f64
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

checked!(
    /// An L∞ attack radius: images are in [0, 1], so is ε.
    Epsilon(f32),
    |v| (0.0..=1.0).contains(&v),
    "must be in [0, 1] (images are in [0, 1])"
);

checked!(
    /// An attack's step size: positive and finite.
    StepSize(f32),
    |v| v > 0.0 && v.is_finite(),
    "must be positive"
);

checked!(
    /// A learning rate: positive and finite.
    LearningRate(f64),
    |v| v > 0.0 && v.is_finite(),
    "must be positive"
);

checked!(
    /// SGD momentum, in [0, 1).
    Momentum(f64),
    |v| (0.0..1.0).contains(&v),
    "must be in [0, 1)"
);

checked!(
    /// L2 weight decay, in [0, 1).
    WeightDecay(f32),
    |v| (0.0..1.0).contains(&v),
    "must be in [0, 1)"
);

checked!(
    /// The factor a step schedule multiplies the learning rate by, in (0, 1].
    Gamma(f64),
    |v| v > 0.0 && v <= 1.0,
    "must be in (0, 1]"
);

checked!(
    /// A weight between two terms, in [0, 1] (α of the distillation methods).
    Fraction(f32),
    |v| (0.0..=1.0).contains(&v),
    "must be in [0, 1]"
);

checked!(
    /// A positive, finite number (a temperature, a loss scale).
    Positive(f32),
    |v| v > 0.0 && v.is_finite(),
    "must be positive"
);

checked!(
    /// A finite number ≥ 0 (a β).
    NonNegative(f32),
    |v| v >= 0.0 && v.is_finite(),
    "must be finite and at least 0"
);

/// A whole number ≥ 1: epochs, batches, a batch size, images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Count(usize);

impl Count {
    pub const ONE: Count = Count(1);

    pub fn new(value: usize) -> Result<Count, ValueError> {
        if value >= 1 {
            Ok(Count(value))
        } else {
            Err(ValueError(format!("must be at least 1; got {value}")))
        }
    }

    /// A count written as a number that may come from a fraction (`n=1e3`): whole and ≥ 1.
    pub fn from_number(value: f64) -> Result<Count, ValueError> {
        if value >= 1.0 && value.fract() == 0.0 && value <= usize::MAX as f64 {
            Ok(Count(value as usize))
        } else {
            Err(ValueError(format!(
                "must be a whole number ≥ 1; got {value}"
            )))
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A whole number ≥ 0 written as a number (`steps=0`, `eps-warmup=2`).
pub fn whole(value: f64) -> Result<usize, ValueError> {
    if value >= 0.0 && value.fract() == 0.0 && value < 1e9 {
        Ok(value as usize)
    } else {
        Err(ValueError(format!(
            "must be a whole number ≥ 0; got {value}"
        )))
    }
}

/// The epochs at which a step schedule decays the learning rate: increasing, each ≥ 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Milestones(Vec<usize>);

impl Milestones {
    pub fn new(epochs: Vec<usize>) -> Result<Milestones, ValueError> {
        if epochs.contains(&0) {
            return Err(ValueError(format!(
                "are epochs ≥ 1 (a milestone at 0 would only change the learning rate: set \
                 that instead); got {}",
                list(&epochs)
            )));
        }
        if epochs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ValueError(format!("must increase; got {}", list(&epochs))));
        }
        Ok(Milestones(epochs))
    }

    pub fn get(&self) -> &[usize] {
        &self.0
    }
}

fn list(epochs: &[usize]) -> String {
    epochs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A finite number as a user writes it: a decimal or a fraction such as `5/6` or `8/255`.
pub fn number(text: &str) -> Result<f64, String> {
    let not_a_number = || format!("`{text}` is not a number");
    let value = match text.split_once('/') {
        Some((top, bottom)) => {
            let top: f64 = top.parse().map_err(|_| not_a_number())?;
            let bottom: f64 = bottom.parse().map_err(|_| not_a_number())?;
            if bottom == 0.0 {
                return Err(format!("`{text}` divides by zero"));
            }
            top / bottom
        }
        None => text.parse().map_err(|_| not_a_number())?,
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(not_a_number())
    }
}
