"""``register_all_modules``, the entry point MMEngine calls for a registered scope."""


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register the plugin's and MMPose's modules into MMPose's registries.

    MMEngine calls this (with ``False``) when a registry of the ``mmpose_scai`` scope is
    first searched. The plugin's modules live in MMPose's registries, so the default
    scope, if set, is ``'mmpose'``.

    Args:
        init_default_scope (bool): Set MMPose's default scope (see
            :func:`mmpose.utils.register_all_modules`). Defaults to True.
    """
    import mmpose_scai  # noqa: F401  (registers the plugin's modules)
    from mmpose.utils import register_all_modules as register_mmpose

    register_mmpose(init_default_scope)
