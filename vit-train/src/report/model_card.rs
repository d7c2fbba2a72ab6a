//! The files that make an exported model directory read like one on the Hub: a `README.md` model
//! card as `transformers`' Trainer writes one (base model, dataset, the exported checkpoint's
//! metrics, hyper-parameters, the results table, framework versions) and `training_args.json`, the
//! resolved run config under the names of HF's `TrainingArguments` where it has them.

use serde_json::{Value, json};

use super::metrics_csv::{Row, cell};
use crate::run::config::{RunConfig, Task};

/// The model card's file name.
pub const MODEL_CARD: &str = "README.md";
/// The training arguments' file name.
pub const TRAINING_ARGS: &str = "training_args.json";

/// What the card says about the exported checkpoint.
pub struct CardInput<'a> {
    /// The run's config.
    pub config: &'a RunConfig,
    /// The run's name (its output directory's name).
    pub name: &'a str,
    /// Every row of the run's `metrics.csv`.
    pub rows: &'a [Row],
    /// The optimizer step of the exported checkpoint (its validation row), when known.
    pub step: Option<u64>,
}

fn dataset_name(config: &RunConfig) -> String {
    match config.data.dataset.name() {
        "imagefolder" => "imagefolder".to_string(),
        name => name.to_string(),
    }
}

fn base_model(config: &RunConfig) -> Option<String> {
    config.model.pretrained.as_ref().map(|p| p.display().to_string())
}

/// Writes the model card and the training arguments into the model directory `dir`.
pub fn write_card_files(dir: &std::path::Path, input: &CardInput<'_>) -> std::io::Result<()> {
    vit_io::write_atomic(&dir.join(MODEL_CARD), model_card(input).as_bytes())?;
    let args = serde_json::to_string_pretty(&training_args(input.config)).map_err(std::io::Error::other)?;
    vit_io::write_atomic(&dir.join(TRAINING_ARGS), args.as_bytes())
}

/// The `README.md` model card.
pub fn model_card(input: &CardInput<'_>) -> String {
    let c = input.config;
    let dataset = dataset_name(c);
    let task = match c.task {
        Task::Classification => "image-classification",
        Task::Simmim => "masked-image-modeling",
    };
    let exported = input.step.and_then(|s| input.rows.iter().find(|r| r.split == "valid" && r.step == s));
    let mut out = String::from("---\nlibrary_name: vit-burn\n");
    if let Some(base) = base_model(c) {
        out += &format!("base_model: {base}\n");
    }
    out += &format!("tags:\n- {task}\n- vit\n- vit-burn\n- generated_from_trainer\ndatasets:\n- {dataset}\n");
    if c.task == Task::Classification {
        out += "metrics:\n- accuracy\n";
    }
    out += &format!("pipeline_tag: {task}\n---\n\n# {}\n\n", input.name);
    out += &match base_model(c) {
        Some(base) => format!("This model is a fine-tuned version of `{base}` on the {dataset} dataset.\n"),
        None => format!("This model was trained from scratch on the {dataset} dataset.\n"),
    };
    if let Some(row) = exported {
        out += "It achieves the following results on the evaluation set:\n";
        if let Some(loss) = row.loss {
            out += &format!("- Loss: {}\n", cell(Some(loss)));
        }
        if let Some(acc) = row.accuracy {
            out += &format!("- Accuracy: {}%\n", cell(Some(acc)));
        }
        if let Some(top5) = row.top5 {
            out += &format!("- Top-5 accuracy: {}%\n", cell(Some(top5)));
        }
        out += &format!("- Step: {} (epoch {})\n", row.step, cell(Some(row.epoch)));
    }
    out += "\n## Training procedure\n\n### Training hyperparameters\n\nThe following hyperparameters were used during training:\n";
    let (o, d, r) = (&c.optimizer, &c.data, &c.run);
    let devices = r.devices.len().max(1);
    let mut params = vec![
        ("learning_rate", o.lr.to_string()),
        ("train_batch_size", d.batch_size.to_string()),
        ("eval_batch_size", d.eval_batch_size().to_string()),
        ("seed", r.seed.to_string()),
    ];
    if o.grad_accumulation > 1 || devices > 1 {
        params.push(("gradient_accumulation_steps", o.grad_accumulation.to_string()));
        params.push(("total_train_batch_size", (d.batch_size * o.grad_accumulation * devices).to_string()));
    }
    if r.precision.is_reduced() {
        // Trainer's wording for `--bf16` and `--fp16`.
        params.push(("mixed_precision_training", "Native AMP".to_string()));
    }
    params.extend([
        (
            "optimizer",
            format!(
                "AdamW with betas=({},{}), epsilon={} and weight_decay={}",
                o.beta1, o.beta2, o.eps, o.weight_decay
            ),
        ),
        ("lr_scheduler_type", format!("{:?}", o.schedule).to_lowercase()),
    ]);
    match o.warmup_steps {
        Some(steps) => params.push(("lr_scheduler_warmup_steps", steps.to_string())),
        None if o.warmup_ratio > 0.0 => params.push(("lr_scheduler_warmup_ratio", o.warmup_ratio.to_string())),
        None => {}
    }
    match r.max_steps {
        Some(steps) => params.push(("training_steps", steps.to_string())),
        None => params.push(("num_epochs", r.epochs.to_string())),
    }
    if o.label_smoothing > 0.0 {
        params.push(("label_smoothing_factor", o.label_smoothing.to_string()));
    }
    params.push(("max_grad_norm", o.max_grad_norm.to_string()));
    for (k, v) in params {
        out += &format!("- {k}: {v}\n");
    }
    let valid: Vec<&Row> = input.rows.iter().filter(|r| r.split == "valid").collect();
    if !valid.is_empty() {
        out += "\n### Training results\n\n| Training Loss | Epoch | Step | Validation Loss |";
        let accuracy = c.task == Task::Classification;
        if accuracy {
            out += " Accuracy |";
        }
        out += "\n|:---:|:---:|:---:|:---:|";
        if accuracy {
            out += ":---:|";
        }
        out += "\n";
        for v in valid {
            let train = input.rows.iter().rfind(|t| t.split == "train" && t.step <= v.step).and_then(|t| t.loss);
            let train = train.map_or("No log".to_string(), |l| cell(Some(l)));
            out += &format!("| {train} | {} | {} | {} |", cell(Some(v.epoch)), v.step, cell(v.loss));
            if accuracy {
                out += &format!(" {} |", cell(v.accuracy));
            }
            out += "\n";
        }
    }
    out += &format!(
        "\n### Framework versions\n\n- vit-burn {}\n- Burn 0.22\n\nThe weights load with `transformers` \
         (`ViTFor{}.from_pretrained`).\n",
        env!("CARGO_PKG_VERSION"),
        match c.task {
            Task::Classification => "ImageClassification",
            Task::Simmim => "MaskedImageModeling",
        }
    );
    out
}

/// `training_args.json`: the resolved run config, with the `TrainingArguments` names HF users look
/// for at the top and the whole config under `vit_burn_run_config`.
pub fn training_args(config: &RunConfig) -> Value {
    let (o, d, r) = (&config.optimizer, &config.data, &config.run);
    json!({
        "output_dir": r.output_dir,
        "learning_rate": o.lr,
        "per_device_train_batch_size": d.batch_size,
        "per_device_eval_batch_size": d.eval_batch_size(),
        "gradient_accumulation_steps": o.grad_accumulation,
        "adam_beta1": o.beta1,
        "adam_beta2": o.beta2,
        "adam_epsilon": o.eps,
        "weight_decay": o.weight_decay,
        "max_grad_norm": o.max_grad_norm,
        "num_train_epochs": r.epochs,
        "max_steps": r.max_steps.map_or(-1, |s| s as i64),
        "lr_scheduler_type": format!("{:?}", o.schedule).to_lowercase(),
        "warmup_ratio": o.warmup_ratio,
        "warmup_steps": o.warmup_steps.unwrap_or(0),
        "label_smoothing_factor": o.label_smoothing,
        "logging_steps": r.log_every,
        "eval_steps": r.eval_every,
        "save_total_limit": r.keep_last,
        "seed": r.seed,
        "bf16": r.precision == vit_model::Precision::Bf16,
        "fp16": r.precision == vit_model::Precision::F16,
        "vit_burn_run_config": serde_json::to_value(config).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "task = \"classification\"\n[model]\npretrained = \"google/vit-base\"\n[data]\n\
                          dataset = \"cifar10\"\npath = \"d\"\nimage_size = 32\n[optimizer]\nlr = 1e-4\n\
                          grad_accumulation = 2\n";

    fn row(step: u64, split: &str, loss: f64, accuracy: Option<f64>) -> Row {
        Row { step, epoch: step as f64 / 10.0, split: split.into(), loss: Some(loss), accuracy, ..Row::default() }
    }

    #[test]
    fn the_card_names_the_base_model_the_data_the_metrics_and_the_hyper_parameters() {
        let config = RunConfig::parse(CONFIG, &[]).unwrap();
        let rows =
            vec![row(5, "train", 2.0, None), row(10, "valid", 1.5, Some(40.0)), row(20, "valid", 1.25, Some(55.5))];
        let card = model_card(&CardInput { config: &config, name: "my-run", rows: &rows, step: Some(20) });
        for expected in [
            "base_model: google/vit-base",
            "- cifar10",
            "fine-tuned version of `google/vit-base` on the cifar10 dataset",
            "- Loss: 1.25",
            "- Accuracy: 55.5%",
            "- learning_rate: 0.0001",
            "- gradient_accumulation_steps: 2",
            "- total_train_batch_size: 128",
            "| 2 | 1 | 10 | 1.5 | 40 |",
            "| 2 | 2 | 20 | 1.25 | 55.5 |",
            "vit-burn",
        ] {
            assert!(card.contains(expected), "expected `{expected}` in:\n{card}");
        }
        let args = training_args(&config);
        assert_eq!(args["learning_rate"], 1e-4);
        assert_eq!(args["gradient_accumulation_steps"], 2);
        assert_eq!(args["vit_burn_run_config"]["data"]["dataset"], "cifar10");
        assert_eq!((args["bf16"].as_bool(), args["fp16"].as_bool()), (Some(false), Some(false)));
        assert!(!card.contains("mixed_precision_training"));

        // Mixed precision is named as Trainer names `--bf16` / `--fp16`.
        let config = RunConfig::parse(&format!("{CONFIG}[run]\nprecision = \"bf16\"\n"), &[]).unwrap();
        let card = model_card(&CardInput { config: &config, name: "my-run", rows: &rows, step: Some(20) });
        assert!(card.contains("- mixed_precision_training: Native AMP"), "{card}");
        let args = training_args(&config);
        assert_eq!((args["bf16"].as_bool(), args["fp16"].as_bool()), (Some(true), Some(false)));
    }
}
