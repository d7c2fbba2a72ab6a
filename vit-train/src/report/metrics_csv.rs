//! `metrics.csv`, a run's table of metrics: its format, reading it back, and preparing it for a
//! resumed run. [`super::metrics_sink::MetricsSink`] writes the rows; the best-model export and
//! the curves read them.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

/// The header line.
pub const HEADER: &str = "step,epoch,split,loss,accuracy,top5,lr,images_per_sec";

/// One row; `None` where a cell is empty or unparsable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Global step at the row.
    pub step: u64,
    /// The epoch column.
    pub epoch: f64,
    /// `train` or `valid`.
    pub split: String,
    /// Mean loss over the row's batches.
    pub loss: Option<f64>,
    /// Accuracy in percent.
    pub accuracy: Option<f64>,
    /// Top-5 accuracy in percent.
    pub top5: Option<f64>,
    /// Learning rate at the row's step.
    pub lr: Option<f64>,
    /// Throughput over the row's batches.
    pub images_per_sec: Option<f64>,
}

impl Row {
    /// The row as a CSV line, without the newline.
    pub fn to_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{}",
            self.step,
            cell(Some(self.epoch)),
            self.split,
            cell(self.loss),
            cell(self.accuracy),
            cell(self.top5),
            cell(self.lr),
            self.images_per_sec.map(|v| format!("{v:.1}")).unwrap_or_default(),
        )
    }
}

/// A CSV cell: empty when unknown, "NaN"/"inf"/"-inf" when not finite, else up to six
/// significant digits (scientific notation for very small or large magnitudes).
pub fn cell(v: Option<f64>) -> String {
    let Some(v) = v else {
        return String::new();
    };
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if (1e-3..1e7).contains(&a) {
        let decimals = (5 - a.log10().floor() as i32).clamp(0, 9) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    } else {
        let s = format!("{v:.5e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let m = mantissa.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{exp}")
            }
            None => s,
        }
    }
}

/// Parses the text of a metrics file by header names (column order does not matter, unknown
/// columns are ignored; `step` and `split` are required). Lines whose step or epoch does not
/// parse, such as one cut short by a crash, are skipped.
pub fn parse(text: &str) -> Result<Vec<Row>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| anyhow!("the file is empty (no header line)"))?;
    let columns: HashMap<&str, usize> = header.split(',').enumerate().map(|(i, name)| (name.trim(), i)).collect();
    let required = |name: &str| {
        columns.get(name).copied().ok_or_else(|| anyhow!("header {header:?} has no `{name}` column; expected {HEADER}"))
    };
    let (step_col, split_col) = (required("step")?, required("split")?);
    let optional = |name: &str| columns.get(name).copied();
    let epoch_col = optional("epoch");
    let (loss_col, acc_col, top5_col, lr_col, ips_col) =
        (optional("loss"), optional("accuracy"), optional("top5"), optional("lr"), optional("images_per_sec"));
    let mut rows = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let value = |col: Option<usize>| col.and_then(|c| cells.get(c)).and_then(|s| s.parse::<f64>().ok());
        let Some(step) = cells.get(step_col).and_then(|s| s.parse::<u64>().ok()) else { continue };
        let epoch = match epoch_col {
            Some(_) => match value(epoch_col) {
                Some(e) => e,
                None => continue,
            },
            None => 0.0,
        };
        rows.push(Row {
            step,
            epoch,
            split: cells.get(split_col).copied().unwrap_or_default().to_ascii_lowercase(),
            loss: value(loss_col),
            accuracy: value(acc_col),
            top5: value(top5_col),
            lr: value(lr_col),
            images_per_sec: value(ips_col),
        });
    }
    Ok(rows)
}

/// Reads and parses the metrics file at `path`.
pub fn read(path: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read metrics file {}", path.display()))?;
    parse(&text).with_context(|| format!("cannot parse metrics file {}", path.display()))
}

/// Opens the metrics file at `path` for appending rows.
///
/// A new run (`resume` is `None`) starts the file over. A run resumed at optimizer step `s`
/// (`resume` is `Some(s)`, the step of the checkpoint it starts from) keeps the rows up to that
/// step and drops the later ones, logged by the run that was interrupted before its next
/// checkpoint (the resumed run logs them again), and a last line cut short by a crash. A file
/// with another header is refused; a missing or empty one is started over.
pub fn open(path: &Path, resume: Option<u64>) -> Result<File> {
    let text = match resume {
        Some(_) if path.exists() => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        _ => String::new(),
    };
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut kept = format!("{HEADER}\n");
    if let (Some(step), Some(header)) = (resume, complete.lines().next()) {
        if header.trim() != HEADER {
            bail!("cannot resume {}: its header is {header:?}, expected {HEADER:?}", path.display());
        }
        for row in parse(complete)?.into_iter().filter(|row| row.step <= step) {
            kept += &row.to_line();
            kept.push('\n');
        }
    }
    vit_io::write_atomic(path, kept.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    OpenOptions::new().append(true).open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// Appends `row` to the metrics file at `path` (which must exist, with its header) and syncs it.
pub fn append(path: &Path, row: &Row) -> Result<()> {
    use std::io::Write;
    let mut file =
        OpenOptions::new().append(true).open(path).with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(file, "{}", row.to_line())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot append to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(cell(None), "");
        assert_eq!(cell(Some(0.0)), "0");
        assert_eq!(cell(Some(1.23456789)), "1.23457");
        assert_eq!(cell(Some(56.2)), "56.2");
        assert_eq!(cell(Some(100.0)), "100");
        assert_eq!(cell(Some(4.5e-4)), "4.5e-4");
        assert_eq!(cell(Some(0.002)), "0.002");
        assert_eq!(cell(Some(f64::NAN)), "NaN");
        assert_eq!(cell(Some(-2.5)), "-2.5");
        for v in [1.23456789, 4.5e-4, 1e-9, 123456789.0, 0.001] {
            let back: f64 = cell(Some(v)).parse().unwrap();
            assert!((back - v).abs() <= v.abs() * 1e-5);
        }
    }

    #[test]
    fn rows_round_trip_and_parse_by_name() {
        let row = Row {
            step: 12,
            epoch: 1.25,
            split: "valid".into(),
            loss: Some(0.5),
            accuracy: Some(62.5),
            top5: None,
            lr: Some(f64::INFINITY),
            images_per_sec: Some(812.5),
        };
        let text = format!("{HEADER}\n{}\n", row.to_line());
        assert_eq!(parse(&text).unwrap(), vec![row]);
        let swapped = "split,extra,step,loss\nTRAIN,x,7,1.5\nvalid,y,oops,1\n";
        let rows = parse(swapped).unwrap();
        assert_eq!(rows, vec![Row { step: 7, split: "train".into(), loss: Some(1.5), ..Row::default() }]);
        assert!(format!("{:#}", parse("").unwrap_err()).contains("empty"));
        assert!(format!("{:#}", parse("a,b\n1,2\n").unwrap_err()).contains("no `step` column"));
    }

    #[test]
    fn resuming_keeps_the_rows_up_to_the_checkpoint_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let rows = "2,0.5,train,2.5,,,,\n4,1,valid,2,,,,\n6,1.5,train,1.5,,,,\n";
        std::fs::write(&path, format!("{HEADER}\n{rows}7,1.75,tra")).unwrap();
        drop(open(&path, Some(4)).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{HEADER}\n2,0.5,train,2.5,,,,\n4,1,valid,2,,,,\n")
        );

        // Appends go after the kept rows.
        let mut file = open(&path, Some(4)).unwrap();
        std::io::Write::write_all(&mut file, b"6,1.5,train,1,,,,\n").unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("4,1,valid,2,,,,\n6,1.5,train,1,,,,\n"));

        // A new run starts over; a missing or header-less file is started over on resume too.
        drop(open(&path, None).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{HEADER}\n"));
        std::fs::write(&path, "step,ep").unwrap();
        drop(open(&path, Some(3)).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{HEADER}\n"));
        let other = dir.path().join("sub");
        std::fs::create_dir(&other).unwrap();
        drop(open(&other.join("metrics.csv"), Some(2)).unwrap());
        assert!(other.join("metrics.csv").is_file());

        std::fs::write(&path, "step,loss\n1,2\n").unwrap();
        let err = format!("{:#}", open(&path, Some(1)).unwrap_err());
        assert!(err.contains("header") && err.contains("metrics.csv"), "{err}");
    }
}
