//! The machinery of a training run: its config ([`config`], [`overrides`], [`validation`]), the plan resolved from
//! it ([`plan`]), the output directory ([`dir`]), the run's position ([`clock`], [`segments`]),
//! data ([`data`], [`loader`]), several devices ([`parallel`]), evaluation ([`evaluation`]), models and steps ([`model`], [`steps`], [`guard`], [`ema`]), optimizer and
//! schedule ([`optim`], [`schedule`]), checkpoints ([`checkpoint_sets`], [`checkpointer`]) and the training loop that
//! puts them together ([`trainer`]).

pub mod checkpoint_sets;
pub mod checkpointer;
pub mod clock;
pub mod config;
pub mod data;
pub mod dir;
pub mod ema;
pub mod evaluation;
pub mod guard;
pub mod loader;
pub mod loss_scale;
pub mod model;
pub mod optim;
pub mod overrides;
pub mod parallel;
pub mod plan;
pub mod schedule;
pub mod segments;
pub mod steps;
pub mod trainer;
pub mod validation;
