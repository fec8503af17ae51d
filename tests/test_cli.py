"""The command line: each command works, and every bad input gets one line on stderr and status 2."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medattn import Predictor
from medattn.assets import DEFAULT_MODEL_DIR
from medattn.cli import USAGE_ERROR, main
from medattn.explain import EXPLAINERS
from medattn.model.card import read_card
from tests.training.test_datasets import write_medmnist

ROOT = Path(__file__).resolve().parents[1]


def test_cli_trains_on_a_dataset_file_and_reports_a_bad_one(tmp_path, capsys):
    path = tmp_path / "tiny.npz"
    write_medmnist(
        path, {"train": [[i % 2] for i in range(40)], "val": [[i % 2] for i in range(10)], "test": [[0], [1]]}
    )
    assert (
        main(["train", "--data", str(path), "--out", str(tmp_path / "m"), "--epochs", "1", "--input-size", "32",
              "--label-smoothing", "0.05", "--augment-blur", "0.3"]) == 0
    )  # fmt: skip
    assert '"macro_auc"' in capsys.readouterr().out
    card = Predictor.load(tmp_path / "m").card
    assert card.training.data == "tiny.npz train" and card.training.label_smoothing == 0.05
    assert card.training.augmentation["blur"] == 0.3  # the recipe says what it blurred
    for refused in (["--augment-blur", "1.5"], ["--augment-blur", "0.3", "--no-augment"]):
        assert main(["train", "--data", str(path), "--out", str(tmp_path / "x"), *refused]) == 2
        assert "--augment-blur is the share of images blurred" in capsys.readouterr().err
    assert (card.metrics.data, card.metrics.split) == ("tiny.npz test", "test")
    assert main(["train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_cli_trains_a_monai_backbone_from_the_weights_a_user_gives(tmp_path, capsys):
    from monai.networks import nets
    from safetensors.torch import save_file

    path = tmp_path / "tiny.npz"
    write_medmnist(
        path, {"train": [[i % 2] for i in range(16)], "val": [[i % 2] for i in range(8)], "test": [[0], [1]]}
    )
    pretrained = nets.resnet18(spatial_dims=2, n_input_channels=1, num_classes=1000).state_dict()
    save_file({name: value.contiguous() for name, value in pretrained.items()}, tmp_path / "resnet18.safetensors")
    command = ["train", "--data", str(path), "--epochs", "1", "--input-size", "32", "--explain-cases", "0"]
    command += ["--backbone", "resnet18", "--out", str(tmp_path / "m")]
    assert main([*command, "--encoder-weights", str(tmp_path / "resnet18.safetensors")]) == 0
    card = Predictor.load(tmp_path / "m").card
    assert card.architecture.backbone == "resnet18" and card.training.encoder_weights.endswith("resnet18.safetensors")
    capsys.readouterr()
    assert main([*command, "--encoder-weights", str(path)]) == 2  # not safetensors: one line, no traceback
    assert one_line_error(capsys).startswith(f"error: {path} is not a readable safetensors file (")


def test_cli_evaluates_the_default_model(capsys):
    assert main(["evaluate", "--size", "60", "--seed", "4242"]) == 0
    assert '"macro_auc"' in capsys.readouterr().out


@pytest.mark.slow
def test_cli_evaluate_writes_the_figures_into_the_card(tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model_dir)
    weights = (model_dir / "model.safetensors").read_bytes()
    args = ["evaluate", "--model", str(model_dir), "--size", "24", "--seed", "4242"]
    assert main([*args, "--explain", "--explain-cases", "1", "--write-card"]) == 0
    metrics = read_card(model_dir).metrics
    assert metrics.data == "synthetic seed 4242" and metrics.cases == 24
    assert metrics.explanations.cases_per_class == 1
    assert set(metrics.explanations.methods) == set(EXPLAINERS)
    assert set(metrics.roc) == {"nodule", "effusion", "cardiomegaly"} and metrics.reliability["after"]
    assert (model_dir / "model.safetensors").read_bytes() == weights
    assert '"insertion_auc"' in capsys.readouterr().out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def broken_model(tmp_path: Path, **card_changes) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    card = json.loads((folder / "model.json").read_text()) | card_changes
    (folder / "model.json").write_text(json.dumps(card))
    return folder


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--model", "{tmp}/nowhere"], "is not a folder"),
        (["evaluate", "--model", "{tmp}"], "holds no model.safetensors"),
        (["evaluate", "--model", "{broken}"], "'temperature' values must be finite and positive"),
        (["fit-ood", "--model", "{broken}"], "'temperature' values must be finite and positive"),
        (["score", "{tmp}", "--out", "{tmp}/results.txt"], "must end in .csv or .parquet"),
        (["score", "{tmp}/no-such-folder", "--out", "{tmp}/results.csv"], "matches no file"),
        (["score", "{tmp}", "--model", "{broken}", "--out", "{tmp}/r.csv"], "'temperature' values"),
        (["evaluate", "--data", "{tmp}/missing.csv"], "cannot be read as a CSV manifest"),
        (["evaluate", "--data", "{tmp}", "--split", "holdout"], "unknown split"),
        (["evaluate", "--add-localisation"], "--add-localisation adds what --explain measures: give both."),
        (["evaluate", "--explain", "--add-localisation", "--write-card"], "--write-card replaces them: give one."),
        (["robustness", "--model", "{reordered}"], "robustness measures a model of the benchmark's findings (nodule,"),
        (["fit-faithfulness", "--model", "{reordered}"], "this model finds cardiomegaly, effusion, nodule."),
        (
            ["evaluate", "--explain", "--methods", "shap", "gradcam"],
            "no explanation method shap; choose from attention,",
        ),
        (
            ["train", "--train-size", "8", "--val-size", "8", "--input-size", "32", "--warmup-classes", "fracture"],
            "Warm-up needs multi-label classes of this model (nodule, effusion, cardiomegaly); got fracture",
        ),
    ],
)
def test_every_bad_input_gets_one_line_and_status_2(tmp_path, capsys, args, message):
    broken = broken_model(tmp_path / "models", temperature=[1.0, -1.0, 1.0])
    reordered = broken_model(tmp_path / "reordered", classes=["cardiomegaly", "effusion", "nodule"])
    filled = [arg.format(tmp=tmp_path, broken=broken, reordered=reordered) for arg in args]
    assert main(filled) == USAGE_ERROR
    assert message in one_line_error(capsys)


def test_the_installed_command_prints_no_traceback(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "medattn", "evaluate", "--model", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == USAGE_ERROR
    assert run.stderr.strip() == f"error: {tmp_path} holds no model.safetensors. Convert the weights to safetensors."


def test_help_answers_without_loading_torch():
    probe = "import sys; from medattn.cli import parser; parser().format_help(); print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "False", run.stderr
