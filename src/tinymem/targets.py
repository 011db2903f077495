"""Which callables a config may name as `_target_`: the allowlist checked before instantiation.

Hydra's `instantiate` imports and calls whatever a `_target_` names, so a config (the user's, or
one stored in a checkpoint) could run any code. tinymem instantiates only its own classes and
functions, torch optimizers and schedulers, and the Lightning trainer, strategies, callbacks and
loggers; any other target is refused, naming its key, before anything is built.

`instantiate` is the one way the package builds objects from configs: it checks the allowlist
and, on Hydra >= 1.4 (whose `instantiate` deprecates calls without one), hands Hydra the same
allowlist as its execution whitelist.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from tinymem.memory.plan import ConfigError

TARGET_KEY = "_target_"
# Lightning's own hook for rebuilding a module from a checkpoint with an arbitrary callable.
INSTANTIATOR_KEY = "_instantiator"
HYDRA_KEY = "hydra"  # configures Hydra itself (launcher, sweeper), which builds those
ALLOWED_TARGET_PREFIXES = (
    "tinymem.",
    "torch.optim.",  # optimizers and torch.optim.lr_scheduler
    "pytorch_lightning.Trainer",
    "pytorch_lightning.callbacks.",
    "pytorch_lightning.loggers.",
    "pytorch_lightning.strategies.",
)


# Hydra >= 1.4 takes an execution whitelist: exact targets, or `package.*` for a package prefix.
HYDRA_WHITELIST_KEY = "_execution_whitelist_"
HYDRA_WHITELIST = tuple(
    f"{prefix}*" if prefix.endswith(".") else prefix for prefix in ALLOWED_TARGET_PREFIXES
)
HYDRA_TAKES_WHITELIST = HYDRA_WHITELIST_KEY in inspect.signature(hydra_instantiate).parameters


def is_allowed_target(target: object) -> bool:
    """Whether a `_target_` value names an allowlisted callable (a dotted path string)."""
    return isinstance(target, str) and any(
        target == prefix or (prefix.endswith(".") and target.startswith(prefix))
        for prefix in ALLOWED_TARGET_PREFIXES
    )


def _children(node: Any) -> list[tuple[Any, Any]]:
    """(key, value) pairs of a config node; OmegaConf values are resolved one by one.

    A value that cannot be resolved yet (an interpolation needing Hydra's runtime) is skipped,
    except a `_target_`, which is then refused: what it would name cannot be checked.
    """
    if isinstance(node, DictConfig | ListConfig):
        keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
        pairs = []
        for key in keys:
            if OmegaConf.is_missing(node, key):
                continue
            try:
                pairs.append((key, node[key]))
            except Exception:  # noqa: BLE001 - any resolution failure: unknown until runtime
                if key == TARGET_KEY:
                    pairs.append((key, f"<unresolvable {node._get_node(key)}>"))
        return pairs
    if isinstance(node, Mapping):
        return list(node.items())
    if isinstance(node, Sequence) and not isinstance(node, str | bytes):
        return list(enumerate(node))
    return []


def _walk(node: Any, key: str, source: str) -> None:
    for name, value in _children(node):
        if not key and name == HYDRA_KEY:
            continue  # Hydra's own node: its launcher and sweeper are Hydra's, not tinymem's
        if isinstance(name, int):
            where = f"{key}[{name}]"
        else:
            where = f"{key}.{name}" if key else str(name)
        if name == INSTANTIATOR_KEY:
            raise ConfigError(
                f"{source}: {where}={value!r}: a custom instantiator is refused (tinymem "
                "builds its modules itself; a checkpoint cannot name code to run)"
            )
        if name == TARGET_KEY and not is_allowed_target(value):
            raise ConfigError(
                f"{source}: {where}={value!r} is not an allowed target; tinymem "
                f"instantiates only callables under {list(ALLOWED_TARGET_PREFIXES)}"
            )
        _walk(value, where, source)


def check_targets(cfg: Any, source: str) -> None:
    """Refuse any `_target_` (at any depth) outside the allowlist, naming the key and target.

    `source` says where the config came from ("config", "<file>"). OmegaConf values are
    resolved first, so an interpolated target is checked as it would run. A top-level `hydra`
    node is Hydra's (its launcher and sweeper run before tinymem) and is not checked.
    """
    _walk(cfg, "", source)


def instantiate(config: Any, *args: Any, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate` of an allowlisted config (refused, naming the key, otherwise)."""
    check_targets(config, "config")
    if HYDRA_TAKES_WHITELIST:
        kwargs[HYDRA_WHITELIST_KEY] = HYDRA_WHITELIST
    return hydra_instantiate(config, *args, **kwargs)
