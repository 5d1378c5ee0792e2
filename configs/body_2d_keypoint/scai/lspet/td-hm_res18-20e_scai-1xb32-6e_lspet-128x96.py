# SCAI on the 20-epoch LSPET base (the benchmark's second base, see
# topdown_heatmap/lspet/td-hm_res18_1xb32-20e_lspet-128x96.py): the same refiner recipe as
# on the 6-epoch base. Point load_from at that base's checkpoint, e.g. the benchmark's
# validation pick: --cfg-options load_from=work_dirs/benchmark-r18-20e/base/epoch_18.pth
_base_ = ['./td-hm_res18_scai-1xb32-6e_lspet-128x96.py']
