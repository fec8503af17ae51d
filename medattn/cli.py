"""Command line: ``medattn train|evaluate|fit-ood|fit-faithfulness|robustness|score|samples`` (or
``python -m medattn ...``), one function per command.

``train`` also runs data-parallel under ``torchrun --nproc_per_node=N -m medattn train ...``.

``--data`` is ``synthetic`` (the built-in benchmark) or a MedMNIST .npz file, a folder of class
folders, or a CSV manifest (see medattn.training.datasets). A bad input gets one line on stderr and
exit status 2; nothing a user can type gets a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from medattn import runtime
from medattn.assets import DEFAULT_MODEL_DIR, SAMPLES_DIR
from medattn.errors import DatasetError, MedattnError
from medattn.model.backbones import BACKBONES
from medattn.model.figures import ExplanationQuality, Metrics, Robustness, from_json
from medattn.training.public import UNCERTAIN_POLICIES

if TYPE_CHECKING:
    from medattn.model.card import ModelCard, UnlikenessStatistics
    from medattn.model.network import AttentionNet
    from medattn.model.predictor import Predictor
    from medattn.training.datasets import LabelledImages

SYNTHETIC = "synthetic"
# Benchmark seeds: training uses --seed, validation --seed + 1; held-out evaluation uses this one.
HELD_OUT_SEED = 1000
# Cases per class on which each explanation method is measured (occlusion runs 225 forward passes a case).
EXPLAIN_CASES = 100
# Held-out benchmark cases drawn at each larger size when fitting the unlikeness limit.
RENDERED_CASES = 300
# Held-out cases per shift in the robustness suite.
ROBUSTNESS_CASES = 500
USAGE_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    runtime.keep_freed_memory()  # batches of 64 otherwise fault in fresh pages on every forward pass
    try:
        return args.command(args) or 0
    except MedattnError as error:
        print(f"error: {error}", file=sys.stderr)
    except OSError as error:  # a path that cannot be read or written: the user's to fix, not a bug
        print(f"error: {error.filename or 'a file'}: {error.strerror}", file=sys.stderr)
    return USAGE_ERROR


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="medattn", description=__doc__)
    commands = root.add_subparsers(dest="name", required=True)

    train_cmd = commands.add_parser("train", help="train a model and write its directory")
    train_cmd.set_defaults(command=train)
    train_cmd.add_argument("--data", default=SYNTHETIC, help="'synthetic', a .npz, a class-folder tree or a .csv")
    _uncertain_option(train_cmd)
    train_cmd.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    train_cmd.add_argument("--seed", type=int, default=0)
    train_cmd.add_argument("--epochs", type=int, default=10)
    train_cmd.add_argument("--input-size", type=int, default=128)
    train_cmd.add_argument("--channels", type=int, choices=(1, 3), default=1)
    train_cmd.add_argument(
        "--warmup-classes",
        nargs="*",
        default=None,
        help="classes trained alone first (default: nodule, on the synthetic benchmark)",
    )
    train_cmd.add_argument("--warmup-epochs", type=int, default=2)
    train_cmd.add_argument(
        "--attention-overlap-weight",
        type=float,
        default=0.1,
        help="penalty on two findings present in one image sharing attention (0 turns it off)",
    )
    train_cmd.add_argument(
        "--no-augment", action="store_true", help="train on the images as given, without the robustness augmentation"
    )
    train_cmd.add_argument(
        "--augment-blur",
        type=float,
        default=0.0,
        help="with the augmentation, blur this share of the images (Gaussian, SD 0.5-2 px of the model input)",
    )
    train_cmd.add_argument(
        "--attention-mask-weight",
        type=float,
        default=0.0,
        help="supervise the attention with the data's masks, with this weight (0: no masks used)",
    )
    train_cmd.add_argument(
        "--attention-mask-share", type=float, default=0.25, help="share of training cases whose masks are used"
    )
    train_cmd.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="pull the training labels from 0 and 1 to this share / 2 and 1 - it / 2 (keeps probabilities "
        "from saturating)",
    )
    train_cmd.add_argument(
        "--subtle-share",
        type=float,
        default=0.0,
        help="share of synthetic training cases whose --subtle-findings are drawn subtler; validation and "
        "evaluation stay as drawn (docs/model.md, 'Off the benchmark')",
    )
    train_cmd.add_argument("--subtle-findings", nargs="*", help="findings drawn subtler in training (default: all)")
    train_cmd.add_argument("--train-size", type=int, default=12000, help="synthetic cases to train on")
    train_cmd.add_argument("--val-size", type=int, default=1500, help="synthetic cases to validate on")
    train_cmd.add_argument("--eval-size", type=int, default=2000, help="held-out synthetic cases for the card")
    train_cmd.add_argument("--batch-size", type=int, default=64, help="global batch, split over torchrun's processes")
    train_cmd.add_argument(
        "--explain-cases", type=int, default=EXPLAIN_CASES, help="cases per class to measure explanations on"
    )
    train_cmd.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes decoding image files for training (0: the training process decodes them; on 2 cores "
        "none is fastest, as for scoring); images already in memory are prepared once",
    )
    train_cmd.add_argument(
        "--backbone",
        choices=BACKBONES,
        default=BACKBONES[0],
        help="the encoder: medattn's own (tokens every 4 px), or a MONAI network (tokens every 32 px)",
    )
    train_cmd.add_argument(
        "--encoder-weights",
        type=Path,
        help="pretrained weights for a MONAI backbone, a safetensors file keyed as MONAI names them (no download)",
    )
    train_cmd.add_argument(
        "--mixed-precision",
        action="store_true",
        help="run the forward pass and the losses in bfloat16 (torch.autocast), for a GPU; the weights stay float32",
    )
    train_cmd.add_argument(
        "--checkpoint",
        type=Path,
        help="write the run's progress here after every epoch; a run given one that exists resumes from it",
    )

    eval_cmd = commands.add_parser("evaluate", help="evaluate a model on held-out data")
    eval_cmd.set_defaults(command=evaluate)
    eval_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    eval_cmd.add_argument("--data", default=SYNTHETIC)
    _uncertain_option(eval_cmd)
    eval_cmd.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="synthetic benchmark seed")
    eval_cmd.add_argument("--size", type=int, default=2000, help="synthetic cases")
    eval_cmd.add_argument("--split", default="test", help="split of a dataset file (train, val or test)")
    eval_cmd.add_argument("--explain", action="store_true", help="also measure every explanation method")
    eval_cmd.add_argument(
        "--write-card", action="store_true", help="replace the metrics in the model's card with these"
    )
    eval_cmd.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help="with --explain: only these explanation methods (attention, hirescam, gradcam, integrated_gradients, "
        "occlusion; default every one: the last two cost most at large inputs)",
    )
    eval_cmd.add_argument(
        "--add-localisation",
        action="store_true",
        help="with --explain: keep the card's metrics and add this data's localisation beside them (replacing "
        "an earlier one of the same data)",
    )
    eval_cmd.add_argument("--explain-cases", type=int, default=EXPLAIN_CASES, help="cases per class to explain")
    eval_cmd.add_argument("--workers", type=int, default=0, help="processes decoding image files")

    ood_cmd = commands.add_parser(
        "fit-ood", help="measure the training data's features and write the unlikeness limit into the card"
    )
    ood_cmd.set_defaults(command=fit_ood)
    ood_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ood_cmd.add_argument("--data", default=SYNTHETIC, help="the data the model was trained on")
    _uncertain_option(ood_cmd)
    ood_cmd.add_argument("--seed", type=int, default=0, help="the training seed (validation uses seed + 1)")
    ood_cmd.add_argument("--train-size", type=int, default=12000)
    ood_cmd.add_argument("--val-size", type=int, default=1500)
    ood_cmd.add_argument("--subtle-share", type=float, default=0.0, help="as the model was trained with")
    ood_cmd.add_argument("--subtle-findings", nargs="*", help="likewise")
    ood_cmd.add_argument("--workers", type=int, default=0, help="processes decoding image files")

    hiding_cmd = commands.add_parser(
        "fit-faithfulness",
        help="choose per finding how the faithfulness check hides a region, on validation cases; write it to the card",
    )
    hiding_cmd.set_defaults(command=fit_faithfulness)
    hiding_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    hiding_cmd.add_argument("--seed", type=int, default=1, help="the synthetic validation seed (training's seed + 1)")
    hiding_cmd.add_argument("--cases", type=int, default=200)

    robust_cmd = commands.add_parser(
        "robustness", help="measure the model under realistic shifts of held-out cases and write it into the card"
    )
    robust_cmd.set_defaults(command=robustness)
    robust_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    robust_cmd.add_argument("--cases", type=int, default=ROBUSTNESS_CASES, help="held-out cases per shift")
    robust_cmd.add_argument("--write-card", action="store_true", help="write the figures into the model card")

    bundle_cmd = commands.add_parser(
        "export-bundle", help="write a model as a MONAI bundle (metadata, TorchScript, and medattn's own card)"
    )
    bundle_cmd.set_defaults(command=export_bundle)
    bundle_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    bundle_cmd.add_argument("--out", type=Path, required=True, help="a new folder for the bundle")

    score_cmd = commands.add_parser("score", help="score an archive of scans into a CSV or Parquet file")
    score_cmd.set_defaults(command=score)
    score_cmd.add_argument("sources", nargs="*", help="folders (searched recursively), glob patterns, CSV manifests")
    score_cmd.add_argument("--out", type=Path, required=True, help="results.csv or results.parquet; resumes")
    score_cmd.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    score_cmd.add_argument("--overlays", type=Path, help="folder for an attention overlay PNG per file")
    score_cmd.add_argument("--batch-size", type=int, default=64)
    score_cmd.add_argument(
        "--workers",
        type=int,
        default=0,
        help="decoding processes beside this one (default none: on 2 cores, decoding here, a JPEG 2000 image on "
        "every core, scored small PNGs twice as fast and 2k radiographs 1.6 times as fast as 2 workers)",
    )
    score_cmd.add_argument(
        "--keep-paths", action="store_true", help="also write each file's path (archive paths often name patients)"
    )
    score_cmd.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="score on a Ray cluster: 'local' (this machine's cores), 'auto' (one started with 'ray start'), or "
        "ray://host:10001; --out is then a folder of Parquet files (pip install -r requirements-cluster.txt)",
    )
    score_cmd.add_argument("--actors", type=int, help="with --cluster: model actors (default: one per CPU or GPU)")
    score_cmd.add_argument(
        "--gpus-per-actor", type=float, default=0, help="with --cluster: GPUs each actor runs its model on"
    )
    score_cmd.add_argument(
        "--dicomweb",
        metavar="URL",
        help="score the studies on this DICOMweb server instead of files (credentials: MEDATTN_DICOMWEB_USER "
        "and MEDATTN_DICOMWEB_PASSWORD)",
    )
    score_cmd.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="ATTRIBUTE=VALUE",
        help="with --dicomweb: which studies (QIDO-RS), e.g. ModalitiesInStudy=CR or StudyDate=20260101-20261231",
    )
    score_cmd.add_argument(
        "--store-results", action="store_true", help="with --dicomweb: store each image's DICOM results back beside it"
    )

    samples_cmd = commands.add_parser("samples", help="write the built-in sample cases")
    samples_cmd.set_defaults(command=samples)
    samples_cmd.add_argument("--out", type=Path, default=SAMPLES_DIR)
    return root


def _uncertain_option(command: argparse.ArgumentParser) -> None:
    """For every command that reads a dataset: how CheXpert's uncertain labels are taken."""
    command.add_argument(
        "--chexpert-uncertain",
        choices=UNCERTAIN_POLICIES,
        default=UNCERTAIN_POLICIES[0],
        help="CheXpert's uncertain labels as negative (U-Zeros) or positive (U-Ones)",
    )


# Each command imports what it needs when it runs, so that --help answers without loading torch.


def train(args: argparse.Namespace) -> None:
    from medattn.model.checkpoint import save_model
    from medattn.model.network import ModelConfig
    from medattn.training import distributed
    from medattn.training.augment import Augmentation
    from medattn.training.evaluate import evaluate
    from medattn.training.train import TrainConfig
    from medattn.training.train import train as train_model

    if not 0 <= args.augment_blur <= 1 or (args.augment_blur and args.no_augment):
        raise DatasetError("--augment-blur is the share of images blurred, from 0 to 1, with the augmentation on.")
    uncertain = args.chexpert_uncertain
    train_set = _labelled(
        args.data, "train", args.seed, args.train_size, args.input_size, args.subtle_share, args.subtle_findings,
        uncertain,
    )  # fmt: skip
    val_set = _labelled(args.data, "val", args.seed + 1, args.val_size, args.input_size, uncertain=uncertain)
    model_config = ModelConfig(
        train_set.classes, in_channels=args.channels, input_size=args.input_size, backbone=args.backbone
    )
    warmup = args.warmup_classes
    if warmup is None:
        warmup = ["nodule"] if args.data == SYNTHETIC else []
    config = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        warmup_classes=tuple(warmup),
        warmup_epochs=args.warmup_epochs if warmup else 0,
        augmentation=None if args.no_augment else Augmentation(blur=args.augment_blur),
        attention_overlap_weight=args.attention_overlap_weight,
        attention_mask_weight=args.attention_mask_weight,
        attention_mask_share=args.attention_mask_share,
        label_smoothing=args.label_smoothing,
        mixed_precision=args.mixed_precision,
        encoder_weights=str(args.encoder_weights) if args.encoder_weights else None,
    )
    context = distributed.start()  # a process group under torchrun; nothing otherwise
    model, card = train_model(
        config, train_set, val_set, model_config, context, workers=args.workers, checkpoint=args.checkpoint
    )
    if context.is_main:
        limits = _fit_unlikeness(model, card, train_set, val_set, args.data, args.seed + 1, args.workers)
        card = card.with_changes(unlikeness=limits)
        held_out = _labelled(args.data, "test", HELD_OUT_SEED, args.eval_size, args.input_size, uncertain=uncertain)
        metrics = evaluate(model, card, held_out, explain_cases=args.explain_cases)
        save_model(model, card.with_changes(metrics=from_json(Metrics, metrics, "metrics")), args.out)
        print(json.dumps(metrics, indent=2))
    distributed.stop(context)


def evaluate(args: argparse.Namespace) -> None:
    from medattn.explain import EXPLAINERS
    from medattn.model.card import write_card
    from medattn.model.checkpoint import load_model
    from medattn.training.datasets import for_model
    from medattn.training.evaluate import evaluate as evaluate_model

    if args.add_localisation and not args.explain:
        raise DatasetError("--add-localisation adds what --explain measures: give both.")
    if args.add_localisation and args.write_card:
        raise DatasetError("--add-localisation keeps the card's figures, --write-card replaces them: give one.")
    if unknown := set(args.methods or ()) - set(EXPLAINERS):
        raise DatasetError(f"no explanation method {', '.join(sorted(unknown))}; choose from {', '.join(EXPLAINERS)}.")
    model, card = load_model(args.model)
    held_out = _labelled(
        args.data, args.split, args.seed, args.size, card.preprocessing.input_size, uncertain=args.chexpert_uncertain
    )
    held_out = for_model(held_out, card.classes, card.display_names, card.task)
    if args.add_localisation and held_out.masks is None and held_out.regions is None:
        raise DatasetError(f"{held_out.source} has no boxes, outlines or masks of this model's findings.")
    explain_cases = args.explain_cases if args.explain else 0
    metrics = evaluate_model(model, card, held_out, explain_cases, args.workers, args.methods or tuple(EXPLAINERS))
    if args.write_card:
        card = card.with_changes(metrics=from_json(Metrics, metrics, "metrics"))
    if args.add_localisation:
        measured = from_json(ExplanationQuality, metrics["explanations"], "explanations")
        kept = tuple(quality for quality in card.localisation_elsewhere if quality.data != measured.data)
        card = card.with_changes(localisation_elsewhere=(*kept, measured))
    if args.write_card or args.add_localisation:
        write_card(card, args.model)
    print(json.dumps(metrics, indent=2))


def fit_ood(args: argparse.Namespace) -> None:
    from medattn.model.card import write_card
    from medattn.model.checkpoint import load_model

    model, card = load_model(args.model)
    if args.data == SYNTHETIC:
        _benchmark_findings(card.classes, "fit-ood on the benchmark")
    size = card.preprocessing.input_size
    uncertain = args.chexpert_uncertain
    train_set = _labelled(
        args.data, "train", args.seed, args.train_size, size, args.subtle_share, args.subtle_findings, uncertain
    )
    val_set = _labelled(args.data, "val", args.seed + 1, args.val_size, size, uncertain=uncertain)
    statistics = _fit_unlikeness(model, card, train_set, val_set, args.data, args.seed + 1, args.workers)
    write_card(card.with_changes(unlikeness=statistics), args.model)
    noise = "none" if statistics.noise_limit is None else f"{statistics.noise_limit:.4f}"
    print(f"limits written to {args.model}: unlikeness {statistics.threshold:.2f}, relative noise {noise}")


def fit_faithfulness(args: argparse.Namespace) -> None:
    import numpy as np

    from medattn.explain.faithfulness import best_hidings, hiding_checks, hiding_separation
    from medattn.model.card import write_card
    from medattn.model.predictor import Predictor
    from medattn.training import datasets

    predictor = Predictor.load(args.model)
    _benchmark_findings(predictor.classes, "fit-faithfulness")
    cases = datasets.synthetic(args.seed, args.cases, predictor.card.preprocessing.input_size, "val")
    separation = hiding_separation(hiding_checks(predictor, np.stack(cases.images), cases.labels > 0.5))
    chosen = best_hidings(separation)
    for finding, by_hiding in separation.items():
        figures = ", ".join(f"{hiding} {share:.1%}" for hiding, share in by_hiding.items())
        print(f"{finding}: {chosen[finding]} (separation from the controls: {figures})")
    write_card(predictor.card.with_changes(faithfulness_hiding=chosen), args.model)


def export_bundle(args: argparse.Namespace) -> None:
    from medattn.model.bundle import export_bundle as export

    print(f"MONAI bundle written to {export(args.model, args.out)}")


def robustness(args: argparse.Namespace) -> None:
    from medattn.model.card import write_card
    from medattn.model.predictor import Predictor
    from medattn.training.robustness import robustness as measure_robustness
    from medattn.training.robustness import table

    predictor = Predictor.load(args.model)
    _benchmark_findings(predictor.classes, "robustness")
    figures = measure_robustness(predictor, args.cases)
    if args.write_card:
        write_card(predictor.card.with_changes(robustness=from_json(Robustness, figures, "robustness")), args.model)
    print(table(figures))


def score(args: argparse.Namespace) -> None:
    from medattn.batch import score as score_archive
    from medattn.errors import BatchError
    from medattn.model.predictor import Predictor

    if args.dicomweb and args.sources:
        raise BatchError("Score either files or a DICOMweb server (--dicomweb), not both in one run.")
    if not args.dicomweb and (args.query or args.store_results):
        raise BatchError("--query and --store-results are for a DICOMweb server: add --dicomweb URL.")
    if not args.dicomweb and not args.sources:
        raise BatchError("Name the files or folders to score, or a DICOMweb server with --dicomweb URL.")
    if args.cluster and (args.dicomweb or args.overlays):
        raise BatchError("--cluster scores files into Parquet rows; --dicomweb and --overlays run on one machine.")
    if not args.cluster and (args.actors or args.gpus_per_actor):
        raise BatchError("--actors and --gpus-per-actor are for a Ray cluster: add --cluster ADDRESS.")
    if args.cluster:
        score_cluster(args)
        return
    predictor = Predictor.load(args.model)
    if args.dicomweb:
        score_dicomweb(predictor, args)
        return
    timings = score_archive(
        predictor, args.sources, args.out, args.overlays, args.batch_size, args.workers, keep_paths=args.keep_paths
    )
    print(
        f"{timings.files} files scored into {args.out} ({timings.failed} could not be read; "
        f"{timings.skipped} were already there) in {timings.seconds:.1f} s, "
        f"{timings.files / max(timings.seconds, 1e-9):.0f} files/s"
    )


def score_cluster(args: argparse.Namespace) -> None:
    from medattn.errors import BatchError

    try:
        from medattn.cluster import score_on_cluster
    except ModuleNotFoundError as missing:
        raise BatchError(
            f"--cluster needs Ray, which is not installed ({missing.name}): pip install -r requirements-cluster.txt"
        ) from None
    run = score_on_cluster(
        args.model, args.sources, args.out, args.cluster, args.keep_paths, args.actors, args.gpus_per_actor
    )
    print(
        f"{run.files} files scored into {args.out} by {run.actors} actors ({run.skipped} were already there)"
        if run.files
        else f"Nothing to score: all {run.skipped} files are already in {args.out}"
    )


def score_dicomweb(predictor: Predictor, args: argparse.Namespace) -> None:
    import os

    from medattn.errors import BatchError
    from medattn.pacs.dicomweb import PASSWORD_ENV, USER_ENV, Pacs
    from medattn.pacs.scoring import score_server

    filters = {}
    for pair in args.query:
        attribute, equals, value = pair.partition("=")
        if not equals or not attribute.strip():
            raise BatchError(f"--query takes ATTRIBUTE=VALUE (e.g. ModalitiesInStudy=CR), not {pair!r}.")
        filters[attribute.strip()] = value.strip()
    pacs = Pacs(args.dicomweb, os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV))
    run = score_server(predictor, pacs, args.out, filters, args.store_results)
    print(
        f"{run.images} images from {pacs.server} scored into {args.out} ({run.failed} could not be read; "
        f"{run.skipped} were already there; {run.stored} result objects stored) in {run.seconds:.1f} s"
    )


def samples(args: argparse.Namespace) -> None:
    from medattn.benchmark import write_samples

    for path in write_samples(args.out):
        print(path)


def _benchmark_findings(classes: Sequence[str], command: str) -> None:
    """Refuse a command that measures a model on the benchmark's findings, in their order, unless they are its."""
    from medattn.benchmark import FINDINGS

    if tuple(classes) != FINDINGS:
        raise DatasetError(
            f"{command} measures a model of the benchmark's findings ({', '.join(FINDINGS)}, in that order); "
            f"this model finds {', '.join(classes)}."
        )


def _labelled(
    location: str,
    split: str,
    seed: int,
    count: int,
    size: int,
    subtle_share: float = 0.0,
    subtle: Sequence[str] | None = None,
    uncertain: str = "zeros",
) -> LabelledImages:
    """The benchmark (``seed`` picks its cases; ``subtle_share`` of the ``subtle`` findings, every one if None,
    are drawn subtler: see ``synthetic.generate``) or one split of a dataset file or folder (CheXpert's uncertain
    labels taken as ``uncertain`` says)."""
    from medattn.benchmark import FINDINGS
    from medattn.training import datasets

    if location == SYNTHETIC:
        return datasets.synthetic(seed, count, size, split, subtle_share, FINDINGS if subtle is None else tuple(subtle))
    return datasets.open_dataset(location, split, uncertain)


def _fit_unlikeness(
    model: AttentionNet,
    card: ModelCard,
    train_set: LabelledImages,
    val_set: LabelledImages,
    data: str,
    val_seed: int,
    workers: int = 0,
) -> UnlikenessStatistics:
    """The training features' Gaussian, and the gate's limits set on held-out images the model still reads well.

    On the benchmark, the held-out images are the validation seed's cases under every shift of the robustness
    suite on which the model's error stays within ACCEPTABLE_EXTRA_ERROR of the clean cases' (exposure, blur,
    positioning, compression: the variation of any department), and cases drawn at 256 and 512 px (as the
    sample cases are), so that none of them is withheld; shifts the model fails on (heavy noise, borders, text)
    choose nothing. Other data: its validation split. Image files are read batch by batch (``workers``).
    """
    import numpy as np

    from medattn.model import unlikeness
    from medattn.model.network import for_inference
    from medattn.model.predictor import Predictor
    from medattn.training import datasets
    from medattn.training.inputs import ModelInputs
    from medattn.training.robustness import ACCEPTABLE_EXTRA_ERROR, performing_shifts

    recipe = card.preprocessing
    if data == SYNTHETIC:
        predictor = Predictor(for_inference(model), card.with_changes(unlikeness=None))
        kept, errors = performing_shifts(predictor, RENDERED_CASES, val_seed)
        most = errors[next(iter(errors))] + ACCEPTABLE_EXTRA_ERROR  # the clean cases' error, and the margin
        print(f"validation seed {val_seed}: the limits keep the shifts with an error of at most {most:.1%}")
        for name, error in errors.items():
            print(f"  {'keeps  ' if name in kept else 'ignores'} {name}: error {error:.1%}")
        held_out = [datasets.synthetic(val_seed, RENDERED_CASES, rendered, "val") for rendered in (256, 512)]
        held_out = [*kept.values(), *(rendered.images for rendered in held_out)]
    else:
        held_out = [val_set.images]

    def measured(images: Sequence[np.ndarray], with_noise: bool) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's features of ``images``' model inputs and, ``with_noise``, their noise: one pass."""
        features, noise = [], [np.empty(0)]
        for inputs, boxes in ModelInputs(images, recipe, workers).batches():
            features.append(unlikeness.features(model, inputs))
            noise += [unlikeness.noise_levels(inputs, boxes)] if with_noise else []
        return np.concatenate(features), np.concatenate(noise)

    groups = [measured(images, with_noise=True) for images in held_out]
    return unlikeness.fit_statistics(
        measured(train_set.images, with_noise=False)[0], [f for f, _ in groups], [n for _, n in groups]
    )
