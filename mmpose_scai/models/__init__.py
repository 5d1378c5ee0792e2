from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .networks import *  # noqa: F401,F403
from .pose_estimators import *  # noqa: F401,F403
from .refiners import *  # noqa: F401,F403
from .wrappers import *  # noqa: F401,F403
