"""`python -m tinymem.eval ckpt_path=...`: stream the evaluation split and report frame mAP."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from tinymem.config import HYDRA_MAIN_KWARGS


@hydra.main(config_name="eval", **HYDRA_MAIN_KWARGS)
def main(cfg: DictConfig) -> None:
    """Evaluate a checkpoint."""
    from tinymem.pipeline import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
