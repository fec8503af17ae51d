"""One process of a data-parallel training run, for tests/test_distributed.py.

torchrun --standalone --nproc_per_node=N -m tests.training.ddp_worker OUT: trains a tiny model for a few steps and
writes this rank's final weights and loss history to OUT.
"""

import json
import sys
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import save_file

from medattn.model.network import ModelConfig
from medattn.training import distributed
from medattn.training.datasets import synthetic
from medattn.training.train import TrainConfig, train

if __name__ == "__main__":
    out = Path(sys.argv[1])
    context = distributed.start()
    model_config = ModelConfig(("nodule", "effusion", "cardiomegaly"), input_size=64, widths=(8, 16, 16), embed_dim=16)
    config = TrainConfig(seed=3, epochs=2, batch_size=32)
    model, card = train(config, synthetic(0, 192, 64), synthetic(1, 32, 64), model_config, context)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"rank{context.rank}.safetensors")
    history = {"history": [asdict(epoch) for epoch in card.training.history], "world_size": context.world_size}
    (out / f"rank{context.rank}.json").write_text(json.dumps(history))
    distributed.stop(context)
