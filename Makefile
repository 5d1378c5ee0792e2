# The two commands: `make test` and `make demo`. Both create .venv with the pinned CPU stack.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: venv test demo benchmark benchmark-r18-20e benchmark-blazepose benchmark-bases \
	benchmark-shift benchmark-cost clean

venv: $(STAMP)

$(STAMP): requirements/cpu.txt requirements/nodeps.txt requirements/tests.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip wheel "setuptools>=77.0.3,<82"
	$(PIP) install -q -r requirements/cpu.txt -r requirements/tests.txt
	$(PIP) install -q --no-build-isolation --no-binary xtcocotools xtcocotools==1.14.3
	$(PIP) install -q --no-deps -r requirements/nodeps.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# two workers (one torch thread each): the suite's files split over the 2 cores
test: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -q -ra -n 2 --dist loadfile

demo: venv
	$(PY) tools/demo.py

# The real-data benchmark (docs/benchmarks.md): resumable, cached under work_dirs/benchmark.
# BENCH_ARGS=--quick for a smoke run; the docs/ files are rewritten by full runs only.
BENCH_ARGS ?= --curve-test --docs

benchmark: venv
	$(PY) tools/benchmark.py $(BENCH_ARGS)

# The same benchmark on a longer-trained base: ResNet-18, 20 epochs (docs/benchmarks_r18-20e*).
R18_20E := configs/body_2d_keypoint/topdown_heatmap/lspet/td-hm_res18_1xb32-20e_lspet-128x96.py
R18_20E_SCAI := configs/body_2d_keypoint/scai/lspet/td-hm_res18-20e_scai-1xb32-6e_lspet-128x96.py

benchmark-r18-20e: venv
	$(PY) tools/benchmark.py --base-config $(R18_20E) --scai-config $(R18_20E_SCAI) \
		--work-dir work_dirs/benchmark-r18-20e --curve-test --docs --docs-name benchmarks_r18-20e

# The same benchmark on the frozen BlazePose-GHUM heavy base (docs/benchmarks_blazepose.md):
# fetches and converts the model first; SCAI trains on the base's features cached once per
# training image (2,000 of them); resumable, cached under work_dirs/benchmark-blazepose.
BLAZE_BASE := configs/body_2d_keypoint/topdown_heatmap/blazepose/td-hm_blazepose-ghum-heavy_lspet-256x256.py
BLAZE_SCAI := configs/body_2d_keypoint/scai/lspet/td-hm_blazepose-ghum-heavy_scai-1xb32-6e_lspet-256x256.py
BLAZE_ARGS ?= --train-images 2000 --stages 3,2,1 --no-ablation --no-lite --no-switches \
	--feature-cache --rotation --threads 2 --docs --docs-name benchmarks_blazepose

benchmark-blazepose: venv
	$(PY) tools/fetch_blazepose.py
	$(PY) tools/benchmark.py --base-config $(BLAZE_BASE) --scai-config $(BLAZE_SCAI) \
		--base-checkpoint "$$($(PY) tools/fetch_blazepose.py --quiet)" \
		--work-dir work_dirs/benchmark-blazepose $(BLAZE_ARGS)
	$(PY) tools/benchmark_bases.py "ResNet-18, 6 epochs=docs/benchmarks.json" \
		"ResNet-18, 20 epochs=docs/benchmarks_r18-20e.json" \
		"BlazePose-GHUM heavy=work_dirs/benchmark-blazepose/report.json"

# SCAI against the strength of its base: the three benchmarks (each resumable), then one
# table, also written to work_dirs/benchmark_bases.md.
benchmark-bases: benchmark-r18-20e benchmark-blazepose benchmark
	$(PY) tools/benchmark_bases.py "ResNet-18, 6 epochs=work_dirs/benchmark/report.json" \
		"ResNet-18, 20 epochs=work_dirs/benchmark-r18-20e/report.json" \
		"BlazePose-GHUM heavy=work_dirs/benchmark-blazepose/report.json" \
		--out work_dirs/benchmark_bases.md

# Corruption / occlusion shifts on the benchmark's models (runs `benchmark` steps first).
benchmark-shift: venv
	$(PY) tools/benchmark_shift.py --docs

# Params, FLOPs, CPU latency and peak memory of the refinement, as ratios to the base.
benchmark-cost: venv
	$(PY) tools/benchmark_cost.py

clean:
	rm -rf $(VENV) work_dirs
