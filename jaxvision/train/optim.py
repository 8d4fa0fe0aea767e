"""Optimiser and learning-rate schedule from the config's `optimizer` block."""

from __future__ import annotations

import optax

from jaxvision.train.config import validate_optimizer

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant")


def build_schedule(opt_cfg, total_steps: int) -> optax.Schedule:
    """Linear warm-up to `learning_rate` over `warmup_steps`, then cosine to 0 (or constant).
    ValueError naming the field for settings `validate_optimizer` refuses."""
    validate_optimizer(opt_cfg, total_steps)
    if opt_cfg.schedule == "constant":
        warm = optax.linear_schedule(0.0, opt_cfg.learning_rate, max(opt_cfg.warmup_steps, 1))
        return optax.join_schedules([warm, optax.constant_schedule(opt_cfg.learning_rate)],
                                    [opt_cfg.warmup_steps])
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=opt_cfg.learning_rate, warmup_steps=opt_cfg.warmup_steps,
        decay_steps=max(total_steps, opt_cfg.warmup_steps + 1), end_value=0.0)


def build_optimizer(opt_cfg, total_steps: int) -> optax.GradientTransformation:
    """SGD with momentum (weight decay added to the gradient) or AdamW; optional global-norm
    gradient clipping."""
    schedule = build_schedule(opt_cfg, total_steps)
    if opt_cfg.name == "sgd":
        tx = optax.chain(optax.add_decayed_weights(opt_cfg.weight_decay),
                         optax.sgd(schedule, momentum=opt_cfg.momentum, nesterov=opt_cfg.nesterov))
    else:  # adamw (build_schedule checked the name)
        tx = optax.adamw(schedule, weight_decay=opt_cfg.weight_decay)
    if opt_cfg.grad_clip_norm:
        tx = optax.chain(optax.clip_by_global_norm(opt_cfg.grad_clip_norm), tx)
    return tx
