"""Command line: ``python -m medattn train|evaluate|samples``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from medattn.paths import DEFAULT_MODEL_DIR, SAMPLES_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medattn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train_cmd = commands.add_parser("train", help="train a model on the synthetic benchmark")
    train_cmd.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    train_cmd.add_argument("--seed", type=int, default=0)
    train_cmd.add_argument("--train-size", type=int, default=12000)
    train_cmd.add_argument("--val-size", type=int, default=1500)
    train_cmd.add_argument("--epochs", type=int, default=10)
    train_cmd.add_argument("--eval-seed", type=int, default=1000, help="held-out benchmark seed for the card")
    train_cmd.add_argument("--eval-size", type=int, default=2000)

    eval_cmd = commands.add_parser("evaluate", help="evaluate a model on a held-out benchmark seed")
    eval_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    eval_cmd.add_argument("--seed", type=int, default=1000)
    eval_cmd.add_argument("--size", type=int, default=2000)

    calibrate_cmd = commands.add_parser("calibrate", help="refit temperatures and thresholds on the validation split")
    calibrate_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    calibrate_cmd.add_argument("--eval-seed", type=int, default=1000)
    calibrate_cmd.add_argument("--eval-size", type=int, default=2000)

    samples_cmd = commands.add_parser("samples", help="write the built-in sample cases")
    samples_cmd.add_argument("--out", type=Path, default=SAMPLES_DIR)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    if args.command == "train":
        from medattn.checkpoint import save_model
        from medattn.train import TrainConfig, evaluate, train

        config = TrainConfig(seed=args.seed, train_size=args.train_size, val_size=args.val_size, epochs=args.epochs)
        model, card = train(config)
        card["metrics"] = evaluate(model, card, args.eval_seed, args.eval_size)
        save_model(model, card, args.out)
        print(json.dumps(card["metrics"], indent=2))
    elif args.command == "evaluate":
        from medattn.checkpoint import load_model
        from medattn.train import evaluate

        model, card = load_model(args.model)
        print(json.dumps(evaluate(model, card, args.seed, args.size), indent=2))
    elif args.command == "calibrate":
        from medattn.checkpoint import load_model, save_model
        from medattn.train import benchmark_inputs, calibrate, evaluate

        model, card = load_model(args.model)
        training = card["training"]
        val_x, val_y, _ = benchmark_inputs(training["validation_seed"], training["val_size"], model.config.input_size)
        card = calibrate(model, card, val_x, val_y)
        card["metrics"] = evaluate(model, card, args.eval_seed, args.eval_size)
        save_model(model, card, args.model)
        print(json.dumps(card["metrics"], indent=2))
    elif args.command == "samples":
        from medattn.samples import write_samples

        for path in write_samples(args.out):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
