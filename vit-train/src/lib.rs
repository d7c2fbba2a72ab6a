//! `vit-train` as a library: the subcommands ([`commands`]), the machinery of a training run
//! ([`run`]: config, plan, run directory, clock, loader, steps, optimizer, checkpoints) and its
//! reporting ([`report`]: progress, metrics.csv, curves, SimMIM samples).

pub mod commands;
pub mod device;
pub mod memory;
pub mod report;
pub mod run;
