"""The ``mmpose_scai`` registry scope.

The plugin registers its modules into MMPose's registries. A config inherited through
``mmpose_scai::`` carries ``_scope_='mmpose_scai'`` on its typed dicts, as MMPose's carry
``_scope_='mmpose'``; MMEngine then builds them from the registries of that scope, found
by importing this module. Each one here is an empty child of MMPose's registry of the
same name: a lookup falls through to MMPose's (where the plugin's modules live) and on
to MMEngine's.
"""
from mmengine.registry import Registry

from mmpose import registry as mmpose_registry

SCOPE = 'mmpose_scai'


def _child(parent: Registry) -> Registry:
    return Registry(parent.name, parent=parent, scope=SCOPE)


RUNNERS = _child(mmpose_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmpose_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmpose_registry.LOOPS)
HOOKS = _child(mmpose_registry.HOOKS)
DATASETS = _child(mmpose_registry.DATASETS)
DATA_SAMPLERS = _child(mmpose_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmpose_registry.TRANSFORMS)
MODELS = _child(mmpose_registry.MODELS)
MODEL_WRAPPERS = _child(mmpose_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmpose_registry.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child(mmpose_registry.BATCH_AUGMENTS)
OPTIMIZERS = _child(mmpose_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmpose_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmpose_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmpose_registry.PARAM_SCHEDULERS)
METRICS = _child(mmpose_registry.METRICS)
EVALUATORS = _child(mmpose_registry.EVALUATORS)
TASK_UTILS = _child(mmpose_registry.TASK_UTILS)
VISUALIZERS = _child(mmpose_registry.VISUALIZERS)
VISBACKENDS = _child(mmpose_registry.VISBACKENDS)
LOG_PROCESSORS = _child(mmpose_registry.LOG_PROCESSORS)
KEYPOINT_CODECS = _child(mmpose_registry.KEYPOINT_CODECS)
INFERENCERS = _child(mmpose_registry.INFERENCERS)
