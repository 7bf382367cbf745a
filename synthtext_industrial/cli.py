"""The `synthtext-industrial` command: a thin layer over the library API."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import __version__


class RecipeProblem(click.ClickException):
    """A recipe error: one readable message, exit code 2, no traceback."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


class LabelsProblem(click.ClickException):
    """A frame labels file that cannot be read: one line naming the file, the line and what is wrong; exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def _load(recipe: str, assets_root: tuple[str, ...]):
    from .core.config import RecipeError
    from .recipe import load_recipe

    try:
        return load_recipe(recipe, assets_roots=list(assets_root))
    except RecipeError as exc:
        raise RecipeProblem(str(exc)) from None


class DatasetFolder(click.Path):
    """A dataset folder to read: a URL gets "download it first" instead of "does not exist"."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and "://" in value:
            from .store.remote import is_url

            if is_url(value):
                self.fail(f"{value} is a URL, but this reads a local dataset folder only: download it first (e.g. "
                          f"`aws s3 sync {value} ./ds`, `gcloud storage rsync -r {value} ./ds`) and pass the folder",
                          param, ctx)
        value = super().convert(value, param, ctx)
        if not (Path(value) / "manifest.json").is_file():
            self.fail(f"{value} is not a dataset: it has no manifest.json (give a folder written by "
                      f"`synthtext-industrial generate`)", param, ctx)
        return value


class OutputPath(click.Path):
    """A folder (or file) to write: refused at once, exit 2, when it cannot be created, not after a long run."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        path = Path(value).expanduser().absolute()
        existing = path if self.dir_okay and not self.file_okay else path.parent
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            self.fail(f"{value} cannot be created: {existing} is a file, not a folder", param, ctx)
        if not os.access(existing, os.W_OK | os.X_OK):
            self.fail(f"{value} cannot be written: {existing} is not writable", param, ctx)
        return value


def _labels_file(labels: str, param_hint: str) -> None:
    """A labels.tsv must hold `path<TAB>text` lines before a model is loaded to read them."""
    from .train.lines import read_labels_tsv

    try:
        rows = read_labels_tsv(labels)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.BadParameter(f"{labels}: {exc}", param_hint=param_hint) from None
    if not rows:
        raise click.BadParameter(f"{labels} has no `path<TAB>text` lines", param_hint=param_hint)


DATASET = DatasetFolder(exists=True, file_okay=False)
OUT_FOLDER = OutputPath(file_okay=False)
RECIPE = click.argument("recipe", metavar="RECIPE")
ASSETS_ROOT = click.option("--assets-root", multiple=True, type=click.Path(file_okay=False),
                           help="another folder the recipe may read fonts, photos or wordlists from "
                                "(besides its own folder and the bundled assets); repeatable")
GRAMMAR = click.option("--grammar", "grammar_recipe", default=None, metavar="RECIPE",
                       help="recognizer runs: read only lines RECIPE's text templates can print (CTC beam search "
                            "over its automaton, check digits verified); a line no such string explains is "
                            "reported rejected  [default: the recipes the run was trained on, where their "
                            "datasets are still found]")
NO_GRAMMAR = click.option("--no-grammar", is_flag=True, help="decode without a grammar, even where the run's "
                                                              "recipe is known")
SEED = click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1),
                    help="master seed: sample i depends on (seed, i) only")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="synthtext-industrial")
@click.option("--verbose", is_flag=True, help="also show TensorFlow, absl and OpenCV log lines (hidden by default; "
                                              "use it when a command fails without saying why)")
def main(verbose: bool) -> None:
    """Render synthetic product-code images with exact ground truth from YAML recipes.

    RECIPE is a path to a YAML file or the name of a bundled recipe (e.g. `default`).
    """
    if not verbose:  # OpenCV's warnings (e.g. about a file it cannot decode) repeat what our errors say
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # render worker processes read it at import
        if "cv2" in sys.modules:
            import cv2

            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("verbose"))


def _silence_native_logs() -> None:
    """Until this command ends, send what native libraries write straight to file descriptor 2 to /dev/null.

    TensorFlow's C++ core and absl print start-up and runtime lines ("oneDNN custom operations are on",
    "All log messages before absl::InitializeLog()") that no environment variable turns off. Python's
    sys.stderr keeps writing to the real stderr, so our own messages, progress and errors still show.
    """
    ctx = click.get_current_context()
    if _verbose():
        return
    sys.stderr.flush()
    saved = os.dup(2)
    old_stderr = sys.stderr
    try:
        uses_fd2 = old_stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # e.g. click's test runner captures sys.stderr itself
        uses_fd2 = False
    if uses_fd2:
        sys.stderr = open(saved, "w", buffering=1, encoding=old_stderr.encoding, errors="backslashreplace",
                          closefd=False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = old_stderr

    ctx.call_on_close(restore)


@main.command()
@RECIPE
@click.option("--samples", default=8, type=click.IntRange(0, 1000),
              help="also render this many pages (seed 0) and make sure each has the text it should")
@ASSETS_ROOT
def check(recipe: str, samples: int, assets_root: tuple[str, ...]) -> None:
    """Validate a recipe: schema, font coverage (by drawing), that its largest text fits, and a few pages."""
    from .audit import sample_problems
    from .stages.text import charset

    r = _load(recipe, assets_root)
    problems = sample_problems(r, samples)
    if problems:
        raise RecipeProblem(f"{r.source}: pages without text\n  " + "\n  ".join(problems[:12]))
    chars = "".join(sorted(charset(r.text)))
    rendered = f", {samples} sample pages rendered" if samples else ""
    click.echo(f"{r.source}: OK ({len(r.text.blocks)} text block templates, {len(r.fonts)} font entries, "
               f"charset {chars!r}{rendered})")


def _render(recipe, seed: int, index: int):
    """render_sample, with a page the recipe cannot fill as a recipe error (exit 2)."""
    from .core.config import RecipeError
    from .render import render_sample

    try:
        return render_sample(recipe, seed, index)
    except RecipeError as exc:
        raise RecipeProblem(str(exc)) from None


@main.command()
@RECIPE
@click.option("-n", "--count", default=16, type=click.IntRange(1, 400), help="number of samples")
@click.option("-o", "--output", default="preview.png", type=OutputPath(dir_okay=False), help="PNG to write")
@click.option("--start", default=0, type=click.IntRange(0), help="index of the first sample")
@click.option("--tile-width", default=480, type=click.IntRange(64, 4000), help="width of each tile in pixels")
@SEED
@ASSETS_ROOT
def preview(recipe, count, output, start, tile_width, seed, assets_root) -> None:
    """Write a contact sheet of samples with line and character boxes drawn."""
    import cv2

    from .preview import contact_sheet

    r = _load(recipe, assets_root)
    samples = [_render(r, seed, i) for i in range(start, start + count)]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(output), contact_sheet(samples, tile_width)):
        raise click.ClickException(f"could not write {output}")
    click.echo(f"wrote {output} ({count} samples of {r.source}, seed {seed})")


@main.command()
@RECIPE
@click.option("-n", "--count", default=100, type=click.IntRange(1, 100000), help="number of pages to render")
@click.option("-o", "--output", default="audit.png", type=click.Path(dir_okay=False),
              help="PNG sheet of the least legible characters")
@click.option("--worst", default=48, type=click.IntRange(1, 1000), help="characters on the sheet")
@click.option("--start", default=0, type=click.IntRange(0), help="index of the first page")
@SEED
@ASSETS_ROOT
def audit(recipe, count, output, worst, start, seed, assets_root) -> None:
    """Score every labelled character of N pages after the effects; sheet of the least legible ones.

    The score is the legibility the renderer enforces (recipes/README.md, "Legibility"): a person looking at
    the sheet can check that characters at the floor can still be read.
    """
    import cv2

    from .audit import audit as run_audit, audit_sheet

    r = _load(recipe, assets_root)
    report = run_audit(r, count, seed=seed, start=start)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(output), audit_sheet(report, r, seed, worst)):
        raise click.ClickException(f"could not write {output}")
    click.echo(report.summary())
    click.echo(f"wrote {output} (the {min(worst, len(report.chars))} least legible characters)")


@main.command("fit")
@click.argument("photos", metavar="PHOTOS")
@RECIPE
@click.option("-o", "--output", required=True, type=OUT_FOLDER,
              help="folder to write: report.txt, report.json, measures.csv, histograms.png, fitted.yaml")
@click.option("-n", "--pages", default=200, type=click.IntRange(1, 100000),
              help="pages of the recipe to render and measure")
@click.option("--max-images", default=1000, type=click.IntRange(1),
              help="measure at most this many real images (an even sample of the folder)")
@click.option("--refine", default=1, type=click.IntRange(0, 5),
              help="rounds that render the fitted recipe, measure it and fit it again (each renders -n pages)")
@SEED
@ASSETS_ROOT
def fit_command(photos, recipe, output, pages, max_images, refine, seed, assets_root) -> None:
    """Measure real line crops (PHOTOS: a folder of images; labels are not read) and RECIPE's own crops alike.

    Prints text height, stroke width, contrast, polarity, ground brightness and texture, blur, noise and JPEG
    blockiness side by side, and one domain-gap score (lower is closer); writes the table, histograms of real vs
    synthetic, and fitted.yaml: the recipe with its ranges set to cover the real crops (docs/fit.md).
    """
    from tqdm import tqdm

    from .core.config import RecipeError
    from .domain import FitError, fit as run_fit

    r = _load(recipe, assets_root)
    try:
        report = run_fit(photos, r, output, pages=pages, seed=seed, max_images=max_images, refine=refine,
                         progress=lambda items, **kw: tqdm(items, disable=None, **kw))
    except (FitError, RecipeError) as exc:  # RecipeError: a page the recipe (or the fitted one) cannot fill
        raise RecipeProblem(str(exc)) from None
    click.echo(report.table())
    click.echo(f"wrote {output}/report.txt, report.json, measures.csv, histograms.png and fitted.yaml "
               f"({len(report.changes)} fields fitted)")


@main.command()
@RECIPE
@click.option("-n", "--count", default=16, type=click.IntRange(0), help="number of samples")
@click.option("-o", "--output", required=True, type=OUT_FOLDER, help="folder to write")
@click.option("--start", default=0, type=click.IntRange(0), help="index of the first sample")
@SEED
@ASSETS_ROOT
def render(recipe, count, output, start, seed, assets_root) -> None:
    """Render samples as image files, each with its ground truth as JSON (for a quick look)."""
    from tqdm import tqdm

    from .render import encode_image

    r = _load(recipe, assets_root)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    enc = r.canvas.encoding
    ext = "jpg" if enc.format == "jpeg" else "png"
    for i in tqdm(range(start, start + count), desc="rendering", unit="img", disable=None):
        sample = _render(r, seed, i)
        (out / f"{i:09d}.{ext}").write_bytes(encode_image(sample.image, enc.format, enc.quality))
        (out / f"{i:09d}.json").write_text(json.dumps(sample.to_dict()), encoding="utf-8")
    click.echo(f"wrote {count} samples to {out}")


@main.command()
@RECIPE
@click.option("-n", "--count", "n", required=True, type=click.IntRange(0), help="number of images")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="dataset folder, or an fsspec URL: s3://bucket/prefix (pip install s3fs), gs://... (gcsfs), "
                   "memory://, file://, ...")
@SEED
@click.option("--format", "fmt", default="lmdb", type=click.Choice(["lmdb", "tfrecord"]),
              help="shard format: lmdb (DTRB layout, embedded) or tfrecord (tf.train.Example)")
@click.option("--shard-size", default=1000, type=click.IntRange(1), help="images per shard")
@click.option("--workers", default=os.cpu_count() or 1, type=click.IntRange(1),
              help="render processes (local engine) or LocalCluster workers (dask engine without --scheduler)")
@click.option("--crops/--no-crops", default=True, help="also write upright line crops (recognizer training data)")
@click.option("--engine", default="local", type=click.Choice(["local", "dask"]),
              help="local: processes on this machine; dask: one task per shard on a dask.distributed cluster")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster); "
                   "OUT must then be a folder every worker mounts at the same path, or a URL every worker reaches")
@click.option("--overwrite", is_flag=True,
              help="replace a dataset made with other settings, or one holding more pages than -n")
@click.option("--resume-check", default="hash", type=click.Choice(["hash", "size"]),
              help="how a rerun checks finished shards: hash re-reads each (for a URL: downloads it); "
                   "size trusts the manifest when the files or objects have the recorded size")
@ASSETS_ROOT
def generate(recipe, n, output, seed, fmt, shard_size, workers, crops, engine, scheduler, overwrite, resume_check,
             assets_root) -> None:
    """Render N images into shards with a manifest; rerun the same command to resume, or with a larger N to extend."""
    from tqdm import tqdm

    from .store.format import DatasetError
    from .generate import DatasetRefused, generate as run
    from .core.config import RecipeError

    if scheduler is not None and engine != "dask":
        raise click.BadParameter("needs --engine dask", param_hint="--scheduler")
    r = _load(recipe, assets_root)
    bar = tqdm(total=n, desc="generating", unit="img", dynamic_ncols=True, disable=None)

    def resumed(shards: int, images: int) -> None:
        bar.update(images)
        how = "verified" if resume_check == "hash" else "sizes checked"
        bar.write(f"resuming: {shards} finished shard(s) ({images} images) {how} and kept")

    try:
        summary = run(r, output, n, seed=seed, fmt=fmt, shard_size=shard_size, workers=workers,
                      with_crops=crops, overwrite=overwrite, engine=engine, scheduler=scheduler,
                      progress=bar.update, on_resume=resumed, resume_check=resume_check)
    except DatasetError as exc:
        bar.close()
        error = click.ClickException(str(exc))
        error.exit_code = 2 if isinstance(exc, DatasetRefused) else 1  # refused before anything was written
        raise error from None
    except RecipeError as exc:  # a page the recipe cannot fill (text too large for it)
        bar.close()
        raise RecipeProblem(str(exc)) from None
    except KeyboardInterrupt:
        bar.close()
        click.echo("\ninterrupted; finished shards are kept. Run the same command again to resume.", err=True)
        sys.exit(130)
    bar.close()
    empty = f" ({summary.empty_pages} without text, as layout.empty_pages asks)" if summary.empty_pages else ""
    click.echo(f"wrote {output}: {summary.images} images{empty}, {summary.lines} lines, {summary.chars} characters, "
               f"{summary.crops} crops, {summary.bytes / 1e6:.1f} MB; rendered {summary.rendered} in "
               f"{summary.seconds:.1f} s ({summary.pages_per_s:.1f} pages/s)")


@main.command()
@click.argument("dataset", type=DATASET)
def verify(dataset) -> None:
    """Re-hash every shard and read back every record; exit 1 naming each corrupt shard and record."""
    from .store.verify import verify as run

    problems = run(dataset)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"{dataset}: {len(problems)} problem(s); rerun the generate command to redo "
                                   f"damaged shards")
    click.echo(f"{dataset}: OK")


@main.command()
@click.argument("dataset", type=DATASET)
@click.option("--preview", "preview_path", default=None, type=click.Path(dir_okay=False),
              help="contact sheet to write  [default: DATASET/preview.png, or a new file in the temporary folder "
                   "when DATASET is read-only]")
@click.option("--pages", default=16, type=click.IntRange(0, 400), help="pages on the contact sheet (0: none)")
@click.option("--max-pages", default=5000, type=click.IntRange(1),
              help="read at most this many pages for the statistics")
def inspect(dataset, preview_path, pages, max_pages) -> None:
    """Print counts, charset, sizes and text-length statistics; write a preview sheet read back from the shards."""
    import cv2

    from .store.verify import describe
    from .store.format import DatasetError
    from .preview import contact_sheet
    from .store.format import CorruptRecord

    try:
        description = describe(dataset, max_pages=max_pages, preview_pages=pages)
    except (DatasetError, CorruptRecord) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(description.report())
    if pages and description.samples:
        png = cv2.imencode(".png", contact_sheet(description.samples))[1].tobytes()
        target, note = Path(preview_path or Path(dataset) / "preview.png"), ""
        try:
            target.write_bytes(png)
        except OSError as exc:
            if preview_path:
                raise click.ClickException(f"could not write {target}: {exc.strerror or exc}") from None
            # a read-only dataset (a shared mount, an archive) is still inspected; its sheet goes elsewhere
            import tempfile

            handle, name = tempfile.mkstemp(prefix="synthtext-industrial-preview-", suffix=".png")
            with os.fdopen(handle, "wb") as fh:
                fh.write(png)
            target, note = Path(name), f"; {dataset} is not writable ({exc.strerror or exc}): --preview PATH " \
                                       f"puts the sheet elsewhere"
        click.echo(f"preview     {target} ({len(description.samples)} pages with their boxes, read from the "
                   f"shards{note})")


def _need_tensorflow() -> None:
    import logging

    if not _verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users
        _silence_native_logs()
    try:
        import tensorflow as tf
    except ImportError:
        raise click.ClickException("training needs TensorFlow: pip install 'synthtext-industrial[tf]'") from None
    if not _verbose():
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)


@main.group()
def train() -> None:
    """Train a model straight from dataset shards (needs the [tf] extra)."""


def _training_options(unit: str, batch_size: int):
    """The options both `train` commands share, defined once so that they stay alike."""
    options = [
        click.option("--data", "data", required=True, multiple=True, type=DATASET,
                     help=f"dataset folder written by generate (its {unit} are read); repeat to mix several"),
        click.option("--weight", "weights", multiple=True, type=click.FloatRange(min=0, min_open=True),
                     help="sampling weight per --data, in the same order (like DTRB's batch_ratio); default equal"),
        click.option("--val", default=None, type=DATASET,
                     help=f"held-out dataset for validation and early stopping (default: training {unit})"),
        click.option("--epochs", default=10, type=click.IntRange(1)),
        click.option("--batch-size", default=batch_size, type=click.IntRange(1)),
        click.option("--steps-per-epoch", default=None, type=click.IntRange(1),
                     help=f"default: one pass over the {unit}"),
        click.option("--learning-rate", default=1e-3, type=click.FloatRange(min=0, min_open=True),
                     show_default=True, help="the peak learning rate (Adam)"),
        click.option("--schedule", default="plateau", type=click.Choice(["plateau", "cosine"]), show_default=True,
                     help="plateau: cut the rate when validation stalls; cosine: warm up, then decay to 1% by the "
                          "last epoch or the end of --max-minutes"),
        click.option("--patience", default=5, type=click.IntRange(1), help="early stopping patience in epochs"),
        click.option("--ema", default=0.0, type=click.FloatRange(0.0, 1.0, max_open=True), show_default=True,
                     help="validate, keep and export an exponential moving average of the weights with this decay "
                          "per step (e.g. 0.999; 0: off)"),
        click.option("--max-minutes", default=None, type=click.FloatRange(min=0, min_open=True),
                     help="stop after the epoch that passes this training time"),
        click.option("--seed", default=0, type=click.IntRange(0)),
        click.option("--out", "run", required=True, type=OUT_FOLDER, help="run directory"),
        click.option("--resume", is_flag=True, help="continue the run in --out from its last checkpoint"),
        click.option("--mixed-precision", type=click.Choice(["off", "float16", "bfloat16", "auto"]),
                     is_flag=False, flag_value="float16", default="off", show_default=True,
                     help="compute in float16 (alone, `--mixed-precision` means this: Keras mixed_float16, dynamic "
                          "loss scaling; faster on GPUs with tensor cores, slower on CPUs) or bfloat16 (faster on "
                          "CPUs with AVX512_BF16 or AMX: 1.46x the detector's steps on a Zen 4) with float32 "
                          "weights, outputs and losses; auto: bfloat16 where the CPU has it and no GPU is seen, "
                          "else off"),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _fit(fit, data, weights, val, run, resume, config, max_minutes, init=None, **settings) -> dict:
    """Run a trainer with the shared options checked; its errors become one-line CLI errors."""
    from .train.loop import TrainSettings, auto_precision

    if weights and len(weights) != len(data):
        raise click.BadParameter(f"give one --weight per --data ({len(data)}), got {len(weights)}",
                                 param_hint="--weight")
    if settings.get("mixed_precision") == "auto":
        settings["mixed_precision"] = auto_precision()
    settings = TrainSettings(weights=list(weights) or None, max_seconds=max_minutes * 60 if max_minutes else None,
                             **settings)
    from .store.format import DatasetError
    from .store.format import CorruptRecord

    try:
        more = {"init": init} if init is not None else {}
        return fit(list(data), run, config, settings, val=val, resume=resume, log=click.echo, **more)
    except (ValueError, OSError, DatasetError, CorruptRecord) as exc:
        raise click.ClickException(str(exc)) from None


@train.command("recognizer")
@_training_options("lines", batch_size=32)
@click.option("--backbone", default="small",
              type=click.Choice(["small", "mobilenetv3", "efficientnet-b0", "efficientnet-b1", "efficientnet-b2",
                                 "efficientnet-b3"]))
@click.option("--height", default=32, type=click.IntRange(16), help="input height in pixels")
@click.option("--width", default=0, type=click.IntRange(0),
              help="input width in pixels; 0: from the longest line in the data (1.5x what CTC needs, >= 128)")
@click.option("--augment", is_flag=True, help="online photometric augmentation with the package's effects")
@click.option("--normalize", default="contrast", show_default=True, type=click.Choice(["contrast", "none"]),
              help="bring every line to one mean and spread inside the model (dim and bright crops look alike; "
                   "exports carry it), or feed the raw pixels")
@click.option("--resize", default="stretch", show_default=True, type=click.Choice(["stretch", "pad"]),
              help="stretch every line to the input size, or scale it to the input height keeping its aspect ratio "
                   "and pad the rest (glyphs keep their shape however wide the crop; exports carry it)")
@click.option("--head", default="skip", show_default=True, type=click.Choice(["skip", "lstm"]),
              help="skip: the output layer sees each step's own features beside the BiLSTMs' output (CTC leaves "
                   "its all-blank start sooner on hard crops); lstm: the BiLSTMs' output only, as before 0.7.0")
@click.option("--init", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="start from this trained recognizer run's weights, keeping its config (charset, input size, "
                   "normalisation, resize, head; the shape options above are then ignored): e.g. a run on an earlier "
                   "version of the recipe, to skip CTC's slow start on hard crops")
def train_recognizer(data, weights, val, backbone, height, width, epochs, batch_size, steps_per_epoch,
                     learning_rate, schedule, patience, augment, normalize, resize, head, init, max_minutes, seed,
                     run, resume, mixed_precision, ema) -> None:
    """Train the CTC line recognizer (CRNN: backbone, BiLSTM, CTC)."""
    _need_tensorflow()
    from .train.fit_recognizer import train_recognizer as fit
    from .train.recognizer import RecognizerConfig
    from .train.runs import RunError, run_kind

    if init is not None:
        try:
            kind = run_kind(init, trained=True)
        except RunError as exc:
            raise click.BadParameter(str(exc), param_hint="--init") from None
        if kind != "recognizer":
            raise click.BadParameter(f"{init} is a {kind} run, not a recognizer run", param_hint="--init")

    metrics = _fit(fit, data, weights, val, run, resume, RecognizerConfig(backbone=backbone, height=height,
                                                                          width=width, normalize=normalize,
                                                                          resize=resize, head=head),
                   max_minutes, init=init,
                   epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, schedule=schedule,
                   steps_per_epoch=steps_per_epoch, patience=patience, seed=seed, augment=augment,
                   mixed_precision=mixed_precision, ema=ema)
    best = metrics["best"]
    click.echo(f"best epoch {best['epoch'] + 1}: string accuracy {best['string_accuracy']:.4f}, "
               f"char accuracy {best.get('char_accuracy', 0):.4f}; run in {run}")


@train.command("spotter")
@_training_options("pages", batch_size=8)
@click.option("--backbone", default="small",
              type=click.Choice(["small", "efficientnet-b0", "efficientnet-b1", "efficientnet-b2",
                                 "efficientnet-b3"]))
@click.option("--height", default=600, type=click.IntRange(32), help="input height pages are resized to")
@click.option("--width", default=800, type=click.IntRange(32), help="input width (a multiple of 32)")
@click.option("--roi-width", default=0, type=click.IntRange(0),
              help="CTC steps per box; 0: 3 per character of the longest line")
@click.option("--val-pages", default=64, type=click.IntRange(1), help="validation pages per epoch")
def train_spotter(data, weights, val, backbone, height, width, roi_width, epochs, batch_size, steps_per_epoch,
                  val_pages, learning_rate, schedule, patience, max_minutes, seed, run, resume,
                  mixed_precision, ema) -> None:
    """Train the end-to-end text spotter (FOTS-style: shared backbone, detection and recognition heads)."""
    _need_tensorflow()
    from .train.fit_spotter import train_spotter as fit
    from .train.spotter import SpotterConfig

    config = SpotterConfig(backbone=backbone, height=height, width=width, roi_width=roi_width)
    metrics = _fit(fit, data, weights, val, run, resume, config, max_minutes, epochs=epochs, batch_size=batch_size,
                   learning_rate=learning_rate, schedule=schedule, steps_per_epoch=steps_per_epoch,
                   val_lines=val_pages, patience=patience, seed=seed, mixed_precision=mixed_precision, ema=ema)
    best = metrics["best"]
    click.echo(f"best epoch {best['epoch'] + 1}: end-to-end F1 {best['e2e_f1']:.4f}, detection F1 "
               f"{best.get('f1', 0):.4f}, string accuracy {best.get('string_accuracy', 0):.4f}; run in {run}")


@train.command("detector")
@_training_options("pages", batch_size=8)
@click.option("--backbone", default="small", show_default=True,
              type=click.Choice(["small", "efficientnet-b0", "efficientnet-b1", "efficientnet-b2",
                                 "efficientnet-b3"]))
@click.option("--height", default=600, show_default=True, type=click.IntRange(32),
              help="input height pages are resized to (a multiple of 4)")
@click.option("--width", default=800, show_default=True, type=click.IntRange(32),
              help="input width (a multiple of 4)")
@click.option("--fusion-channels", default=64, show_default=True, type=click.IntRange(4),
              help="channels of the fused stride-4 feature map")
@click.option("--score-threshold", default=0.7, show_default=True, type=click.FloatRange(0, 1),
              help="cells above this score propose a box (editable later in RUN/config.json)")
@click.option("--nms-iou", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="boxes overlapping more than this are merged")
@click.option("--val-pages", default=64, show_default=True, type=click.IntRange(1),
              help="validation pages per epoch")
def train_detector(data, weights, val, backbone, height, width, fusion_channels, score_threshold, nms_iou, epochs,
                   batch_size, steps_per_epoch, val_pages, learning_rate, schedule, patience, max_minutes, seed, run,
                   resume, mixed_precision, ema) -> None:
    """Train the oriented text-line detector (EAST/FOTS RBOX: rotated boxes in reading order) for a reader."""
    _need_tensorflow()
    from .train.detector import DetectorConfig
    from .train.fit_detector import train_detector as fit

    config = DetectorConfig(backbone=backbone, height=height, width=width, fusion_channels=fusion_channels,
                            score_threshold=score_threshold, nms_iou=nms_iou)
    metrics = _fit(fit, data, weights, val, run, resume, config, max_minutes, epochs=epochs, batch_size=batch_size,
                   learning_rate=learning_rate, schedule=schedule, steps_per_epoch=steps_per_epoch,
                   val_lines=val_pages, patience=patience, seed=seed, mixed_precision=mixed_precision, ema=ema)
    best = metrics["best"]
    click.echo(f"best epoch {best['epoch'] + 1}: detection P {best.get('precision', 0):.4f} R "
               f"{best.get('recall', 0):.4f} F1 {best.get('f1', 0):.4f}; run in {run}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--weights", "which", default="best", type=click.Choice(["best", "last"]),
              help="the best validation epoch's weights, or the latest checkpoint")
@click.option("--draw", default=None, type=OUT_FOLDER,
              help="spotter, detector and reader runs: write each image with its boxes (and texts) drawn into "
                   "this folder")
@click.option("--beam-width", default=0, type=click.IntRange(0),
              help="recognizer runs: CTC beam search with this many beams (0: greedy decoding; with a grammar, "
                   "10 beams)")
@GRAMMAR
@NO_GRAMMAR
def predict(run, images, which, draw, beam_width, grammar_recipe, no_grammar) -> None:
    """Read the text in IMAGES with a trained run: line images (recognizer), whole pages (spotter) or camera
    frames (reader: `reader create`).

    A recognizer prints `path<TAB>text<TAB>confidence`, and with a grammar a line it rejects as
    `path<TAB><TAB>0.000<TAB>rejected<TAB>greedy reading`; a spotter prints
    `path<TAB>x0,y0,x1,y1<TAB>text<TAB>score` per detected line, in page pixels; a reader prints
    `path<TAB>x1,y1,x2,y2,x3,y3,x4,y4<TAB>text<TAB>confidence` per line (the quad clockwise from the text's
    top-left, in frame pixels); an oriented detector (`train detector`) prints `path<TAB>x1,...,y4<TAB>score`.
    """
    _need_tensorflow()
    import cv2

    from .train.runs import RunError, run_kind

    try:
        kind = run_kind(run, readers=True)
    except RunError as exc:
        raise click.BadParameter(str(exc), param_hint="RUN") from None
    loaded = []
    for path in images:
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise click.BadParameter(f"cannot read {path} as an image", param_hint="IMAGES")
        loaded.append(image)
    if kind != "recognizer" and grammar_recipe:
        raise click.UsageError("--grammar needs a recognizer run (a reader's grammar is set in its reader.json)")
    if kind == "reader":
        _predict_reader(run, images, loaded, which, draw, no_grammar)
        return
    if kind == "detector":
        _predict_detector(run, images, loaded, which, draw)
        return
    grammar = None if kind == "spotter" else _grammar(run, grammar_recipe, no_grammar)
    if kind == "spotter":
        from .train.runs import load_spotter
        from .train.spotter import draw_spots, spot_pages

        if draw:
            Path(draw).mkdir(parents=True, exist_ok=True)
        for path, image, spots in zip(images, loaded, spot_pages(load_spotter(run, which), loaded)):
            for s in spots:
                click.echo(f"{path}\t{','.join(str(round(v)) for v in s.box)}\t{s.text}\t{s.score:.3f}")
            if draw:
                target = Path(draw) / (Path(path).stem + ".png")
                if not cv2.imwrite(str(target), draw_spots(image, spots)):
                    raise click.ClickException(f"could not write {target}")
        return
    if draw:
        raise click.UsageError("--draw needs a spotter, detector or reader run")
    from .train.runs import load_recognizer
    from .train.recognizer import read_lines

    model, config = load_recognizer(run, which)
    _grammar_charset(grammar, config.charset)
    for path, reading in zip(images, read_lines(model, config, loaded, beam_width=beam_width, grammar=grammar)):
        if reading.rejected:
            click.echo(f"{path}\t\t{reading.confidence:.3f}\trejected\t{reading.unconstrained}")
        else:
            click.echo(f"{path}\t{reading.text}\t{reading.confidence:.3f}")


def _load_reader(run, which: str, no_grammar: bool):
    from .train.reader import load_reader
    from .train.runs import RunError

    try:
        reader = load_reader(run, which)
    except (RunError, FileNotFoundError) as exc:
        raise click.BadParameter(str(exc), param_hint="RUN") from None
    if no_grammar:
        reader.grammar = None
    elif reader.grammar is not None:
        click.echo(f"grammar: {', '.join(reader.grammar.sources)} ({reader.grammar.n_states} states; --no-grammar "
                   f"to turn off)", err=True)
    return reader


def _predict_reader(run, images, loaded, which, draw, no_grammar) -> None:
    import cv2

    from .train.frames import draw_frame
    from .train.reader import read_frames

    reader = _load_reader(run, which, no_grammar)
    if draw:
        Path(draw).mkdir(parents=True, exist_ok=True)
    for path, image, lines in zip(images, loaded, read_frames(reader, loaded)):
        for line in lines:
            quad = ",".join(str(round(float(v))) for v in line.quad.reshape(-1))
            click.echo(f"{path}\t{quad}\t{line.text}\t{line.confidence:.3f}" + ("\trejected" if line.rejected else ""))
        if draw:
            target = Path(draw) / (Path(path).stem + ".png")
            if not cv2.imwrite(str(target), draw_frame(image, quads=[line.quad for line in lines],
                                                       texts=[line.text for line in lines])):
                raise click.ClickException(f"could not write {target}")


def _predict_detector(run, images, loaded, which, draw) -> None:
    import cv2

    from .train.detector import detect_pages
    from .train.frames import draw_frame
    from .train.runs import load_detector

    if draw:
        Path(draw).mkdir(parents=True, exist_ok=True)
    for path, image, (quads, scores) in zip(images, loaded, detect_pages(load_detector(run, which), loaded)):
        for quad, score in zip(quads, scores):
            click.echo(f"{path}\t{','.join(str(round(float(v))) for v in quad.reshape(-1))}\t{score:.3f}")
        if draw:
            target = Path(draw) / (Path(path).stem + ".png")
            if not cv2.imwrite(str(target), draw_frame(image, quads=list(quads), texts=[""] * len(quads))):
                raise click.ClickException(f"could not write {target}")


def _grammar(run, recipe: str | None, off: bool):
    """The grammar predict/evaluate decode with: RECIPE's, else the run's recipes' (None where unknown or off)."""
    from .core.config import RecipeError
    from .train.grammar import GrammarTooLarge, recipe_grammar, run_grammar

    if off and recipe:
        raise click.UsageError("give --grammar RECIPE or --no-grammar, not both")
    if off:
        return None
    if recipe:
        try:
            grammar = recipe_grammar(recipe)
        except RecipeError as exc:
            raise RecipeProblem(str(exc)) from None
        except GrammarTooLarge as exc:
            raise click.BadParameter(str(exc), param_hint="--grammar") from None
    else:
        try:
            grammar = run_grammar(run)
        except (GrammarTooLarge, RecipeError) as exc:
            click.echo(f"note: decoding without a grammar: {exc}", err=True)
            return None
        if grammar is None:
            return None
    click.echo(f"grammar: {', '.join(grammar.sources)} ({grammar.n_states} states; --no-grammar to turn off)",
               err=True)
    return grammar


def _grammar_charset(grammar, charset: str) -> None:
    from .train.grammar import check_characters

    missing = check_characters(grammar, charset) if grammar is not None else ""
    if missing:
        click.echo(f"warning: the grammar uses characters the model cannot output ({missing!r}); lines with them "
                   f"are never read", err=True)


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--data", default=None, type=DATASET,
              help="a generated dataset to evaluate on (its crops, or lines cut from its pages)")
@click.option("--images", default=None, type=click.Path(exists=True, file_okay=False),
              help="a folder of real line images, with --labels")
@click.option("--frames", default=None, type=click.Path(exists=True, file_okay=False),
              help="reader, detector and spotter runs: a folder of camera frames with ground truth (--labels labels.jsonl, "
                   "FRAMES/labels.jsonl, else ICDAR 2015 gt_<name>.txt files; docs/reader.md)")
@click.option("--labels", default=None, type=click.Path(exists=True, dir_okay=False),
              help="with --images: TSV of `path<TAB>text`, paths relative to this file (default: "
                   "IMAGES/labels.tsv); with --frames: labels.jsonl")
@click.option("--limit", default=None, type=click.IntRange(1),
              help="evaluate at most this many lines (spotter: pages; --frames: frames)")
@click.option("--ignore-case", is_flag=True, help="compare case-insensitively")
@click.option("--only", default=None, help="compare only these characters (others are removed from both texts)")
@click.option("-o", "--output", default=None, type=OUT_FOLDER,
              help="where predictions.csv and failures.png go  [default: RUN/eval-<data name>]")
@click.option("--beam-width", default=0, type=click.IntRange(0),
              help="recognizer runs: CTC beam search with this many beams (0: greedy decoding; with a grammar, "
                   "10 beams)")
@GRAMMAR
@NO_GRAMMAR
def evaluate(run, data, frames, images, labels, limit, ignore_case, only, output, beam_width, grammar_recipe,
             no_grammar) -> None:
    """String and character accuracy (published Table 2), predictions.csv and a sheet of the worst failures.

    For a spotter run (pages, --data only): detection precision, recall and F1 at IoU 0.5 and end-to-end
    accuracy (a line counts if its box matches and its text is read exactly). For a reader run, or a spotter run
    with --frames: the same on camera frames with quad ground truth (docs/reader.md), written to metrics.json,
    predictions.csv, frames.csv and failures.png.
    """
    _need_tensorflow()
    from .train.evaluate import dataset_lines, evaluate_recognizer, labelled_images
    from .train.runs import RunError, run_kind

    try:
        kind = run_kind(run, readers=True)
    except RunError as exc:
        raise click.BadParameter(str(exc), param_hint="RUN") from None
    if kind in ("reader", "detector") or frames is not None:
        if kind == "recognizer":
            raise click.UsageError("--frames needs a reader, detector or spotter run (a recognizer reads line images: "
                                   "--images)")
        if grammar_recipe:
            raise click.UsageError("--grammar needs a recognizer run (a reader's grammar is set in its reader.json)")
        _evaluate_frames(run, kind, frames, data, images, labels, limit, ignore_case, only, output, no_grammar)
        return
    if kind == "spotter":
        if grammar_recipe:
            raise click.UsageError("--grammar needs a recognizer run")
        _evaluate_spotter(run, data, images, labels, limit, output)
        return
    if (data is None) == (images is None and labels is None):
        raise click.UsageError("give either --data DATASET or --images DIR [--labels labels.tsv]")
    grammar = _grammar(run, grammar_recipe, no_grammar)
    if grammar is not None:
        from .train.recognizer import RecognizerConfig

        _grammar_charset(grammar, RecognizerConfig.load(Path(run) / "config.json").charset)
    if data is not None:
        items, name = dataset_lines(data, limit), Path(data).name
    else:
        labels = labels or str(Path(images) / "labels.tsv")
        if not Path(labels).exists():
            raise click.BadParameter(f"{labels} does not exist", param_hint="--labels")
        _labels_file(labels, "--labels")
        items, name = labelled_images(labels), Path(images or Path(labels).parent).resolve().name
        if limit:
            import itertools

            items = itertools.islice(items, limit)
    target = Path(output or Path(run) / f"eval-{name}")
    try:
        result = evaluate_recognizer(run, items, target, ignore_case=ignore_case, only=only, beam_width=beam_width,
                                     grammar=grammar)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    metrics = result.as_dict()
    if grammar is not None:
        metrics["grammar"] = list(grammar.sources)
    (target / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    rejected = "" if result.rejected is None else f"; {result.rejected} rejected by the grammar (counted wrong)"
    click.echo(f"{result.count} lines: string accuracy {result.string_accuracy:.4f}, "
               f"character accuracy {result.char_accuracy:.4f}{rejected}")
    click.echo(f"predictions: {target / 'predictions.csv'}; worst failures: {target / 'failures.png'}")


def _evaluate_spotter(run, data, images, labels, limit, output) -> None:
    from .train.evaluate_spotter import evaluate_spotter

    if data is None or images is not None or labels is not None:
        raise click.UsageError("a spotter run is evaluated on pages: give --data DATASET")
    target = Path(output or Path(run) / f"eval-{Path(data).name}")
    try:
        result = evaluate_spotter(run, data, target, limit=limit)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    (target / "metrics.json").write_text(json.dumps(result.as_dict(), indent=1) + "\n")
    click.echo(f"{result.pages} pages, {result.gt_lines} lines, {result.detections} detections: "
               f"detection P {result.precision:.4f} R {result.recall:.4f} F1 {result.f1:.4f} (IoU 0.5); "
               f"end-to-end F1 {result.e2e_f1:.4f}, string accuracy {result.string_accuracy:.4f}, "
               f"page accuracy {result.page_accuracy:.4f}")
    click.echo(f"predictions: {target / 'predictions.csv'}; failures: {target}/failures-*.png")


def _evaluate_frames(run, kind, frames, data, images, labels, limit, ignore_case, only, output, no_grammar) -> None:
    from .train.frames import FrameLabelError, evaluate_frames, load_frames

    if frames is None or data is not None or images is not None:
        raise click.UsageError(f"a {kind} run is evaluated on camera frames: give --frames DIR [--labels labels.jsonl]"
                               + ("; write a dataset's pages as frames with frames.write_frame_labels (docs/reader.md)"
                                  if kind == "detector" else ""))
    try:
        truths = load_frames(frames, labels)
    except FrameLabelError as exc:
        raise LabelsProblem(str(exc)) from None
    truths = truths[:limit] if limit else truths
    if kind == "reader":
        from .train.reader import read_frames

        reader = _load_reader(run, "best", no_grammar)
        read = lambda batch: read_frames(reader, batch)  # noqa: E731
    elif kind == "detector":  # detection scores only: nothing is read
        from .train.reader import detect_frames
        from .train.runs import load_detector

        detector = load_detector(run)
        read = lambda batch: detect_frames(detector, batch)  # noqa: E731
    else:
        from .train.reader import spot_frames
        from .train.runs import load_spotter

        spotter = load_spotter(run)
        read = lambda batch: spot_frames(spotter, batch)  # noqa: E731
    root = Path(labels).parent if labels else Path(frames)
    target = Path(output or Path(run) / f"eval-frames-{Path(frames).resolve().name}")
    try:
        result = evaluate_frames(read, truths, target, ignore_case=ignore_case, only=only, root=root.resolve())
    except FrameLabelError as exc:
        raise LabelsProblem(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(result.table())
    click.echo(f"metrics: {target / 'metrics.json'}; predictions: {target / 'predictions.csv'}; "
               f"worst frames: {target / 'failures.png'}")


@main.group("reader")
def reader_group() -> None:
    """Frame readers: a detector run and a recognizer run used together on camera frames (docs/reader.md)."""


@reader_group.command("create")
@click.option("--detector", required=True, type=click.Path(exists=True, file_okay=False),
              help="the detector run: an oriented detector (`train detector`: rotated boxes) or a spotter run (its "
                   "detection head; axis-aligned boxes become quads)")
@click.option("--recognizer", required=True, type=click.Path(exists=True, file_okay=False),
              help="the recognizer run that reads each detected line's rectified crop")
@click.option("--out", "out", required=True, type=OUT_FOLDER, help="the reader folder (reader.json goes there)")
@click.option("--height", default=None, type=click.IntRange(32),
              help="detector input height frames are resized to  [default: the detector run's]")
@click.option("--width", default=None, type=click.IntRange(32), help="detector input width  [default: the "
                                                                     "detector run's]")
@click.option("--score-threshold", default=None, type=click.FloatRange(0, 1),
              help="detection score threshold  [default: the detector run's]")
@click.option("--margin", default=None, type=click.FloatRange(0, 20),
              help="context around each detected line, in line heights  [default: the middle of the margins the "
                   "recognizer's training crops were cut with]")
@click.option("--no-grammar", is_flag=True, help="decode without the recognizer's recipes' grammar")
def reader_create(detector, recognizer, out, height, width, score_threshold, margin, no_grammar) -> None:
    """Make a reader run in OUT from a DETECTOR run and a RECOGNIZER run (paths kept relative to OUT unless given
    absolute), for `predict` and `evaluate --frames`."""
    _need_tensorflow()
    from .train.reader import READER_FILE, create_reader
    from .train.runs import RunError

    try:
        config = create_reader(detector, recognizer, out, height=height, width=width,
                               score_threshold=score_threshold, crop_margin=margin, grammar=not no_grammar)
    except RunError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"reader: {Path(out) / READER_FILE} (detector {config.detector}, recognizer {config.recognizer}, "
               f"crop margin {', '.join(f'{m:g}' for m in config.crop_margin)})")


@main.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--images", required=True, type=click.Path(file_okay=False),
              help="folder of unlabelled real line images (png, jpg, bmp, tif, webp; searched recursively); "
                   "nothing else in it is read, labels.tsv included")
@click.option("--out", "out", required=True, type=OUT_FOLDER, help="the adapted run (a new, empty folder)")
@click.option("--rounds", default=3, type=click.IntRange(1), help="self-training rounds")
@click.option("--steps", default=200, type=click.IntRange(1), help="fine-tuning steps per round")
@click.option("--threshold", default=0.9, type=click.FloatRange(min=0),
              help="keep a reading as a pseudo-label when its confidence is at least this")
@click.option("--data", "data", multiple=True, type=DATASET,
              help="synthetic dataset to keep training on; repeat to mix several  [default: the run's datasets]")
@click.option("--weight", "weights", multiple=True, type=click.FloatRange(min=0, min_open=True),
              help="sampling weight per synthetic dataset (per --data, or per dataset of the run), in order; "
                   "default 1 each")
@click.option("--pseudo-weight", default=1.0, type=click.FloatRange(min=0, min_open=True),
              help="sampling weight of the pseudo-labelled real lines")
@click.option("--val", default=None, type=DATASET,
              help="held-out dataset each round reports on  [default: the run's --val, if any]")
@click.option("--learning-rate", default=1e-4, type=click.FloatRange(min=0, min_open=True),
              help="peak learning rate of each round (cosine schedule, fresh Adam)")
@click.option("--batch-size", default=32, type=click.IntRange(1),
              help="lines per training step (with --bn-only: per forward pass)")
@click.option("--beam-width", default=0, type=click.IntRange(0),
              help="CTC beams when reading (0: greedy; with a grammar, 10 beams)")
@click.option("--augment", is_flag=True, help="online photometric augmentation of every training line")
@click.option("--seed", default=0, type=click.IntRange(0))
@click.option("--weights", "which", default="best", type=click.Choice(["best", "last"]),
              help="start from RUN's best validation epoch's weights, or its latest checkpoint")
@click.option("--bn-only", is_flag=True,
              help="no self-training: only re-estimate the batch-normalization statistics on the images")
@GRAMMAR
@NO_GRAMMAR
def adapt(run, images, out, rounds, steps, threshold, data, weights, pseudo_weight, val, learning_rate, batch_size,
          beam_width, augment, seed, which, bn_only, grammar_recipe, no_grammar) -> None:
    """Adapt a recognizer RUN to unlabelled real line images (self-training), into a new run --out.

    Each round reads the images with the current model, keeps the readings that are confident (--threshold) and
    valid under the grammar as pseudo-labels, and fine-tunes on the synthetic data mixed with them. OUT/adapt.json
    records every round's kept count and confidence; OUT is a run that predict, evaluate and export take.
    """
    _need_tensorflow()
    from .train.adapt import AdaptSettings, adapt as self_train, adapt_batchnorm, find_images
    from .train.runs import RunError, run_kind

    try:
        kind = run_kind(run, trained=True)
        if kind != "recognizer":
            raise RunError(f"{run} is a {kind} run; adapt takes a recognizer run")
    except RunError as exc:
        raise click.BadParameter(str(exc), param_hint="RUN") from None
    try:
        find_images(images)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--images") from None
    if Path(out).exists() and any(Path(out).iterdir()):
        raise click.BadParameter(f"{out} is not empty: choose another folder", param_hint="--out")
    if not data and not bn_only:
        from .train.adapt import source_data

        try:
            synthetic = source_data(Path(run))[0]
        except (ValueError, OSError) as exc:
            raise click.BadParameter(str(exc), param_hint="RUN") from None
    else:
        synthetic = data
    if weights and len(weights) != len(synthetic):
        raise click.BadParameter(f"give one --weight per synthetic dataset ({len(synthetic)}: "
                                 f"{', '.join(map(str, synthetic))}), got {len(weights)}", param_hint="--weight")
    grammar = _grammar(run, grammar_recipe, no_grammar)
    if grammar is not None:
        from .train.recognizer import RecognizerConfig

        _grammar_charset(grammar, RecognizerConfig.load(Path(run) / "config.json").charset)
    from .store.format import CorruptRecord, DatasetError

    try:
        if bn_only:
            adapt_batchnorm(run, images, out, batch_size=batch_size, grammar=grammar, which=which, log=click.echo)
            return
        settings = AdaptSettings(rounds=rounds, steps=steps, threshold=threshold, pseudo_weight=pseudo_weight,
                                 weights=list(weights) or None, batch_size=batch_size, learning_rate=learning_rate,
                                 beam_width=beam_width, augment=augment, seed=seed)
        record = self_train(run, images, out, settings, data=list(data) or None, val=val, grammar=grammar,
                            which=which, log=click.echo)
    except (ValueError, OSError, DatasetError, CorruptRecord) as exc:
        raise click.ClickException(str(exc)) from None
    if not record["trained_rounds"]:
        raise click.ClickException(f"{record['stopped']}; no adapted run was written (see {Path(out) / 'adapt.json'})"
                                   f"; lower --threshold")


@main.command("export")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "--out", "out", required=True, type=OUT_FOLDER, help="export folder")
@click.option("--formats", default="savedmodel,onnx,tflite-fp32,tflite-fp16",
              help="comma-separated: savedmodel, onnx, tflite-fp32, tflite-fp16")
@click.option("--data", default=None, type=DATASET,
              help="dataset for the parity check (a reader's: its pages as frames)  [default: the run's --val, else "
                   "its training data]")
@click.option("--images", default=None, type=click.Path(exists=True, file_okay=False),
              help="a folder of real line images with labels.tsv for the parity check, instead of --data (a "
                   "reader's: a folder of frames)")
@click.option("--count", default=200, type=click.IntRange(1), help="parity images (a reader's: frames)")
@click.option("--repeats", default=200, type=click.IntRange(1), help="timed runs per artefact (median reported)")
@click.option("--weights", "which", default="best", type=click.Choice(["best", "last"]),
              help="the best validation epoch's weights, or the latest checkpoint")
@click.option("--opset", default=17, type=click.IntRange(13, 21),
              help="ONNX opset; 13 for TensorRT 8.2 (JetPack 4.6 on a Jetson Nano)")
@click.option("--no-parity", is_flag=True, help="export only; skip report.json")
@click.option("--overwrite", is_flag=True, help="replace a non-empty export folder")
@GRAMMAR
@NO_GRAMMAR
def export_command(run, out, formats, data, images, count, repeats, which, opset, no_parity, overwrite,
                   grammar_recipe, no_grammar) -> None:
    """Export a trained RUN (SavedModel, ONNX, TFLite) with metadata, a parity report and a Jetson kit.

    RUN may be a reader (reader.json): its detector and recognizer go into one folder, and the kit's infer.py
    reads whole frames; its parity compares the Keras reader with the kit on frames."""
    _need_tensorflow()
    from .export.exporter import export_run, parse_formats
    from .export.parity import eval_items, format_table, parity_report, reader_frames
    from .train.runs import RunError, run_kind

    try:
        formats = parse_formats(formats)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--formats") from None
    if data and images:
        raise click.UsageError("give --data or --images, not both")
    try:
        kind = run_kind(run, trained=True, readers=True)
    except RunError as exc:
        raise click.BadParameter(str(exc), param_hint="RUN") from None
    if images and not no_parity and kind != "reader":
        _labels_file(str(Path(images) / "labels.tsv"), "--images")
    if kind in ("spotter", "detector", "reader") and grammar_recipe:
        raise click.UsageError("--grammar needs a recognizer run")
    if kind == "recognizer":
        grammar = _grammar(run, grammar_recipe, no_grammar)
    else:
        grammar = None if no_grammar or kind != "reader" else "run"
    if kind == "detector" and not no_parity:
        click.echo("parity: a detector export has no report of its own; export a reader (reader.json) for the "
                   "frame-level parity of the detector and the recognizer")
        no_parity = True
    try:
        if not no_parity:  # find the parity images before the slow conversions
            if kind == "reader":
                lines, source = reader_frames(run, data, images, count)
                truths = []
            else:
                lines, truths, source = eval_items(run, data, images, count)
        export_run(run, out, formats, overwrite=overwrite, which=which, opset=opset, log=click.echo,
                   grammar=grammar)
        if not no_parity:
            if len(lines) < count:
                click.echo(f"warning: only {len(lines)} parity images in {source} (asked for {count})")
            report = parity_report(run, out, lines, truths, source, repeats=repeats, log=lambda _: None)
    except RunError as exc:
        raise click.BadParameter(str(exc), param_hint="RUN") from None
    except (ValueError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"export: {out} (metadata.json, jetson/)")
    if not no_parity:
        click.echo(format_table(report))
        if not report["passed"]:
            raise click.ClickException(f"parity failed: see {Path(out) / 'report.json'}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def fonts(as_json: bool) -> None:
    """List the bundled fonts: category, licence and character coverage."""
    from .stages.dotmatrix import TABLES, DotMatrixSource, load_table
    from .stages.fonts import FontFace, catalog

    rows = []
    for info in catalog().values():
        face = FontFace(info.id, str(info.path), info.axes, info.exclude)
        cov = face.coverage()
        rows.append({"id": info.id, "category": info.category, "licence": info.licence,
                     "file": str(info.path.relative_to(info.path.parents[1])),
                     "axes": dict(info.axes), "coverage": _coverage_summary(cov), "lookalikes": list(info.lookalikes)})
    for name in TABLES:
        rows.append({"id": f"bitmap:{name}", "category": "dot-matrix (procedural)", "licence": "Public domain",
                     "file": f"bitmap/{TABLES[name]}", "axes": {},
                     "coverage": _coverage_summary(load_table(name).coverage()),
                     "lookalikes": DotMatrixSource.model_fields["lookalikes"].default})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'id':28} {'category':24} {'licence':16} {'lookalikes':10} coverage")
    for row in rows:
        click.echo(f"{row['id']:28} {row['category']:24} {row['licence'][:16]:16} "
                   f"{' '.join(row['lookalikes']) or '-':10} {row['coverage']}")


def _coverage_summary(chars: frozenset[str]) -> str:
    import string

    parts = []
    for label, group in (("A-Z", string.ascii_uppercase), ("a-z", string.ascii_lowercase), ("0-9", string.digits)):
        have = sum(c in chars for c in group)
        parts.append(label if have == len(group) else f"{label} {have}/{len(group)}")
    punct = "-/.:#"
    missing = "".join(c for c in punct if c not in chars)
    parts.append(punct if not missing else f"{punct} (no {missing})")
    return ", ".join(parts)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
