"""Optimiser and learning-rate schedule from the config's `optimizer` block.

Schedules (`optimizer.schedule`), after the warm-up: 'cosine' to 0 at the last step,
'constant', 'steps' (x `decay_factor` at each step of `boundaries`, torchvision's MultiStepLR and
Darknet's `policy=steps`), 'exponential' (x `decay_factor` every `decay_every` steps, staircase:
EfficientNet's 0.97 every 2.4 epochs). Warm-up (`optimizer.warmup`) over `warmup_steps`:
'linear' from `warmup_start` x lr (torchvision detection: 1/1000) or 'burn_in' (Darknet:
lr * (step / warmup_steps) ** 4).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxvision.train.config import validate_optimizer

OPTIMIZERS = ("sgd", "adamw", "rmsprop")
SCHEDULES = ("cosine", "constant", "steps", "exponential")
WARMUPS = ("linear", "burn_in")


def _after_warmup(opt_cfg, total_steps: int) -> optax.Schedule:
    """The schedule from the end of the warm-up (its step 0 is the global step warmup_steps);
    'steps' boundaries and 'exponential' periods count global steps."""
    lr, warm = opt_cfg.learning_rate, opt_cfg.warmup_steps
    if opt_cfg.schedule == "constant":
        return optax.constant_schedule(lr)
    if opt_cfg.schedule == "steps":
        return optax.piecewise_constant_schedule(
            lr, {int(b) - warm: opt_cfg.decay_factor for b in opt_cfg.boundaries})
    if opt_cfg.schedule == "exponential":
        return lambda step: lr * opt_cfg.decay_factor ** jnp.floor(
            (step + warm) / opt_cfg.decay_every)
    return optax.cosine_decay_schedule(lr, max(total_steps - warm, 1))


def build_schedule(opt_cfg, total_steps: int) -> optax.Schedule:
    """The warm-up (module docstring) then `optimizer.schedule`. ValueError naming the field
    for settings `validate_optimizer` refuses."""
    validate_optimizer(opt_cfg, total_steps)
    lr, warm = opt_cfg.learning_rate, opt_cfg.warmup_steps
    if opt_cfg.warmup == "burn_in":
        warmup = lambda step: lr * (step / max(warm, 1)) ** 4  # noqa: E731
    else:
        warmup = optax.linear_schedule(opt_cfg.warmup_start * lr, lr, max(warm, 1))
    return optax.join_schedules([warmup, _after_warmup(opt_cfg, total_steps)], [warm])


def build_optimizer(opt_cfg, total_steps: int, trainable=None) -> optax.GradientTransformation:
    """SGD with momentum (weight decay added to the gradient), AdamW, or RMSProp with momentum
    (TensorFlow 1's form, as EfficientNet: decay `rms_decay`, mean square starting at 1, `eps`
    inside the root, weight decay added to the gradient); optional global-norm gradient
    clipping. `trainable`: params -> tree of bools (a model's `trainable_mask`); the update of
    every False leaf is zero, weight decay and momentum included (`freeze`)."""
    schedule = build_schedule(opt_cfg, total_steps)
    decay = optax.add_decayed_weights(opt_cfg.weight_decay)
    if opt_cfg.name == "sgd":
        tx = optax.chain(decay, optax.sgd(schedule, momentum=opt_cfg.momentum,
                                          nesterov=opt_cfg.nesterov))
    elif opt_cfg.name == "rmsprop":
        tx = optax.chain(decay, optax.rmsprop(schedule, decay=opt_cfg.rms_decay,
                                              eps=opt_cfg.eps, momentum=opt_cfg.momentum,
                                              eps_in_sqrt=True, initial_scale=1.0))
    else:  # adamw (build_schedule checked the name)
        tx = optax.adamw(schedule, weight_decay=opt_cfg.weight_decay)
    if opt_cfg.grad_clip_norm:
        tx = optax.chain(optax.clip_by_global_norm(opt_cfg.grad_clip_norm), tx)
    return tx if trainable is None else freeze(tx, trainable)


def freeze(tx: optax.GradientTransformation, trainable) -> optax.GradientTransformation:
    """`tx` with a zero update for the leaves where `trainable(params)` is False (torchvision
    leaves `requires_grad=False` parameters out of its optimiser). The state is `tx`'s own, so
    checkpoints do not change shape."""
    def update(updates, state, params=None):
        updates, state = tx.update(updates, state, params)
        mask = trainable(params)
        return jax.tree.map(lambda u, m: u if m else jnp.zeros_like(u), updates, mask), state

    return optax.GradientTransformation(tx.init, update)
