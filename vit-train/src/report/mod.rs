//! What a run reports: progress on the terminal, `metrics.csv`, the curves drawn from it and
//! SimMIM reconstruction grids.

pub mod curves;
pub mod display;
pub mod metrics;
pub mod metrics_csv;
pub mod metrics_sink;
pub mod model_card;
pub mod png;
pub mod renderer;
pub mod samples;
