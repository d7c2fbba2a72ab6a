#!/usr/bin/env python3
"""Speed and peak memory of vit-burn against PyTorch + Hugging Face transformers.

Runs the cases of `vit-train bench` (same models, batch sizes, masks and step definitions) in
PyTorch with `attn_implementation="eager"` and `"sdpa"` (float32, CPU), and in vit-burn
(`vit-train bench --json`). Every case runs in its own process, so that the peak resident set
size (VmHWM) belongs to that case alone. Cases are interleaved (eager, sdpa, vit-burn for each
case) so that a change in machine load hits all three alike.

Prints a markdown table and writes it to --out. Usually started by scripts/bench_vs_pytorch.sh.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# name: (kind, model, batch, layers); kept equal to CASES in vit-train/src/bench.rs.
CASES = {
    "infer-vit-b16-224-b1": ("inference", "b16", 1, 12),
    "infer-vit-b16-224-b8": ("inference", "b16", 8, 12),
    "infer-vit-s16-224-b1": ("inference", "s16", 1, 12),
    "infer-vit-s16-224-b8": ("inference", "s16", 8, 12),
    "infer-vit-ti16-224-b1": ("inference", "ti16", 1, 12),
    "infer-vit-ti16-224-b8": ("inference", "ti16", 8, 12),
    "train-vit-ti4-32-6l-b64": ("train", "ti4", 64, 6),
    "train-vit-ti4-32-12l-b64": ("train", "ti4", 64, 12),
    "simmim-vit-ti4-32-6l-b64": ("simmim", "ti4", 64, 6),
    "train-vit-w64-32-4l-b64": ("train", "w64", 64, 4),
}
MASK_RATIO = 0.6
LR = 1e-4

DIMS = {  # hidden, heads, mlp, image, patch, labels
    "b16": (768, 12, 3072, 224, 16, 1000),
    "s16": (384, 6, 1536, 224, 16, 1000),
    "ti16": (192, 3, 768, 224, 16, 1000),
    "ti4": (192, 3, 768, 32, 4, 10),
    "w64": (64, 4, 256, 32, 4, 10),
}


def proc_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    if field == "VmHWM":  # not Linux: ru_maxrss is KiB on Linux, bytes on macOS
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0
    return None


def select(patterns: list[str]) -> list[str]:
    if not patterns or "all" in patterns:
        return list(CASES)
    out: list[str] = []
    for p in patterns:
        hits = [p] if p in CASES else [c for c in CASES if c.startswith(p)]
        if not hits:
            sys.exit(f"unknown case {p!r}; cases: {', '.join(CASES)}")
        out += [h for h in hits if h not in out]
    return out


# ---------------------------------------------------------------------------------------------
# The PyTorch child: one case, one attention implementation, one JSON line on stdout.


def torch_child(case: str, attn: str, warmup: int, iters: int, threads: int, bf16: bool = False) -> dict:
    t_start = time.perf_counter()
    import contextlib

    import torch

    # bf16: what a PyTorch user types, `torch.autocast("cpu", dtype=torch.bfloat16)` around the
    # forward pass (and the loss), float32 weights and optimizer.
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    from transformers import ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    kind, model_name, batch, layers = CASES[case]
    hidden, heads, mlp, image, patch, labels = DIMS[model_name]
    config = ViTConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=mlp,
        image_size=image,
        patch_size=patch,
        encoder_stride=patch,
        num_labels=labels,
    )
    x = torch.randn(batch, 3, image, image)
    loss_value = None

    if kind == "inference":
        model = ViTForImageClassification._from_config(config, attn_implementation=attn).eval()

        def step():
            with torch.inference_mode(), autocast():
                model(pixel_values=x).logits

    else:
        if kind == "train":
            model = ViTForImageClassification._from_config(config, attn_implementation=attn)
            y = torch.arange(batch) % labels
            inputs = {"pixel_values": x, "labels": y}
        else:
            model = ViTForMaskedImageModeling._from_config(config, attn_implementation=attn)
            patches = (image // patch) ** 2
            masked = int(MASK_RATIO * patches)
            g = torch.Generator().manual_seed(0)
            mask = torch.zeros(batch, patches, dtype=torch.bool)
            for i in range(batch):
                mask[i, torch.randperm(patches, generator=g)[:masked]] = True
            inputs = {"pixel_values": x, "bool_masked_pos": mask}
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)

        def step():
            nonlocal loss_value
            with autocast():
                loss = model(**inputs).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss_value = float(loss.detach())

    assert model.config._attn_implementation == attn, model.config._attn_implementation
    setup_rss = proc_mib("VmRSS")
    for _ in range(warmup):
        step()
    setup_s = time.perf_counter() - t_start
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    median = statistics.median(times)
    return {
        "case": case,
        "impl": f"torch-{attn}" + ("-bf16" if bf16 else ""),
        "kind": kind,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "warmup": warmup,
        "iters": iters,
        "setup_s": setup_s,
        "ms_per_iter_median": median,
        "ms_per_iter_min": min(times),
        "ms_per_iter_mean": statistics.fmean(times),
        "images_per_s": batch / (median / 1e3),
        "peak_rss_mib": proc_mib("VmHWM"),
        "setup_rss_mib": setup_rss,
        "loss": loss_value,
    }


# ---------------------------------------------------------------------------------------------
# The parent.


def run_child(cmd: list[str], label: str) -> dict | None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.lstrip().startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"  {label}: FAILED (exit {proc.returncode})\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def machine_info(vitburn: str, threads: int) -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        mem = "? RAM"
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
        rev += "+dirty" if dirty.strip() else ""
    except OSError:
        rev = "?"
    versions = subprocess.run(
        [sys.executable, "-c", "import torch, transformers; print(torch.__version__, transformers.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.split()
    return [
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {cpu}, {os.cpu_count()} logical CPUs, {mem}; {platform.system()} {platform.release()}",
        f"- PyTorch {versions[0] if versions else '?'}, transformers {versions[1] if len(versions) > 1 else '?'}, "
        f"float32, {threads} threads; vit-burn {rev} ({vitburn})",
    ]


def fmt(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vitburn", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "vit-train"))
    ap.add_argument("--case", action="append", default=[], help="case name or prefix (repeatable; default all)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every implementation of a case this many times, interleaved (A B C A B C ...), "
                         "and report the run with the median images/s: on a shared or throttling machine this "
                         "keeps a slow minute from deciding a ratio")
    ap.add_argument("--out", default="bench-results.md", help="markdown file for the table")
    ap.add_argument("--raw", help="also write every measurement as JSON lines to this file")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--skip-vitburn", action="store_true")
    ap.add_argument("--torch-child", metavar="CASE", help=argparse.SUPPRESS)
    ap.add_argument("--attn", choices=["eager", "sdpa"], default="eager", help=argparse.SUPPRESS)
    ap.add_argument("--bf16", action="store_true",
                    help="also measure bfloat16: PyTorch under torch.autocast(cpu, bfloat16) (sdpa attention) "
                         "against vit-burn's `bench --precision bf16`, in a second table")
    args = ap.parse_args()

    if args.torch_child:
        child = torch_child(args.torch_child, args.attn, args.warmup, args.iters, args.threads, args.bf16)
        print(json.dumps(child), flush=True)
        return

    cases = select(args.case)
    if not args.skip_vitburn and not os.access(args.vitburn, os.X_OK):
        sys.exit(f"{args.vitburn} not found: build it with `cargo build --release -p vit-train`")
    load_before = os.getloadavg()
    results: dict[tuple[str, str], dict] = {}
    raw = []
    common = ["--warmup", str(args.warmup), "--iters", str(args.iters)]
    for case in cases:
        runs = []
        if not args.skip_torch:
            for attn in ("eager", "sdpa"):
                cmd = [sys.executable, os.path.abspath(__file__), "--torch-child", case, "--attn", attn,
                       "--threads", str(args.threads), *common]
                runs.append((f"torch-{attn}", cmd))
        if not args.skip_vitburn:
            runs.append(("vit-burn", [args.vitburn, "bench", "--json", "--case", case, *common]))
        if args.bf16 and not args.skip_torch:
            cmd = [sys.executable, os.path.abspath(__file__), "--torch-child", case, "--attn", "sdpa", "--bf16",
                   "--threads", str(args.threads), *common]
            runs.append(("torch-sdpa-bf16", cmd))
        if args.bf16 and not args.skip_vitburn:
            runs.append(("vit-burn-bf16",
                         [args.vitburn, "bench", "--json", "--case", case, "--precision", "bf16", *common]))
        measured: dict[str, list[dict]] = {}
        for round_ in range(args.rounds):
            for impl, cmd in runs:
                r = run_child(cmd, f"{case} {impl}")
                if r is not None:
                    r["impl"], r["round"] = impl, round_ + 1
                    measured.setdefault(impl, []).append(r)
                    raw.append(r)
                    print(f"  {case:<26} {impl:<12} {r['images_per_s']:9.1f} img/s  {fmt(r['peak_rss_mib'], 0):>6} MiB",
                          file=sys.stderr, flush=True)
        for impl, rs in measured.items():
            # The run with the median speed (the lower middle one for an even count).
            results[(case, impl)] = sorted(rs, key=lambda r: r["images_per_s"])[(len(rs) - 1) // 2]
    load_after = os.getloadavg()

    def get(case: str, impl: str, key: str):
        r = results.get((case, impl))
        return None if r is None else r.get(key)

    lines = ["# vit-burn vs PyTorch + transformers (CPU, float32)", ""]
    lines += machine_info(args.vitburn, args.threads)
    lines += [
        f"- {args.warmup} warmup + {args.iters} timed iterations per case, median reported; "
        + (f"{args.rounds} rounds, the implementations interleaved within each, the run with the median "
           "images/s reported; " if args.rounds > 1 else "")
        + "each case and implementation in its own process; peak MiB = the process's VmHWM (libraries, weights, "
        "activations, optimizer state: the Python + torch runtime alone is a few hundred MiB)",
        f"- load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f}",
        "- ratio = vit-burn img/s ÷ PyTorch img/s (> 1: vit-burn faster); memory ratio = vit-burn peak ÷ PyTorch eager peak",
        "- peak − setup = VmHWM minus the RSS after building the model and inputs (runtime + weights): the "
        "activations, gradients, optimizer state and allocator slack of the step itself",
        "",
        "| case | PyTorch eager img/s | PyTorch sdpa img/s | vit-burn img/s | ratio vs eager | ratio vs sdpa "
        "| peak MiB (eager / sdpa / vit-burn) | memory ratio | peak − setup MiB (eager / sdpa / vit-burn) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in cases:
        e, s, o = (get(case, i, "images_per_s") for i in ("torch-eager", "torch-sdpa", "vit-burn"))
        me, ms, mo = (get(case, i, "peak_rss_mib") for i in ("torch-eager", "torch-sdpa", "vit-burn"))

        def work(impl: str):
            peak, setup = get(case, impl, "peak_rss_mib"), get(case, impl, "setup_rss_mib")
            return None if peak is None or setup is None else peak - setup

        we, ws, wo = (work(i) for i in ("torch-eager", "torch-sdpa", "vit-burn"))
        lines.append(
            f"| {case} | {fmt(e)} | {fmt(s)} | {fmt(o)} | {ratio(o, e)} | {ratio(o, s)} "
            f"| {fmt(me, 0)} / {fmt(ms, 0)} / {fmt(mo, 0)} | {ratio(mo, me)} "
            f"| {fmt(we, 0)} / {fmt(ws, 0)} / {fmt(wo, 0)} |"
        )
    if args.bf16:
        lines += [
            "",
            "## bfloat16 (mixed precision)",
            "",
            "PyTorch: `torch.autocast(\"cpu\", dtype=torch.bfloat16)` around forward and loss, sdpa attention; "
            "vit-burn: `vit-train bench --precision bf16` (`run.precision = \"bf16\"`). float32 weights and "
            "optimizer in both.",
            "",
            "| case | PyTorch f32 sdpa img/s | PyTorch bf16 img/s | vit-burn f32 img/s | vit-burn bf16 img/s "
            "| ratio bf16 (vit-burn ÷ PyTorch) | PyTorch bf16 ÷ f32 | vit-burn bf16 ÷ f32 "
            "| peak MiB bf16 (PyTorch / vit-burn) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for case in cases:
            ts, tb, o, ob = (get(case, i, "images_per_s") for i in ("torch-sdpa", "torch-sdpa-bf16", "vit-burn", "vit-burn-bf16"))
            mt, mo = (get(case, i, "peak_rss_mib") for i in ("torch-sdpa-bf16", "vit-burn-bf16"))
            lines.append(
                f"| {case} | {fmt(ts)} | {fmt(tb)} | {fmt(o)} | {fmt(ob)} | {ratio(ob, tb)} | {ratio(tb, ts)} "
                f"| {ratio(ob, o)} | {fmt(mt, 0)} / {fmt(mo, 0)} |"
            )
    table = "\n".join(lines) + "\n"
    print(table)
    with open(args.out, "w") as f:
        f.write(table)
    print(f"wrote {args.out}", file=sys.stderr)
    if args.raw:
        with open(args.raw, "w") as f:
            for r in raw:
                f.write(json.dumps(r) + "\n")
    per_case = (0 if args.skip_torch else 2) + (0 if args.skip_vitburn else 1)
    if args.bf16:
        per_case += (0 if args.skip_torch else 1) + (0 if args.skip_vitburn else 1)
    expected = len(cases) * per_case * args.rounds
    if len(raw) != expected:
        sys.exit(f"{expected - len(raw)} measurement(s) failed")


if __name__ == "__main__":
    main()
