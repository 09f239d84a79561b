#!/usr/bin/python3
"""Run the UNMODIFIED PyTorch anchor (../shared/bench/siamese_torch.py) on the demo's synthetic
data: its `import planted` gets planted_demo (this directory) instead of the shared random
planted data. usage: torch_on.py ANCHOR_SCRIPT N EPOCHS [max_pairs] [batch] [lr]
env RDML_BENCH_H5: the demo's results file."""
import os, runpy, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import planted_demo
sys.modules["planted"] = planted_demo
anchor = sys.argv[1]
sys.argv = [anchor] + sys.argv[2:]
runpy.run_path(anchor, run_name="__main__")
