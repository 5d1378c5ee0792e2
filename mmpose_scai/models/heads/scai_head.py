"""SCAIHead: wraps any MMPose heatmap head and refines its heatmaps before decoding."""
import warnings
from dataclasses import replace
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.structures import PixelData
from torch import Tensor

from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.models.heads import BaseHead, HeatmapHead
from mmpose.registry import MODELS
from mmpose.utils.typing import (ConfigType, Features, OptConfigType, OptSampleList,
                                 Predictions)
from ...chains import KeypointChains
from ...structures import ChainInputs, ChainState, ChainTargets
from ..utils import flip_average, forward_with_features

COCO_METAINFO = dict(from_file='configs/_base_/datasets/coco.py')
#: State-dict keys (below the head) that SCAI adds to its base: the refinement networks
#: and the chain mask; every other key of a SCAIHead belongs to the wrapped head.
REFINER_KEYS = ('refiner.', 'chain_labelled')


def scai_head_key(key: str) -> str:
    """A head key of a plain MMPose checkpoint (``X``) as SCAIHead names it
    (``base_head.X``); SCAIHead's own keys are returned unchanged."""
    return key if key.startswith(('base_head.', ) + REFINER_KEYS) else 'base_head.' + key


@MODELS.register_module()
class SCAIHead(BaseHead):
    """Self-correctable and adaptable inference on top of a heatmap head.

    The wrapped head (``base_head``) produces heatmaps as usual; :class:`SCAIRefiner`
    corrects the chain heatmaps, and the wrapped head's own codec decodes the result.
    Predictions carry ``keypoint_self_errors`` (the E_s of each keypoint's chain, mean
    over chains for a keypoint in several, NaN for keypoints in no chain).

    Args:
        base_head (dict): Config of a :class:`HeatmapHead` (or subclass) with a decoder.
        metainfo (dict, optional): Dataset metainfo naming the keypoints (e.g.
            ``dict(from_file='configs/_base_/datasets/coco.py')``); default COCO.
        chains (dict): :class:`KeypointChains` options (``layout``, ``chains``,
            ``virtual``, ``disabled``).
        refiner (dict): :class:`SCAIRefiner` options (networks, ``correct_slots``,
            ``start``, ``error_mode``, ``min_anchor_score``).
        loss (dict): Chain heatmap distance for L_Φ, L_Γ and L⁰/L¹/L².
        loss_corr (dict): The correction loss (eq. 8).
        init_cfg (dict, optional): Init config.
    """

    def __init__(self,
                 base_head: ConfigType,
                 metainfo: OptConfigType = None,
                 chains: ConfigType = dict(layout='coco'),
                 refiner: ConfigType = dict(),
                 loss: ConfigType = dict(type='ChainHeatmapLoss'),
                 loss_corr: ConfigType = dict(type='CorrectionLoss'),
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.base_head = MODELS.build(base_head)
        if not isinstance(self.base_head, HeatmapHead):
            raise TypeError(f'SCAIHead wraps heatmap heads (HeatmapHead and its '
                            f'subclasses); got {type(self.base_head).__name__}.')
        if self.base_head.decoder is None:
            raise ValueError('The wrapped head needs a `decoder` (its codec) for SCAI to '
                             'decode refined heatmaps.')
        meta = parse_pose_metainfo(dict(metainfo or COCO_METAINFO))
        names = [meta['keypoint_id2name'][i] for i in range(meta['num_keypoints'])]
        if self.base_head.out_channels != len(names):
            raise ValueError(f'The wrapped head predicts {self.base_head.out_channels} '
                             f'keypoints but the metainfo names {len(names)}: {names}')
        self.chains = KeypointChains(names, **chains)
        final = self.base_head.final_layer
        feat_channels = final.in_channels if isinstance(final, nn.Conv2d) else 0
        self.refiner = MODELS.build(dict(  # SCAIRefiner, or e.g. SCAILiteRefiner
            dict(type='SCAIRefiner'), **refiner, chains=self.chains,
            feat_channels=feat_channels,
            sigma=float(getattr(self.base_head.decoder, 'sigma', 2.0))))
        self.loss_module = MODELS.build(loss)
        self.loss_corr = MODELS.build(loss_corr)
        self.base_head.requires_grad_(False)
        # How often each chain's D was labelled in training; a chain never labelled is
        # disabled at test time (e.g. the face chains on LSPET).
        self.register_buffer('chain_labelled', torch.zeros(self.chains.num_chains))
        self.adapter = None  # a TestTimeAdapter, set from test_cfg or by SCAITTAHook
        self._warned_disabled = False
        self._warned_masked = False
        self._warned_none = False
        self._register_load_state_dict_pre_hook(self._remap_base_keys)

    # ------------------------------------------------------------ base model
    def train(self, mode: bool = True) -> 'SCAIHead':
        """Keep the wrapped head in eval mode: its BN statistics never change."""
        super().train(mode)
        self.base_head.eval()
        return self

    def base_forward(self, feats: Tuple[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        """The wrapped head's own forward, keeping the input f of its final layer.

        Returns:
            tuple: heatmaps (Tensor[B, K, h, w]) and f (Tensor[B, C_f, h, w], None if
            the final layer is not called).
        """
        with torch.no_grad():
            return forward_with_features(self.base_head, feats)

    def base_heatmaps(self, feats: Features, batch_data_samples: OptSampleList,
                      test_cfg: ConfigType) -> Tuple[Tensor, Tensor]:
        """Base heatmaps, flip-averaged under ``flip_test`` (:func:`flip_average`,
        with the wrapped MMPose config's ``test_cfg``); f from the unflipped pass."""
        if not test_cfg.get('flip_test', False):
            return self.base_forward(feats)
        assert isinstance(feats, list) and len(feats) == 2
        heatmaps, f = self.base_forward(feats[0])
        return flip_average(heatmaps, self.base_forward(feats[1])[0],
                            batch_data_samples[0].metainfo['flip_indices'], test_cfg,
                            self.base_head.decoder), f

    # -------------------------------------------------------------- testing
    def enabled_chains(self) -> Tensor:
        """BoolTensor[G]: chains enabled by config and labelled in training."""
        labelled = self.chain_labelled > 0
        enabled = self.chains.enabled.to(labelled.device) & labelled
        if not self._warned_disabled and labelled.any() and not labelled.all():
            off = [n for n, ok in zip(self.chains.names, labelled.tolist()) if not ok]
            warnings.warn(f'SCAI chains {off} never had a labelled distal keypoint in '
                          'training; they pass the base prediction through.')
            self._warned_disabled = True
        return enabled

    def refine(self, heatmaps: Tensor, f: Optional[Tensor], test_cfg: ConfigType = {}
               ) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        """Refine base heatmaps.

        Args:
            heatmaps (Tensor[B, K, h, w]): Base heatmaps.
            f (Tensor[B, C_f, h, w] | None): Base features.
            test_cfg (dict): ``refine`` (bool), ``rounds`` (int), ``tol`` (float).

        Returns:
            tuple: refined heatmaps (Tensor[B, K, h, w]), E_s per chain (Tensor[B, G],
            NaN for chains not refined), statistics.
        """
        enabled = self.enabled_chains()
        inp = self.refiner.prepare(heatmaps, f, enabled)
        if test_cfg.get('refine', True) and not enabled.any() and not self._warned_none:
            untrained = not (self.chain_labelled > 0).any()
            warnings.warn(
                'SCAI refines no chain, so the predictions are exactly the base '
                'model\'s: ' + ('the refiner was never trained (no chain saw a labelled '
                'keypoint; a base checkpoint without SCAI weights?). Train it with '
                '`mim train` on a SCAI config, or load a SCAI checkpoint.'
                if untrained else 'every chain is disabled (chains.disabled).'))
            self._warned_none = True
        if not test_cfg.get('refine', True):
            err, _ = self.refiner.self_error(inp, inp.base)
            return heatmaps, err.masked_fill(~inp.valid, float('nan')), {}
        rounds, tol = test_cfg.get('rounds', 1), test_cfg.get('tol', 1e-3)
        if self.adapter is not None:
            state, err, stats = self.adapter.refine(self.refiner, inp, rounds, tol)
        else:
            with torch.no_grad():
                state, err, stats = self.refiner.refine(inp, rounds, tol)
        refined = self.refiner.write_back(heatmaps, state, ~stats['use_base'])
        return refined, err.masked_fill(~inp.valid, float('nan')), stats

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        """Refined heatmaps, Tensor[B, K, h, w] (one round, no adaptation)."""
        heatmaps, f = self.base_forward(feats)
        with torch.no_grad():
            return self.refine(heatmaps, f)[0]

    def predict(self,
                feats: Features,
                batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}) -> Predictions:
        """Predict keypoints from features (see :meth:`HeatmapHead.predict`).

        ``test_cfg`` adds ``refine`` (default True), ``rounds`` (default 1), ``tol``
        (default 1e-3) and ``tta`` (:meth:`TestTimeAdapter.from_cfg` options) to the
        wrapped head's options.
        """
        if self.adapter is None and test_cfg.get('tta'):  # no Runner, so no hook
            from ...tta import TestTimeAdapter
            self.adapter = TestTimeAdapter.from_cfg(test_cfg['tta'])
        heatmaps, f = self.base_heatmaps(feats, batch_data_samples, test_cfg)
        if heatmaps.shape[0] == 0:
            refined, err = heatmaps, heatmaps.new_zeros(0, self.chains.num_chains)
        else:
            refined, err, stats = self.refine(heatmaps, f, test_cfg)
            # outside torch.no_grad (model.test_step) E_s carries the graph of the
            # refiner (requires_grad weights), and TTA adapts with gradients on
            refined, err = refined.detach(), err.detach()
            self._log_stats(err, stats, heatmaps)
        # non-finite channels keep no chain (prepare masks them); they are decoded from
        # zeros and then masked: score 0 at the box centre (so are non-finite decodes)
        finite = torch.isfinite(refined).flatten(2).all(-1).cpu().numpy()
        refined = torch.nan_to_num(refined, nan=0., posinf=0., neginf=0.)
        preds = self.base_head.decode(refined)
        centre = np.asarray(getattr(self.base_head.decoder, 'input_size', (0, 0))) / 2
        kpt_err = self.chains.per_keypoint(err, torch.isfinite(err)).cpu().numpy()
        for pred, e, ok in zip(preds, kpt_err, finite):
            ok = ok[None] & np.isfinite(pred.keypoints).all(-1) & \
                np.isfinite(pred.keypoint_scores)
            pred.keypoints[~ok] = centre
            pred.keypoint_scores[~ok] = 0.
            pred.keypoint_self_errors = e[None].astype(np.float32)
        if test_cfg.get('output_heatmaps', False):
            return preds, [PixelData(heatmaps=hm) for hm in refined.detach()]
        return preds

    def _log_stats(self, err: Tensor, stats: Dict[str, Tensor], heatmaps: Tensor) -> None:
        hub = MessageHub.get_current_instance()
        valid = torch.isfinite(err)
        # instances with an enabled chain masked (non-finite heatmaps, unusable anchor)
        inst = ((~valid & self.enabled_chains()[None]).any(1)
                | ~torch.isfinite(heatmaps).flatten(1).all(1))
        hub.update_scalar('test/scai_masked_instances', inst.sum().item())
        if inst.any() and not self._warned_masked:
            warnings.warn(
                f'SCAI masked {inst.sum().item()} of {len(inst)} instances: non-finite '
                'heatmaps or an anchor heatmap maximum below min_anchor_score='
                f'{getattr(self.refiner, "min_anchor_score", None)}. Their chains keep the '
                'base prediction; non-finite keypoints get score 0 at the box centre. '
                'Counted per batch as test/scai_masked_instances (warned once).')
            self._warned_masked = True
        if valid.any():
            hub.update_scalar('test/scai_E_s', err[valid].mean().item())
        if 'use_base' in stats:
            kept = (~stats['use_base'] & valid).float().sum() / valid.sum().clamp(min=1)
            hub.update_scalar('test/scai_corrected_frac', kept.item())
        masked = (~valid).sum().item()
        if masked:
            hub.update_scalar('test/scai_masked_chains', masked)

    # ------------------------------------------------------------- training
    def prepare_train(self, feats: Tuple[Tensor], batch_data_samples: OptSampleList
                      ) -> Tuple[ChainInputs, ChainTargets, Tensor]:
        """Chain inputs, targets and the base feature map f of a training batch."""
        heatmaps, f = self.base_forward(feats)
        inp = self.refiner.prepare(heatmaps, f, self.chains.enabled)
        gt = torch.stack([d.gt_fields.heatmaps for d in batch_data_samples]).float()
        weights = torch.cat(
            [d.gt_instance_labels.keypoint_weights for d in batch_data_samples]) > 0
        chains = self.chains
        ext = self.refiner.targets(gt)  # Tensor[B, G, 4, ...] in the refiner's own form
        pairs = chains.virtual_pairs.to(weights.device)
        vw = weights[:, pairs].all(-1) if pairs.numel() else weights[:, :0]
        labelled = chains.gather(chains.extend(weights, vw), 'ABCD')
        if self.training:
            self.chain_labelled += labelled[:, :, 3].sum(0).to(self.chain_labelled)
        tgt = ChainTargets(ext[:, :, 0], ext[:, :, 1], ext[:, :, 2], ext[:, :, 3],
                           mask=labelled.all(-1) & inp.valid)
        return inp, tgt, f

    def _with_context(self, inp: ChainInputs, f: Tensor) -> ChainInputs:
        ctx = self.refiner.encode_context(f, inp.anchor.shape[-2:])
        return replace(inp, context={**inp.context, **ctx})

    def loss_phi(self, inp: ChainInputs, tgt: ChainTargets, f: Tensor
                 ) -> Dict[str, Tensor]:
        """L_Φ = ‖Φ(A,B,C) − D*‖ + ‖Γ(B, C, Φ(A,B,C)) − A*‖ (step Φ only)."""
        inp = self._with_context(inp, f)
        d_hat = self.refiner.predict_distal(inp)
        a_hat = self.refiner.reconstruct_anchor(inp, replace(inp.base, D=d_hat))
        dist = self.loss_module
        return dict(loss_phi=dist(d_hat, tgt.D, tgt.mask) + dist(a_hat, tgt.A, tgt.mask))

    def loss_gamma(self, inp: ChainInputs, tgt: ChainTargets, f: Tensor,
                   state: Optional[ChainState] = None) -> Dict[str, Tensor]:
        """L_Γ = ‖Γ(B,C,D) − A*‖ + ‖Φ(Γ(B,C,D), B, C) − D*‖ (step Γ only).

        With ``state`` (corrected chains), Γ is fed the corrected B, C, D and only the
        first term is used (Algorithm 2).
        """
        inp = self._with_context(inp, f)
        dist = self.loss_module
        if state is not None:
            a_hat = self.refiner.reconstruct_anchor(inp, state.detach())
            return dict(loss_gamma=dist(a_hat, tgt.A, tgt.mask))
        a_hat = self.refiner.reconstruct_anchor(inp, inp.base)
        d_hat = self.refiner.predict_distal(inp, anchor=a_hat)
        return dict(loss_gamma=dist(a_hat, tgt.A, tgt.mask) + dist(d_hat, tgt.D, tgt.mask))

    def loss_correction(self, inp: ChainInputs, tgt: ChainTargets, f: Tensor,
                        rounds: int = 1) -> Tuple[Dict[str, Tensor], ChainState]:
        """L_C (eq. 8) after ``rounds`` correction rounds, detached between rounds.

        Returns:
            tuple: the loss dict and the corrected (last round) chain state.
        """
        inp = self._with_context(inp, f)
        refiner, dist = self.refiner, self.loss_module
        with torch.no_grad():
            start = refiner.start(inp).detach()
        state = start
        for _ in range(rounds):
            with torch.no_grad():
                _, feedback = refiner.self_error(inp, state.detach())
            state = refiner.correct(state.detach(), feedback)
        l0 = sum(dist(getattr(state, s), getattr(tgt, s), tgt.mask)
                 for s in refiner.correct_slots) / len(refiner.correct_slots)
        l1 = dist(refiner.reconstruct_anchor(inp, state), tgt.A, tgt.mask)
        l2 = dist(refiner.reconstruct_anchor(inp, start), tgt.A, tgt.mask)
        return self.loss_corr(l0, l1, l2), state

    def loss(self, feats: Tuple[Tensor], batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """Not used: Φ, Γ and C train in stages, each with its own optimizer."""
        raise NotImplementedError(
            'SCAIHead trains through SCAIPoseEstimator.train_step (one optimizer per '
            'network, by stage): set model.type="SCAIPoseEstimator".')

    # ------------------------------------------------------------ checkpoints
    def _remap_base_keys(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Load an ordinary MMPose checkpoint: ``head.X`` -> ``head.base_head.X``; then
        check the checkpoint against the model (:meth:`_check_checkpoint`)."""
        for key in [k for k in state_dict if k.startswith(prefix)]:
            new = prefix + scai_head_key(key[len(prefix):])
            if new != key:
                state_dict[new] = state_dict.pop(key)
        self._check_checkpoint(state_dict, prefix)
        self._note_base_checkpoint(state_dict, prefix)

    def _note_base_checkpoint(self, state_dict: dict, prefix: str) -> None:
        """Say why MMEngine will list the refiner as missing when a base checkpoint
        (one without ``refiner.`` keys) is loaded."""
        ref = prefix + 'refiner.'
        if any(k.startswith(ref) for k in state_dict):
            return
        absent = [k for k in self.state_dict()
                  if k.startswith(('refiner.', 'chain_labelled'))]
        import logging

        from mmengine.logging import print_log
        print_log(
            f'SCAIHead: loading a base (non-SCAI) checkpoint. Its {len(absent)} '
            f'refiner entries ({ref}*, {prefix}chain_labelled) are not in it, so '
            'MMEngine lists them as missing keys: expected when SCAI training starts from '
            'this base (load_from). For inference load a SCAI checkpoint; until then the '
            'refiner is untrained (test_cfg=dict(refine=False) gives the base model).',
            logger='current', level=logging.WARNING)

    def _check_checkpoint(self, state_dict: dict, prefix: str) -> None:
        """Raise on a checkpoint of another keypoint set or another refiner.

        MMEngine loads ``load_from`` with ``strict=False``, which only warns about a
        size mismatch and leaves that layer at its initial weights, so the check lives
        in the model's own load path. A base checkpoint (no ``refiner.`` keys) passes:
        the refiner then keeps its initial weights.
        """
        key = prefix + 'base_head.final_layer.weight'
        k_model = self.base_head.out_channels
        if key in state_dict and state_dict[key].shape[0] != k_model:
            raise ValueError(
                f'The checkpoint predicts {state_dict[key].shape[0]} keypoints ({key} has '
                f'shape {tuple(state_dict[key].shape)}), the model {k_model} '
                f'({self.chains.keypoint_names}). Use a checkpoint of this dataset, or '
                'set base_head.out_channels and metainfo to the checkpoint\'s.')
        model = {prefix + k: v for k, v in self.state_dict().items()}
        ckpt = [k for k in state_dict if k.startswith(prefix)]
        ref = prefix + 'refiner.'
        bad = []
        if any(k.startswith(ref) for k in ckpt):  # a SCAI checkpoint: same refiner?
            missing = sorted(k for k in model if k.startswith(ref) and k not in state_dict)
            unexpected = sorted(k for k in ckpt if k.startswith(ref) and k not in model)
            bad += [f'missing {missing}'] * bool(missing)
            bad += [f'unexpected {unexpected}'] * bool(unexpected)
        shapes = [f'{k}: checkpoint {tuple(state_dict[k].shape)}, model '
                  f'{tuple(model[k].shape)}' for k in ckpt
                  if k in model and hasattr(state_dict[k], 'shape')
                  and tuple(state_dict[k].shape) != tuple(model[k].shape)]
        bad += [f'shape mismatch {shapes}'] * bool(shapes)
        if bad:
            raise ValueError(
                'The checkpoint does not match this SCAIHead (another refiner, chain '
                'layout or base head?): ' + '; '.join(bad) + '. To reuse only its base '
                f'model, drop the keys starting with {ref!r} from the state dict.')
