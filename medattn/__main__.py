"""Command line: ``python -m medattn train|evaluate|fit-ood|score|samples``.

``train`` also runs data-parallel under ``torchrun --nproc_per_node=N -m medattn train ...``.

``--data`` is ``synthetic`` (the built-in benchmark) or a MedMNIST .npz file, a folder of class
folders, or a CSV manifest (see medattn.datasets).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from medattn.paths import DEFAULT_MODEL_DIR, SAMPLES_DIR

SYNTHETIC = "synthetic"
# Benchmark seeds: training uses --seed, validation --seed + 1; held-out evaluation uses this one.
HELD_OUT_SEED = 1000
# Cases per class on which each explanation method is measured (occlusion runs 100 forward passes a case).
EXPLAIN_CASES = 100
# Held-out benchmark cases drawn at each larger size when fitting the unlikeness limit.
RENDERED_CASES = 300


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medattn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train_cmd = commands.add_parser("train", help="train a model and write its directory")
    train_cmd.add_argument("--data", default=SYNTHETIC, help="'synthetic', a .npz, a class-folder tree or a .csv")
    train_cmd.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    train_cmd.add_argument("--seed", type=int, default=0)
    train_cmd.add_argument("--epochs", type=int, default=8)
    train_cmd.add_argument("--input-size", type=int, default=128)
    train_cmd.add_argument("--channels", type=int, choices=(1, 3), default=1)
    train_cmd.add_argument(
        "--warmup-classes",
        nargs="*",
        default=None,
        help="classes trained alone first (default: nodule, on the synthetic benchmark)",
    )
    train_cmd.add_argument("--warmup-epochs", type=int, default=2)
    train_cmd.add_argument("--train-size", type=int, default=12000, help="synthetic cases to train on")
    train_cmd.add_argument("--val-size", type=int, default=1500, help="synthetic cases to validate on")
    train_cmd.add_argument("--eval-size", type=int, default=2000, help="held-out synthetic cases for the card")
    train_cmd.add_argument("--batch-size", type=int, default=64, help="global batch, split over torchrun's processes")
    train_cmd.add_argument(
        "--explain-cases", type=int, default=EXPLAIN_CASES, help="cases per class to measure explanations on"
    )

    eval_cmd = commands.add_parser("evaluate", help="evaluate a model on held-out data")
    eval_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    eval_cmd.add_argument("--data", default=SYNTHETIC)
    eval_cmd.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="synthetic benchmark seed")
    eval_cmd.add_argument("--size", type=int, default=2000, help="synthetic cases")
    eval_cmd.add_argument("--split", default="test", help="split of a dataset file")
    eval_cmd.add_argument("--explain", action="store_true", help="also measure every explanation method")
    eval_cmd.add_argument(
        "--write-card", action="store_true", help="replace the metrics in the model's card with these"
    )
    eval_cmd.add_argument("--explain-cases", type=int, default=EXPLAIN_CASES, help="cases per class to explain")

    ood_cmd = commands.add_parser(
        "fit-ood", help="measure the training data's features and write the unlikeness limit into the card"
    )
    ood_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ood_cmd.add_argument("--data", default=SYNTHETIC, help="the data the model was trained on")
    ood_cmd.add_argument("--seed", type=int, default=0, help="the training seed (validation uses seed + 1)")
    ood_cmd.add_argument("--train-size", type=int, default=12000)
    ood_cmd.add_argument("--val-size", type=int, default=1500)

    score_cmd = commands.add_parser("score", help="score an archive of scans into a CSV or Parquet file")
    score_cmd.add_argument("sources", nargs="+", help="folders (searched recursively), glob patterns, CSV manifests")
    score_cmd.add_argument("--out", type=Path, required=True, help="results.csv or results.parquet; resumes")
    score_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    score_cmd.add_argument("--overlays", type=Path, help="folder for an attention overlay PNG per file")
    score_cmd.add_argument("--batch-size", type=int, default=64)
    score_cmd.add_argument("--workers", type=int, default=2, help="decoding processes")

    samples_cmd = commands.add_parser("samples", help="write the built-in sample cases")
    samples_cmd.add_argument("--out", type=Path, default=SAMPLES_DIR)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    # Imported here so that --help answers without loading torch.
    from medattn import datasets, distributed
    from medattn.checkpoint import load_model, save_model, write_card
    from medattn.score import ScoreError
    from medattn.train import TrainConfig, evaluate, train

    def fit_unlikeness(model, train_set, val_set, data: str, val_seed: int) -> dict:
        """The card's ``ood`` entry: the training features' Gaussian, and a limit set on held-out images.

        On the benchmark, the held-out images include cases drawn at 256 and 512 px (as the sample cases
        are), so a larger rendering of the same kind of image is not called unlike.
        """
        from medattn import ood
        from medattn.train import model_inputs

        size, channels = model.config.input_size, model.config.in_channels
        held_out = [val_set]
        if data == SYNTHETIC:
            held_out += [datasets.synthetic(val_seed, RENDERED_CASES, rendered) for rendered in (256, 512)]
        return ood.fit(
            ood.features(model, model_inputs(train_set, size, channels)),
            [ood.features(model, model_inputs(images, size, channels)) for images in held_out],
        )

    def synthetic_or_file(location: str, split: str, seed: int, count: int, size: int) -> datasets.LabelledImages:
        if location == SYNTHETIC:
            return datasets.synthetic(seed, count, size)
        return datasets.open_dataset(location, split)

    try:
        if args.command == "train":
            from medattn.model import ModelConfig

            train_set = synthetic_or_file(args.data, "train", args.seed, args.train_size, args.input_size)
            val_set = synthetic_or_file(args.data, "val", args.seed + 1, args.val_size, args.input_size)
            model_config = ModelConfig(train_set.classes, in_channels=args.channels, input_size=args.input_size)
            warmup = args.warmup_classes
            if warmup is None:
                warmup = ["nodule"] if args.data == SYNTHETIC else []
            config = TrainConfig(
                seed=args.seed,
                epochs=args.epochs,
                batch_size=args.batch_size,
                warmup_classes=tuple(warmup),
                warmup_epochs=args.warmup_epochs if warmup else 0,
            )
            context = distributed.start()  # a process group under torchrun; nothing otherwise
            model, card = train(config, train_set, val_set, model_config, context)
            if context.is_main:
                card["ood"] = fit_unlikeness(model, train_set, val_set, args.data, args.seed + 1)
                held_out = synthetic_or_file(args.data, "test", HELD_OUT_SEED, args.eval_size, args.input_size)
                card["metrics"] = evaluate(model, card, held_out, explain_cases=args.explain_cases)
                save_model(model, card, args.out)
                print(json.dumps(card["metrics"], indent=2))
            distributed.stop(context)
        elif args.command == "evaluate":
            model, card = load_model(args.model)
            held_out = synthetic_or_file(args.data, args.split, args.seed, args.size, model.config.input_size)
            metrics = evaluate(model, card, held_out, explain_cases=args.explain_cases if args.explain else 0)
            if args.write_card:
                write_card({**card, "metrics": metrics}, args.model)
            print(json.dumps(metrics, indent=2))
        elif args.command == "fit-ood":
            model, card = load_model(args.model)
            size = model.config.input_size
            train_set = synthetic_or_file(args.data, "train", args.seed, args.train_size, size)
            val_set = synthetic_or_file(args.data, "val", args.seed + 1, args.val_size, size)
            card["ood"] = fit_unlikeness(model, train_set, val_set, args.data, args.seed + 1)
            write_card(card, args.model)
            print(f"unlikeness limit {card['ood']['threshold']:.2f} written to {args.model}")
        elif args.command == "score":
            from medattn.inference import Predictor
            from medattn.score import score

            timings = score(
                Predictor.load(args.model), args.sources, args.out, args.overlays, args.batch_size, args.workers
            )
            print(
                f"{timings.files} files scored into {args.out} ({timings.failed} could not be read; "
                f"{timings.skipped} were already there) in {timings.seconds:.1f} s, "
                f"{timings.files / max(timings.seconds, 1e-9):.0f} files/s"
            )
        elif args.command == "samples":
            from medattn.samples import write_samples

            for path in write_samples(args.out):
                print(path)
    except (datasets.DatasetError, ScoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
