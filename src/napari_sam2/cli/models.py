"""`models` and `fetch`: the weights cache."""

import argparse

from .common import add_cache_option


def add_parsers(commands) -> None:
    models = commands.add_parser("models", help="list the models and the weights cache")
    add_cache_option(models)
    models.set_defaults(command=run_models)

    fetch = commands.add_parser("fetch", help="download one model's official checkpoint")
    fetch.add_argument("name", metavar="NAME", help="a model name, see `napari-sam2 models`")
    add_cache_option(fetch)
    fetch.add_argument(
        "--url", help="base address of the weights (default: Meta's, or $NAPARI_SAM2_WEIGHTS_URL)"
    )
    fetch.set_defaults(command=run_fetch)


def run_models(args: argparse.Namespace) -> int:
    from ..model.catalogue import CATALOGUE
    from ..model.demo import demo_weights_path
    from ..model.weights import cache_directory, cached_path, is_cached

    print(f"weights cache: {cache_directory(args.cache_dir)}")
    rows = [("model", "size", "cached", "path")]
    for name, entry in CATALOGUE.items():
        if entry.shipped:
            demo = demo_weights_path()
            rows.append((name, f"~{demo.stat().st_size / 1e6:.0f} MB", "shipped", str(demo)))
            continue
        cached = is_cached(name, args.cache_dir)
        path = str(cached_path(name, args.cache_dir)) if cached else "-"
        rows.append((name, f"~{entry.download_mb} MB", "yes" if cached else "no", path))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for *cells, path in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)),
            path,
            sep="  ",
        )
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from ..model.catalogue import model_entry
    from ..model.demo import demo_weights_path
    from ..model.weights import fetch_checkpoint

    if model_entry(args.name).shipped:  # nothing to download: it comes with the package
        print(demo_weights_path())
        return 0
    print(fetch_checkpoint(args.name, args.cache_dir, args.url))
    return 0
