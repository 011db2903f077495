"""`python -m tinymem.train`: train (by default, the built-in CPU demo) with Hydra configs."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from tinymem.config import HYDRA_MAIN_KWARGS


@hydra.main(config_name="train", **HYDRA_MAIN_KWARGS)
def main(cfg: DictConfig) -> float | None:
    """Run training; return the optimized metric for Hydra sweepers."""
    from tinymem.pipeline import train

    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
