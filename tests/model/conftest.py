"""Model-test fixtures: a randomly initialised model with weights large enough that mistakes show in the logits."""

import pytest
import torch

from molmo.model.molmo import MolmoModel


@pytest.fixture
def random_model():
    def build(cfg, seed=0):
        torch.manual_seed(seed)
        model = MolmoModel(cfg)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.2)
        return model.eval()
    return build
