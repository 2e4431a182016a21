"""Runtime hooks for SnapStart (the API of Lambda's `snapshot-restore-py`).

`register_before_snapshot` hooks run once INIT is done, before the environment waits at
the snapshot point, in the reverse order of their registration; `register_after_restore`
hooks run when the environment is restored, in the order of their registration. Both can
be used as decorators (`@register_before_snapshot`) or called with a function and the
arguments to call it with.
"""

_before_snapshot_registry = []
_after_restore_registry = []


def register_before_snapshot(func, *args, **kwargs):
    _before_snapshot_registry.append((func, args, kwargs))
    return func


def register_after_restore(func, *args, **kwargs):
    _after_restore_registry.append((func, args, kwargs))
    return func


def get_before_snapshot():
    return _before_snapshot_registry


def get_after_restore():
    return _after_restore_registry
