"""`python -m tinymem.bench`: the efficiency reports (Hydra config `conf/bench.yaml`).

Reports (`reports=[...]`, each printed as a table and written as `<name>.csv` and `<name>.png`
under `logs/bench/<date>/`, with `summary.md` and the issue's targets):

- `tokens`: memory tokens per augmented attention block, before/after compression;
- `flops`: forward GFLOPs per clip, total and in the attention blocks;
- `latency`: streaming time per clip and training clips/s, as ratios to no memory;
- `data`: clips/s the DataModule delivers with 0, 1, 2 workers;
- `backbone`: tinymem's MViT against torchvision's (not in the default list).
"""

from tinymem.bench.backbone import measure_backbone
from tinymem.bench.run import REPORTS, run_bench

__all__ = ["REPORTS", "measure_backbone", "run_bench"]
