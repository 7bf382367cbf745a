"""Sim-to-real benchmark: train the recognizer on a recipe's images only, then read a real labelled folder.

Run:  .venv/bin/python benchmarks/sim2real.py --recipe seven-segment --real /work/realsets/fuelpump-7seg
          [--pages 4000] [--minutes 20] [--seeds 0 1 2] [--work /tmp/sim2real-<set>]

Steps: generate `--pages` pages of the recipe with line crops (data seed 0) for training and `--val-pages`
(data seed 1) for validation and early stopping; train the `small` recognizer within `--minutes` per training
seed (as benchmarks/train_small.py does); read the synthetic validation lines and the real folder's images
(labels.tsv, as `synthtext-industrial evaluate --images` reads it); print one table: synthetic string accuracy,
real string and character accuracy, the gap, then the commonest character confusions on the real set (from an
edit-distance alignment) and repeated whole-string errors. Writes WORK/<run>/<set>-predictions.csv and
WORK/<run>/<set>-failures.png (the worst real crops with truth and reading), and WORK/report-<set>.json, named
by the real folder so that reading a finished run on another set keeps the first set's files.

With --adapt, each seed's run is then adapted to the real set's images without their labels
(`synthtext-industrial adapt`: self-training, docs/adapt.md) into WORK/run-seedN-adapted-<set folder>, reading
only the image files of the real folder's images/ (never labels.tsv), and scored on the real labels like the run;
with --bn, also the batch-norm-statistics-only adaptation (WORK/run-seedN-bn-<set folder>).

Scoring: the real folder's set.json (written by benchmarks/realsets/build.py) gives the rule (e.g. plates: only
Latin capitals and digits; IIIT5K: case-insensitive); --only / --ignore-case / --cut-at override it.
The real labels are only ever used to score; nothing here trains on them (--adapt trains on the images alone).
Defaults fit under 40 minutes per domain on a 2-core machine (about 2 min generating, --minutes training,
1 min reading).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "realsets"))
from common import Rule, caption_tile, char_accuracy, grid, load_set, rule_from, score  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", required=True, help="bundled recipe name or YAML path")
    parser.add_argument("--real", required=True, type=Path, help="folder with labels.tsv (and set.json)")
    parser.add_argument("--pages", type=int, default=4000, help="training pages")
    parser.add_argument("--val-pages", type=int, default=300, help="synthetic validation pages")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (weights, shuffling)")
    parser.add_argument("--backbone", default="small")
    parser.add_argument("--fit", action="store_true",
                        help="first fit the recipe to the real set's images (never its labels) with "
                             "`synthtext-industrial fit` and train on the fitted recipe (docs/fit.md)")
    parser.add_argument("--grammar", action="store_true",
                        help="also read the real set constrained to the recipe's text grammar (docs/grammar.md)")
    parser.add_argument("--augment", action="store_true", help="online photometric augmentation while training")
    parser.add_argument("--normalize", default="contrast", choices=["none", "contrast"],
                        help="the recognizer's input normalisation (RecognizerConfig.normalize)")
    parser.add_argument("--resize", default="stretch", choices=["stretch", "pad"],
                        help="lines stretched to the input or scaled and padded (RecognizerConfig.resize)")
    parser.add_argument("--head", default="skip", choices=["skip", "lstm"],
                        help="the recognizer's head (RecognizerConfig.head): skip also feeds each step's own "
                             "features to the logits")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from this trained recognizer run (its config is kept): e.g. an earlier run on "
                             "the same recipe, to pass the CTC plateau in a short budget. Synthetic-only either way")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="keep, validate and score an exponential moving average of the weights (decay per step)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1.5e-3)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder [default: /tmp/sim2real-<set>]")
    parser.add_argument("--only", default=None, help="score only these characters (overrides set.json)")
    parser.add_argument("--ignore-case", action="store_true", default=None, help="score case-insensitively")
    parser.add_argument("--cut-at", default=None, help="cut predictions at the first of these characters")
    parser.add_argument("--worst", type=int, default=36, help="real crops on the failure sheet")
    parser.add_argument("--retrain", action="store_true", help="train again even if a seed's run has finished")
    parser.add_argument("--adapt", action="store_true",
                        help="also self-train each run on the real images (not their labels) and score the result")
    parser.add_argument("--adapt-rounds", type=int, default=2, help="--adapt: rounds")
    parser.add_argument("--adapt-steps", type=int, default=300, help="--adapt: fine-tuning steps per round")
    parser.add_argument("--adapt-threshold", type=float, default=0.9, help="--adapt: pseudo-label confidence")
    parser.add_argument("--pseudo-weight", type=float, default=1.0,
                        help="--adapt: sampling weight of the pseudo-labelled real lines (synthetic: 1)")
    parser.add_argument("--adapt-learning-rate", type=float, default=1e-4, help="--adapt: peak learning rate")
    parser.add_argument("--adapt-no-grammar", action="store_true",
                        help="--adapt: keep pseudo-labels by confidence alone (default: also valid under the "
                             "recipe's grammar)")
    parser.add_argument("--bn", action="store_true",
                        help="also re-estimate only the batch-norm statistics on the real images, and score that")
    return parser.parse_args()


def scoring_rule(args: argparse.Namespace, meta: dict) -> Rule:
    rule = dict(meta.get("scoring", {}))
    for key, value in (("only", args.only), ("ignore_case", args.ignore_case), ("cut_at", args.cut_at)):
        if value is not None:
            rule[key] = value
    return rule_from(rule)


def make_data(recipe, work: Path, pages: int, val_pages: int) -> None:
    from synthtext_industrial.generate import generate

    for name, count, seed in (("train", pages, 0), ("val", val_pages, 1)):
        if finished_by_older_version(recipe, work / name, count, seed):
            continue
        t0 = time.perf_counter()
        summary = generate(recipe, work / name, count, seed=seed, shard_size=500)  # resumes if already there
        print(f"{name}: {summary.images} pages, {summary.crops} line crops (data seed {seed}), "
              f"{time.perf_counter() - t0:.0f} s")


def finished_by_older_version(recipe, folder: Path, count: int, seed: int) -> bool:
    """True for a complete dataset of this recipe and seed that only an earlier package version wrote.

    `generate` refuses to continue such a folder (another version may render differently), but a finished one
    needs no continuing: reusing it keeps a saved run's training data, so --adapt or --grammar can be measured
    on a run trained before a version bump. Said aloud, so the report is honest about what was read.
    """
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return False
    made = json.loads(manifest.read_text())
    from synthtext_industrial import __version__

    if (made.get("tool_version") == __version__ or not made.get("complete") or made.get("n") != count
            or made.get("seed") != seed or made.get("recipe_sha256") != recipe.sha256):
        return False
    print(f"{folder.name}: reusing {count} finished pages written by version {made['tool_version']} "
          f"(this is {__version__})")
    return True


def train(work: Path, run: Path, args: argparse.Namespace, seed: int) -> dict:
    from synthtext_industrial.train.fit_recognizer import train_recognizer
    from synthtext_industrial.train.loop import TrainSettings
    from synthtext_industrial.train.recognizer import RecognizerConfig

    finished = (run / "sim2real-done.json").exists() and not args.retrain
    if finished and json.loads((run / "training.json").read_text())["settings"].get("ema", 0.0) != args.ema:
        print(f"seed {seed}: the finished run {run} was trained with another --ema; training again")
        finished = False
    if finished:
        print(f"seed {seed}: reusing the finished run {run}")
        return json.loads((run / "sim2real-done.json").read_text())
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    settings = TrainSettings(epochs=1000, batch_size=args.batch_size, steps_per_epoch=200, patience=1000,
                             max_seconds=args.minutes * 60 - 60, learning_rate=args.learning_rate,
                             schedule="cosine", seed=seed, augment=args.augment, ema=args.ema)
    metrics = train_recognizer([work / "train"], run, RecognizerConfig(backbone=args.backbone,
                                                                               normalize=args.normalize,
                                                                               resize=args.resize,
                                                                               head=args.head), settings,
                               val=work / "val", init=args.init)
    done = {"train_minutes": (time.perf_counter() - t0) / 60,
            "lines_seen": metrics["history"][-1]["step"] * args.batch_size,
            "best_epoch": metrics["best"]["epoch"] + 1}
    (run / "sim2real-done.json").write_text(json.dumps(done) + "\n")
    return done


def unlabelled_images(real: Path) -> Path:
    """The folder adapt reads: the set's images/ (its top level also holds sheet.png, which shows the labels)."""
    return real / "images" if (real / "images").is_dir() else real


def adapt_run(work: Path, run: Path, real: Path, args: argparse.Namespace, seed: int, bn: bool) -> tuple[Path, dict]:
    """(adapted run, its adapt.json): self-training (or batch-norm statistics) on the real images only."""
    from synthtext_industrial.train.adapt import AdaptSettings, adapt, adapt_batchnorm

    out = Path(f"{run}-{'bn' if bn else 'adapted'}-{real.name}")  # one per real set: never another set's
    settings = AdaptSettings(rounds=args.adapt_rounds, steps=args.adapt_steps, threshold=args.adapt_threshold,
                             pseudo_weight=args.pseudo_weight, batch_size=args.batch_size,
                             learning_rate=args.adapt_learning_rate, augment=args.augment, seed=seed)
    grammar = None if args.adapt_no_grammar else "run"
    if (out / "adapt.json").exists() and not args.retrain:
        record = json.loads((out / "adapt.json").read_text())
        same = bn or (record.get("settings") == settings.model_dump()
                      and (record.get("grammar") is None) == (grammar is None))
        if same and record.get("source") == str(run):
            print(f"seed {seed}: reusing the adapted run {out}")
            return out, record
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    if bn:
        record = adapt_batchnorm(run, unlabelled_images(real), out, batch_size=64, grammar=None)
    else:
        record = adapt(run, unlabelled_images(real), out, settings, data=[work / "train"], val=work / "val",
                       grammar=grammar)
    record["minutes"] = (time.perf_counter() - t0) / 60
    (out / "adapt.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return out, record


def read(run: Path, items: list, grammar=None) -> list:
    from synthtext_industrial.train.evaluate import predict_all
    from synthtext_industrial.train.runs import load_recognizer

    model, config = load_recognizer(run)
    return predict_all(model, config, items, grammar=grammar)


def write_predictions(path: Path, predictions: list, rule: Rule) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "truth", "prediction", "scored_truth", "scored_prediction", "correct",
                         "char_accuracy", "confidence"])
        for p in predictions:
            t, q = rule.pair(p.truth, p.text)
            writer.writerow([p.source, p.truth, p.text, t, q, int(t == q), f"{char_accuracy(t, q):.4f}",
                             f"{p.confidence:.4f}"])


def failure_sheet(path: Path, predictions: list, rule: Rule, worst: int) -> None:
    """The worst-read real crops (lowest character accuracy, then lowest confidence) with truth and reading."""
    scored = []
    for k, p in enumerate(predictions):
        t, q = rule.pair(p.truth, p.text)
        if t != q:
            scored.append((char_accuracy(t, q), p.confidence, k, p))
    scored.sort(key=lambda s: s[:3])
    tiles = [caption_tile(p.image, [f"truth {p.truth}", f"read  {p.text}  (chars {acc:.2f}, conf {conf:.2f})"])
             for acc, conf, _, p in scored[:worst]]
    if tiles:
        cv2.imwrite(str(path), grid(tiles, columns=6))


def spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return (f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} "
            f"(min {min(values):.4f}, max {max(values):.4f})")


def main() -> None:
    args = parse_args()
    from synthtext_industrial import load_recipe
    from synthtext_industrial.train.evaluate import dataset_lines, labelled_images

    rows, meta = load_set(args.real)
    rule = scoring_rule(args, meta)
    set_name = meta.get("name", args.real.name)
    work = args.work or Path(f"/tmp/sim2real-{set_name}")
    if work.exists() and any(work.iterdir()) and not any((work / d).exists() for d in ("train", "fit")):
        raise SystemExit(f"{work} exists and does not look like this benchmark's scratch folder; choose --work")
    work.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(args.recipe)
    if args.fit:  # the images folder only: labels.tsv and the labelled sheet stay unread
        from synthtext_industrial.domain import fit, gap_verdict

        fitted = work / "fit" / "fitted.yaml"
        if not fitted.exists():
            fit(args.real / "images", recipe, work / "fit", pages=200)
        fit_report = json.loads((work / "fit" / "report.json").read_text(encoding="utf-8"))
        gap, fitted_gap = fit_report["gap_mmd2"], fit_report["fitted_gap_mmd2"]
        print(f"fit: domain gap recipe {gap:.4f}, fitted {fitted_gap:.4f}")
        verdict = gap_verdict(gap, fitted_gap, str(recipe.source))
        if verdict:
            print(f"fit: {verdict}; trained on it anyway, as asked")
        recipe = load_recipe(fitted)
    print(f"recipe {recipe.source}; real set {args.real} ({len(rows)} images; scoring: {rule.describe()}); "
          f"{os.cpu_count()} CPU cores")
    make_data(recipe, work, args.pages, args.val_pages)
    grammar = None
    if args.grammar:
        from synthtext_industrial.train.grammar import compile_grammar

        grammar = compile_grammar([recipe.text], [str(recipe.source)])
    synthetic = list(dataset_lines(work / "val"))
    real = list(labelled_images(args.real / "labels.tsv"))

    results = []
    for seed in args.seeds:
        run = work / f"run-seed{seed}"
        done = train(work, run, args, seed)
        t0 = time.perf_counter()
        syn = read(run, synthetic)
        syn_score = score([p.truth for p in syn], [p.text for p in syn], Rule())
        got = read(run, real)
        real_score = score([p.truth for p in got], [p.text for p in got], rule)
        write_predictions(run / f"{set_name}-predictions.csv", got, rule)
        failure_sheet(run / f"{set_name}-failures.png", got, rule, args.worst)
        print(f"seed {seed}: trained {done['train_minutes']:.1f} min ({done['lines_seen']} lines seen, best epoch "
              f"{done['best_epoch']}); read {len(syn) + len(got)} lines in {time.perf_counter() - t0:.0f} s")
        result = {"seed": seed, **done, "synthetic": syn_score.__dict__, "real": real_score.__dict__}
        if grammar is not None:
            constrained = read(run, real, grammar)
            result["real_grammar"] = score([p.truth for p in constrained], [p.text for p in constrained],
                                           rule).__dict__
            result["real_grammar"]["rejected"] = sum(p.rejected for p in constrained)
            write_predictions(run / f"{set_name}-predictions-grammar.csv", constrained, rule)
        for bn, key in ((False, "adapted"), (True, "bn")):
            if not (args.bn if bn else args.adapt):
                continue
            adapted, record = adapt_run(work, run, args.real, args, seed, bn)
            if not (adapted / "best.weights.h5").exists():  # no round kept a line: nothing was trained
                print(f"seed {seed}: {record.get('stopped')}")
                result[key] = None
                continue
            got = read(adapted, real)
            result[key] = score([p.truth for p in got], [p.text for p in got], rule).__dict__
            result[key]["minutes"] = record.get("minutes")
            result[key]["kept"] = [r["kept"] for r in record.get("rounds", [])]
            write_predictions(adapted / f"{set_name}-predictions.csv", got, rule)
            if grammar is not None:
                constrained = read(adapted, real, grammar)
                result[f"{key}_grammar"] = score([p.truth for p in constrained], [p.text for p in constrained],
                                                 rule).__dict__
                result[f"{key}_grammar"]["rejected"] = sum(p.rejected for p in constrained)
        results.append(result)

    print_table(results, recipe.source, args, set_name, len(synthetic), len(real), rule, work)
    (work / f"report-{set_name}.json").write_text(json.dumps({
        "recipe": str(recipe.source), "real": str(args.real), "scoring": rule.__dict__, "pages": args.pages,
        "minutes": args.minutes, "backbone": args.backbone, "init": str(args.init) if args.init else None,
        "ema": args.ema,
        **({"adapt": {"rounds": args.adapt_rounds, "steps": args.adapt_steps, "threshold": args.adapt_threshold,
                      "pseudo_weight": args.pseudo_weight, "learning_rate": args.adapt_learning_rate}}
           if args.adapt else {}),
        "results": results}, indent=1, ensure_ascii=False) + "\n")


def print_table(results: list[dict], recipe, args, set_name: str, n_syn: int, n_real: int, rule: Rule,
                work: Path) -> None:
    print()
    print(f"sim-to-real: recipe {Path(str(recipe)).name}, {args.pages} pages, {args.minutes:g} min/seed, "
          f"{args.backbone}{f', ema {args.ema:g}' if args.ema else ''} -> {set_name} ({n_real} real images; "
          f"scoring {rule.describe()}); "
          f"synthetic validation: {n_syn} lines")
    with_grammar = "real_grammar" in results[0]
    print(f"{'seed':>4} {'lines seen':>10} {'synthetic str':>13} {'real str':>9} {'real char':>9} {'gap (str)':>9}"
          + (f" {'+grammar str':>12} {'char':>6} {'rejected':>8}" if with_grammar else ""))
    for r in results:
        syn, real = r["synthetic"]["string_accuracy"], r["real"]["string_accuracy"]
        g = r.get("real_grammar")
        print(f"{r['seed']:>4} {r['lines_seen']:>10} {syn:>13.4f} {real:>9.4f} "
              f"{r['real']['char_accuracy']:>9.4f} {syn - real:>9.4f}"
              + (f" {g['string_accuracy']:>12.4f} {g['char_accuracy']:>6.4f} {g['rejected']:>8}" if g else ""))
    for key, name in (("adapted", "adapted (self-training on the real images, not their labels)"),
                      ("bn", "batch-norm statistics re-estimated on the real images")):
        if key not in results[0]:
            continue
        print(f"{name}:")
        print(f"{'seed':>4} {'real str':>9} {'real char':>9} {'change (str)':>12} {'minutes':>7}"
              + (f" {'kept per round':>16}" if key == "adapted" else "")
              + (f" {'+grammar str':>12} {'rejected':>8}" if f"{key}_grammar" in results[0] else ""))
        for r in results:
            a = r[key]
            if a is None:
                print(f"{r['seed']:>4} {'nothing kept: not adapted':>40}")
                continue
            g = r.get(f"{key}_grammar")
            print(f"{r['seed']:>4} {a['string_accuracy']:>9.4f} {a['char_accuracy']:>9.4f} "
                  f"{a['string_accuracy'] - r['real']['string_accuracy']:>+12.4f} {a['minutes'] or 0:>7.1f}"
                  + (f" {'/'.join(map(str, a['kept'])):>16}" if key == "adapted" else "")
                  + (f" {g['string_accuracy']:>12.4f} {g['rejected']:>8}" if g else ""))
    if len(results) > 1:
        for label, key, field in (("synthetic string", "synthetic", "string_accuracy"),
                                  ("real string", "real", "string_accuracy"),
                                  ("real character", "real", "char_accuracy"),
                                  ("adapted string", "adapted", "string_accuracy"),
                                  ("bn string", "bn", "string_accuracy")):
            values = [r[key][field] for r in results if r.get(key)]
            if len(values) == len(results):
                print(f"  {label:16} {spread(values)}")
    last = results[-1]["real"]
    print(f"commonest confusions on the real set (seed {results[-1]['seed']}; truth>read, ∅ = nothing):")
    print("  " + ", ".join(f"{c} x{n}" for c, n in last["confusions"]) or "  none")
    if last["string_errors"]:
        print("repeated whole-string errors (scored truth -> scored reading):")
        print("  " + "; ".join(f"{s} x{n}" for s, n in last["string_errors"]))
    print(f"failure sheet: {work}/run-seed{results[-1]['seed']}/{set_name}-failures.png; report: "
          f"{work}/report-{set_name}.json")


if __name__ == "__main__":
    main()
