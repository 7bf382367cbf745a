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


def _load(recipe: str, assets_root: tuple[str, ...]):
    from .recipe import RecipeError, load_recipe

    try:
        return load_recipe(recipe, assets_roots=list(assets_root))
    except RecipeError as exc:
        raise RecipeProblem(str(exc)) from None


RECIPE = click.argument("recipe", metavar="RECIPE")
ASSETS_ROOT = click.option("--assets-root", multiple=True, type=click.Path(file_okay=False),
                           help="another folder the recipe may read fonts, photos or wordlists from "
                                "(besides its own folder and the bundled assets); repeatable")
SEED = click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**63 - 1),
                    help="master seed: sample i depends on (seed, i) only")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="synthtext-industrial")
def main() -> None:
    """Render synthetic product-code images with exact ground truth from YAML recipes.

    RECIPE is a path to a YAML file or the name of a bundled recipe (e.g. `default`).
    """


@main.command()
@RECIPE
@ASSETS_ROOT
def check(recipe: str, assets_root: tuple[str, ...]) -> None:
    """Validate a recipe (schema and font coverage) without rendering."""
    from .textgen import charset

    r = _load(recipe, assets_root)
    chars = "".join(sorted(charset(r.text)))
    click.echo(f"{r.source}: OK ({len(r.text.blocks)} text block templates, {len(r.fonts)} font entries, "
               f"charset {chars!r})")


@main.command()
@RECIPE
@click.option("-n", "--count", default=16, type=click.IntRange(1, 400), help="number of samples")
@click.option("-o", "--output", default="preview.png", type=click.Path(dir_okay=False), help="PNG to write")
@click.option("--start", default=0, type=click.IntRange(0), help="index of the first sample")
@click.option("--tile-width", default=480, type=click.IntRange(64, 4000), help="width of each tile in pixels")
@SEED
@ASSETS_ROOT
def preview(recipe, count, output, start, tile_width, seed, assets_root) -> None:
    """Write a contact sheet of samples with line and character boxes drawn."""
    import cv2

    from .preview import contact_sheet
    from .render import render_sample

    r = _load(recipe, assets_root)
    samples = [render_sample(r, seed, i) for i in range(start, start + count)]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(output), contact_sheet(samples, tile_width)):
        raise click.ClickException(f"could not write {output}")
    click.echo(f"wrote {output} ({count} samples of {r.source}, seed {seed})")


@main.command()
@RECIPE
@click.option("-n", "--count", default=16, type=click.IntRange(0), help="number of samples")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="folder to write")
@click.option("--start", default=0, type=click.IntRange(0), help="index of the first sample")
@SEED
@ASSETS_ROOT
def render(recipe, count, output, start, seed, assets_root) -> None:
    """Render samples as image files, each with its ground truth as JSON (for a quick look)."""
    from tqdm import tqdm

    from .render import encode_image, render_sample

    r = _load(recipe, assets_root)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    enc = r.canvas.encoding
    ext = "jpg" if enc.format == "jpeg" else "png"
    for i in tqdm(range(start, start + count), desc="rendering", unit="img", disable=None):
        sample = render_sample(r, seed, i)
        (out / f"{i:09d}.{ext}").write_bytes(encode_image(sample.image, enc.format, enc.quality))
        (out / f"{i:09d}.json").write_text(json.dumps(sample.to_dict()), encoding="utf-8")
    click.echo(f"wrote {count} samples to {out}")


@main.command()
@RECIPE
@click.option("-n", "--count", "n", required=True, type=click.IntRange(0), help="number of images")
@click.option("-o", "--output", required=True, type=click.Path(), help="dataset folder")
@SEED
@click.option("--format", "fmt", default="lmdb", type=click.Choice(["lmdb"]),
              help="shard format (lmdb: DTRB layout; tfrecord is planned)")
@click.option("--shard-size", default=1000, type=click.IntRange(1), help="images per shard")
@click.option("--workers", default=os.cpu_count() or 1, type=click.IntRange(1), help="render processes")
@click.option("--crops/--no-crops", default=True, help="also write upright line crops (DTRB training data)")
@click.option("--overwrite", is_flag=True, help="replace a dataset made with other settings")
@ASSETS_ROOT
def generate(recipe, n, output, seed, fmt, shard_size, workers, crops, overwrite, assets_root) -> None:
    """Render N images into sharded LMDB with manifest; rerun the same command to resume."""
    from tqdm import tqdm

    from .generate import DatasetError, generate as run

    r = _load(recipe, assets_root)
    bar = tqdm(total=n, desc="generating", unit="img", dynamic_ncols=True, disable=None)

    def resumed(shards: int, images: int) -> None:
        bar.update(images)
        bar.write(f"resuming: {shards} finished shard(s) ({images} images) verified and kept")

    try:
        summary = run(r, output, n, seed=seed, fmt=fmt, shard_size=shard_size, workers=workers,
                      with_crops=crops, overwrite=overwrite, progress=bar.update, on_resume=resumed)
    except DatasetError as exc:
        bar.close()
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"\ninterrupted; finished shards are kept. Run the same command again to resume.", err=True)
        sys.exit(130)
    bar.close()
    click.echo(f"wrote {output}: {summary.images} images, {summary.lines} lines, {summary.chars} characters, "
               f"{summary.crops} crops, {summary.bytes / 1e6:.1f} MB; rendered {summary.rendered} in "
               f"{summary.seconds:.1f} s ({summary.pages_per_s:.1f} pages/s)")


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
def verify(dataset) -> None:
    """Re-hash every shard and decode every record; exit 1 naming what is wrong."""
    from .generate import verify as run

    problems = run(dataset)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"{dataset}: {len(problems)} problem(s)")
    click.echo(f"{dataset}: OK")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def fonts(as_json: bool) -> None:
    """List the bundled fonts: category, licence and character coverage."""
    from .dotmatrix import TABLES, load_table
    from .fonts import FontFace, catalog

    rows = []
    for info in catalog().values():
        face = FontFace(info.id, str(info.path), info.axes, info.exclude)
        cov = face.coverage()
        rows.append({"id": info.id, "category": info.category, "licence": info.licence,
                     "file": str(info.path.relative_to(info.path.parents[1])),
                     "axes": dict(info.axes), "coverage": _coverage_summary(cov)})
    for name in TABLES:
        rows.append({"id": f"bitmap:{name}", "category": "dot-matrix (procedural)", "licence": "Public domain",
                     "file": f"bitmap/{TABLES[name]}", "axes": {},
                     "coverage": _coverage_summary(load_table(name).coverage())})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'id':28} {'category':24} {'licence':16} coverage")
    for row in rows:
        click.echo(f"{row['id']:28} {row['category']:24} {row['licence'][:16]:16} {row['coverage']}")


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
