"""`python -m tinymem.eval ckpt_path=...`: stream the evaluation split and report frame mAP."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from tinymem.train import CONFIG_DIR


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    """Evaluate a checkpoint."""
    from tinymem.pipeline import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
