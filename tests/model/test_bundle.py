"""The default model as a MONAI bundle, read back by MONAI's own loaders and served by medattn as it is."""

from __future__ import annotations

import json

import pytest
import torch
from monai.bundle import ConfigParser
from monai.data.torchscript_utils import load_net_with_metadata
from safetensors.torch import load_file

from medattn import Predictor
from medattn.assets import DEFAULT_MODEL_DIR, SAMPLES_DIR, models_in
from medattn.cli import USAGE_ERROR, main
from medattn.errors import ModelError
from medattn.model.card import write_card
from medattn.scan import load_scan


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")  # MONAI Deploy's format is TorchScript
def test_a_bundle_holds_the_model_monai_reads_it_and_medattn_serves_it(tmp_path, predictor, capsys):
    bundle = tmp_path / "models" / "default-bundle"  # its parent made by the export, as any --out
    assert main(["export-bundle", "--model", str(DEFAULT_MODEL_DIR), "--out", str(bundle)]) == 0
    card = predictor.card
    metadata = json.loads((bundle / "configs" / "metadata.json").read_text())
    image, pred = (
        metadata["network_data_format"][side][key] for side, key in (("inputs", "image"), ("outputs", "pred"))
    )
    assert image["spatial_shape"] == [128, 128] and image["num_channels"] == 1
    assert pred["channel_def"] == {str(i): name for i, name in enumerate(card.classes)}
    assert (
        metadata["medattn"]["temperature"] == list(card.temperature) and metadata["intended_use"] == card.intended_use
    )
    assert not list(bundle.rglob("*.pt"))  # no pickle travels with it

    # MONAI's loader: the TorchScript network, with the metadata inside it, gives the model's own outputs.
    network, inside, _ = load_net_with_metadata(str(bundle / "models" / "model.ts"))
    assert inside["network_data_format"] == metadata["network_data_format"]
    inputs = torch.stack([predictor.prepare(load_scan(p))[0][0] for p in sorted(SAMPLES_DIR.glob("*.png"))])
    with torch.no_grad():
        expected, got = predictor.model(inputs), network(inputs)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-6)
    # MONAI's config parser builds the network from inference.json; medattn's weights load into it.
    built = ConfigParser(json.loads((bundle / "configs" / "inference.json").read_text())).get_parsed_content(
        "network_def"
    )
    built.load_state_dict(load_file(bundle / "models" / "model.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(built.eval()(inputs)[0], expected[0])

    served = Predictor.load(bundle)  # the bundle as it is: the app offers it beside the other models
    image = load_scan(SAMPLES_DIR / "synthetic-nodule.png")
    assert served.predict(image).probabilities == predictor.predict(image).probabilities
    assert models_in(bundle.parent) == {"default-bundle": bundle}
    capsys.readouterr()
    assert main(["export-bundle", "--out", str(bundle)]) == USAGE_ERROR
    assert "exists already: give a new folder" in capsys.readouterr().err
    with pytest.raises(ModelError, match="is a MONAI bundle: change the model directory it was exported from"):
        write_card(card, bundle)  # its metadata and TorchScript would no longer say what its card says
