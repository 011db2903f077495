"""`python -m tinymem.predict video=PATH ckpt_path=CKPT`: online prediction on your own videos."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from tinymem.config import HYDRA_MAIN_KWARGS


@hydra.main(config_name="predict", **HYDRA_MAIN_KWARGS)
def main(cfg: DictConfig) -> None:
    """Stream the video(s) through the checkpoint and write predictions (and renders)."""
    from tinymem.inference.predictor import predict

    predict(cfg)


if __name__ == "__main__":
    main()
