_base_ = [
    './td-hm_hrnet-w32_scai-8xb64-210e_coco-256x192.py',
    '../../../_base_/scai_paper_widths.py',
]
# The paper-scale network widths (method spec §4), for comparison with the budget default.
model = dict(head=dict(refiner=_base_.scai_paper_refiner))
