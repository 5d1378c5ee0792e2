from .scai_train_check_hook import SCAITrainCheckHook
from .scai_tta_hook import SCAITTAHook

__all__ = ['SCAITrainCheckHook', 'SCAITTAHook']
